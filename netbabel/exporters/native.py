"""netbabel's own format as an exporter: JSON, or YAML with the same content."""

from __future__ import annotations

import argparse
from pathlib import Path

from netbabel.description import Description, dumps

FORMAT = "netbabel"
SINGLE_FILE = True


def write(description: Description, out: Path, options: argparse.Namespace) -> None:
    """Write the description to `out` (YAML when options.yaml, else JSON)."""
    fmt = "yaml" if getattr(options, "yaml", False) else "json"
    out.write_text(dumps(description, fmt))
