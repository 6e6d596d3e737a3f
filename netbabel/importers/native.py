"""netbabel's own format (JSON or YAML) as an importer."""

from __future__ import annotations

import argparse
from pathlib import Path

from netbabel.description import Description, load

FORMAT = "netbabel"


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".json", ".yaml", ".yml")


def read(source: str, options: argparse.Namespace) -> Description:
    return load(source, overrides=getattr(options, "set", None))
