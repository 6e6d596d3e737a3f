"""Progress bars on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, total: float | None = None, desc: str = "",
             unit: str = "it", enabled: bool | None = None) -> tqdm:
    """A tqdm bar on stderr when it is a terminal (or `enabled`), otherwise a silent one."""
    show = on_terminal() if enabled is None else enabled
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not show,
                file=sys.stderr, dynamic_ncols=True, unit_scale=True, leave=False)
