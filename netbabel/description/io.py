"""Load and save descriptions (JSON or YAML), with overrides and validation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from netbabel.atomic import atomic_path
from netbabel.description.model import Description
from netbabel.errors import NetbabelError

MAX_BYTES = 50 * 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


def read_data(path: Path) -> dict:
    """Parse a JSON or YAML document into plain data, with located errors."""
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NetbabelError(f"cannot read file: {exc.strerror}", name) from None
    if size > MAX_BYTES:
        raise NetbabelError(f"file is {size / 1e6:.0f} MB; descriptions are limited to {MAX_BYTES // 2**20} MB "
                            "(put large arrays in HDF5 files beside it)", name)
    raw = path.read_bytes()
    if not raw.strip():
        raise NetbabelError("file is empty", name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetbabelError(f"not a text file (invalid UTF-8 at byte {exc.start})", name) from None
    if "\x00" in text:
        raise NetbabelError("not a text file (contains NUL bytes)", name)
    data = _parse_yaml(text, name) if path.suffix.lower() in YAML_SUFFIXES else _parse_json(text, name)
    if not isinstance(data, dict):
        raise NetbabelError(f"the document must be an object, not {type(data).__name__}", name, "/")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid number")


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise NetbabelError(f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}", name) from None
    except ValueError as exc:
        raise NetbabelError(f"invalid JSON: {exc}", name) from None
    except RecursionError:
        raise NetbabelError("invalid JSON: nested too deeply", name) from None


def _parse_yaml(text: str, name: str) -> Any:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NetbabelError(f"{where}invalid YAML: {problem}", name) from None
    except RecursionError:
        raise NetbabelError("invalid YAML: nested too deeply", name) from None
    _reject_non_finite(data, name, "")
    return data


def _reject_non_finite(data: Any, name: str, pointer: str) -> None:
    if isinstance(data, float) and not math.isfinite(data):
        raise NetbabelError(f"{data} is not a valid number (write infinity as the expression \"inf\")",
                            name, pointer or "/")
    if isinstance(data, dict):
        for k, v in data.items():
            _reject_non_finite(v, name, f"{pointer}/{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _reject_non_finite(v, name, f"{pointer}/{i}")


def apply_overrides(data: dict, overrides: list[str], name: str) -> dict:
    """Apply `--set a.b.c=VALUE` overrides (VALUE parsed as JSON, else a string)."""
    for item in overrides:
        if "=" not in item:
            raise NetbabelError(f"--set {item!r}: expected PATH=VALUE")
        path, text = item.split("=", 1)
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except ValueError:
            value = text
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise NetbabelError(f"--set {item!r}: empty path")
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise NetbabelError(f"--set {item!r}: no element {key!r} in "
                                        f"/{'/'.join(keys[:i])}", name)
                key = int(key)
            elif not isinstance(node, dict):
                raise NetbabelError(f"--set {item!r}: /{'/'.join(keys[:i])} is not an object", name)
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
    return data


def load(path: str | Path, overrides: list[str] | None = None, validate: bool = True) -> Description:
    """Read, override, validate and build a Description; raises NetbabelError with all problems."""
    from netbabel.description.validate import check

    path = Path(path)
    data = read_data(path)
    if overrides:
        data = apply_overrides(data, overrides, str(path))
    if validate:
        problems = check(data, base_dir=path.parent, file=str(path))
        if problems:
            raise NetbabelError(problems)
    return Description.from_dict(data, base_dir=path.parent)


def _finite(data: Any) -> Any:
    """Infinite numbers become the expressions "inf" / "-inf" (JSON has no infinity)."""
    if isinstance(data, float) and math.isinf(data):
        return "inf" if data > 0 else "-inf"
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def dumps(description: Description | dict, fmt: str = "json") -> str:
    data = _finite(description.to_dict() if isinstance(description, Description) else description)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def save(description: Description | dict, path: str | Path, fmt: str | None = None) -> Path:
    """Write a description as JSON or YAML (by suffix unless `fmt`), atomically."""
    path = Path(path)
    fmt = fmt or ("yaml" if path.suffix.lower() in YAML_SUFFIXES else "json")
    text = dumps(description, fmt)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
