"""Where the multi-area reference data are (never bundled: CC BY-NC-SA), or a skip that says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def multiarea_data(*required: str) -> Path:
    """The data folder ($NETBABEL_MULTIAREA_DATA or ../shared/data/multiarea) holding `required` subfolders."""
    env = os.environ.get("NETBABEL_MULTIAREA_DATA")
    root = Path(env) if env else (REPO.parent / "shared" / "data" / "multiarea").resolve()
    if not all((root / sub).is_dir() for sub in ("upstream", *required)):
        pytest.skip(f"multi-area reference data not found at {root}: the upstream files are CC BY-NC-SA and "
                    "never bundled (set NETBABEL_MULTIAREA_DATA; see reference_models/multiarea/README.md)")
    return root
