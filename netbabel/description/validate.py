"""Validation: every schema error sorted by JSON pointer, then semantic checks."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.expressions import evaluate_value, resolve_parameters
from netbabel.errors import NetbabelError, Problem

DISTANCE = "d"


@lru_cache(maxsize=1)
def shipped_schema() -> dict:
    """The schema file shipped with the package (schema/network.schema.json)."""
    try:
        text = resources.files("netbabel").joinpath("schema", "network.schema.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        text = (Path(__file__).resolve().parents[2] / "schema" / "network.schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(shipped_schema())


def pointer(path: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _leaf(error: ValidationError) -> ValidationError:
    """The most useful error of an anyOf/oneOf: not the 'wrong type' alternative."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        candidates = [e for e in error.context if e.validator not in ("type", "$ref")] or list(error.context)
        candidates.sort(key=lambda e: -len(e.absolute_path))
        error = candidates[0]
    return error


def _message(error: ValidationError) -> str:
    leaf = _leaf(error)
    if leaf.validator == "additionalProperties":
        return f"unknown key: {leaf.message.split('(')[-1].rstrip(')')}"
    if leaf.validator == "enum" and len(leaf.validator_value) > 6:
        return f"{leaf.instance!r} is not one of the allowed values: {', '.join(map(str, leaf.validator_value))}"
    if leaf.validator == "maxLength":
        return f"string of {len(leaf.instance)} characters is too long (at most {leaf.validator_value} characters)"
    if isinstance(leaf.instance, str) and len(leaf.instance) > 60:
        return leaf.message.replace(repr(leaf.instance), f"string of {len(leaf.instance)} characters")
    return leaf.message if len(leaf.message) < 300 else leaf.message[:297] + "..."


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """jsonschema-rs (compiled, ~100x faster) when installed; used to accept valid documents quickly."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.Draft202012Validator(shipped_schema())


def schema_problems(data: Any, file: str | None = None) -> list[Problem]:
    """All schema errors, sorted by pointer."""
    fast = _fast_validator()
    if fast is not None and fast.is_valid(data):
        return []
    problems = {}
    for error in _validator().iter_errors(data):
        leaf = _leaf(error)
        where = pointer(leaf.absolute_path)
        problems.setdefault((where, _message(error)), Problem(_message(error), file, where))
    return [problems[k] for k in sorted(problems)]


def check(data: dict, base_dir: Path = Path("."), file: str | None = None) -> list[Problem]:
    """Schema problems if any, else the semantic problems; an empty list means valid."""
    problems = schema_problems(data, file)
    if problems:
        return problems
    problems = list(_semantic(data, base_dir))
    return sorted((Problem(msg, file, ptr) for ptr, msg in problems), key=lambda p: p.pointer or "")


def _semantic(data: dict, base_dir: Path) -> Iterator[tuple[str, str]]:
    try:
        params = resolve_parameters(data.get("parameters", {}))
    except NetbabelError as exc:
        yield exc.problems[0].pointer or "/parameters", exc.problems[0].message
        return
    cell_types = data.get("cell_types", {})
    synapse_types = data.get("synapse_types", {})
    populations = data.get("populations", {})
    sizes: dict[str, int] = {}

    yield from _expressions(data, params)

    for name, pop in populations.items():
        where = f"/populations/{name}"
        if pop["cell_type"] not in cell_types:
            yield f"{where}/cell_type", f"undefined cell type {pop['cell_type']!r}"
        size = _eval(pop["size"], params)
        if size is None or size < 1 or abs(size - round(size)) > 1e-9:
            yield f"{where}/size", f"size must be a positive integer, got {size!r}"
        else:
            sizes[name] = int(round(size))
        positions = pop.get("positions")
        if positions:
            yield from _positions(positions, f"{where}/positions", base_dir, sizes.get(name))

    for name, cell in cell_types.items():
        yield from _cell_type(name, cell, base_dir)

    names: set[str] = set()
    for i, proj in enumerate(data.get("projections", [])):
        where = f"/projections/{i}"
        pname = proj.get("name", f"{proj['source']}->{proj['target']}")
        if pname in names:
            yield f"{where}/name", f"duplicate projection name {pname!r} (give each projection a unique name)"
        names.add(pname)
        for end in ("source", "target"):
            if proj[end] not in populations:
                yield f"{where}/{end}", f"undefined population {proj[end]!r}"
        syn = proj.get("synapse_type")
        if syn is not None and syn not in synapse_types:
            yield f"{where}/synapse_type", f"undefined synapse type {syn!r}"
        yield from _rule(proj, where, sizes, params, base_dir)
        yield from _weight_sign(proj, where, populations, cell_types, params)

    names = set()
    for i, inp in enumerate(data.get("inputs", [])):
        where = f"/inputs/{i}"
        iname = inp.get("name", f"{inp['type']}->{inp['target']}")
        if iname in names:
            yield f"{where}/name", f"duplicate input name {iname!r}"
        names.add(iname)
        if inp["target"] not in populations:
            yield f"{where}/target", f"undefined population {inp['target']!r}"
        syn = inp.get("synapse_type")
        if syn is not None and syn not in synapse_types:
            yield f"{where}/synapse_type", f"undefined synapse type {syn!r}"
        if inp.get("file") and not (base_dir / inp["file"]).exists():
            yield f"{where}/file", f"file not found: {inp['file']} (relative to {base_dir})"
        if inp["type"] == "step_current" and len(inp["amplitudes"]) != len(inp["times"]):
            yield f"{where}/amplitudes", "amplitudes and times must have the same length"
        start, stop = _eval(inp.get("start", 0), params), _eval(inp.get("stop", float("inf")), params)
        if start is not None and stop is not None and stop < start:
            yield f"{where}/stop", f"stop ({stop}) is before start ({start})"

    record = data.get("simulation", {}).get("record", {})
    spikes = record.get("spikes", "all")
    for j, pop in enumerate(spikes if isinstance(spikes, list) else []):
        if pop not in populations:
            yield f"/simulation/record/spikes/{j}", f"undefined population {pop!r}"
    for j, rec in enumerate(record.get("v", [])):
        if rec["population"] not in populations:
            yield f"/simulation/record/v/{j}/population", f"undefined population {rec['population']!r}"
        elif rec["population"] in sizes and any(k >= sizes[rec["population"]] for k in rec["ids"]):
            yield f"/simulation/record/v/{j}/ids", f"index out of range for population of size {sizes[rec['population']]}"


def _eval(value: Any, params: dict, **extra) -> float | None:
    try:
        return evaluate_value(value, params, extra)
    except NetbabelError:
        return None


def _expressions(data: Any, params: dict, where: str = "") -> Iterator[tuple[str, str]]:
    """Every expression string in a numeric field must evaluate."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}/{key}"
            if key == "parameters" and where == "":
                continue
            if isinstance(value, str) and _numeric_field(where, key):
                extra = {DISTANCE: 1.0} if key == "p" and where.endswith("/rule") else {}
                try:
                    evaluate_value(value, params, extra)
                except NetbabelError as exc:
                    yield path, exc.problems[0].message
            else:
                yield from _expressions(value, params, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if isinstance(value, str) and where.endswith(("/amplitudes", "/times")):
                try:
                    evaluate_value(value, params)
                except NetbabelError as exc:
                    yield f"{where}/{i}", exc.problems[0].message
            else:
                yield from _expressions(value, params, f"{where}/{i}")


_TEXT_FIELDS = {"name", "cell_type", "source", "target", "synapse_type", "type", "file", "population",
                "distribution", "bounds", "model", "receptor", "site", "section", "mechanism", "title",
                "description", "license", "tool", "sha256", "date", "format", "parent", "spikes", "spike_file",
                "netbabel"}


def _numeric_field(parent: str, key: str) -> bool:
    if key in _TEXT_FIELDS:
        return False
    return not any(seg in parent for seg in ("/metadata", "/annotations", "/source", "/section_lists", "/options"))


def _positions(pos: dict, where: str, base_dir: Path, size: int | None) -> Iterator[tuple[str, str]]:
    if pos["type"] == "random" and not ("low" in pos and "high" in pos):
        yield where, "random positions need low and high corners"
    if pos["type"] == "random" and "low" in pos and "high" in pos and any(
            lo > hi for lo, hi in zip(pos["low"], pos["high"])):
        yield f"{where}/high", "high corner below low corner"
    if pos["type"] == "grid":
        if "shape" not in pos:
            yield where, "grid positions need a shape"
        elif size is not None:
            n = 1
            for s in pos["shape"]:
                n *= s
            if n != size:
                yield f"{where}/shape", f"grid of {n} points for a population of {size}"
    if pos["type"] == "file":
        if "file" not in pos:
            yield where, "file positions need a file"
        elif not (base_dir / pos["file"]).exists():
            yield f"{where}/file", f"file not found: {pos['file']} (relative to {base_dir})"


def _cell_type(name: str, cell: dict, base_dir: Path) -> Iterator[tuple[str, str]]:
    where = f"/cell_types/{name}"
    for j, mod in enumerate(cell.get("mod_files", [])):
        if not (base_dir / mod).exists():
            yield f"{where}/mod_files/{j}", f"file not found: {mod} (relative to {base_dir})"
    spike_file = cell.get("params", {}).get("spike_file")
    if spike_file and not (base_dir / spike_file).exists():
        yield f"{where}/params/spike_file", f"file not found: {spike_file} (relative to {base_dir})"
    if cell["model"] != MULTICOMPARTMENT:
        return
    seen: set[str] = set()
    for j, sec in enumerate(cell["sections"]):
        if sec["name"] in seen:
            yield f"{where}/sections/{j}/name", f"duplicate section {sec['name']!r}"
        if sec.get("parent") is not None and sec["parent"] not in seen:
            yield f"{where}/sections/{j}/parent", f"parent {sec['parent']!r} is not an earlier section"
        if not sec.get("points") and not ("L" in sec and "diam" in sec):
            yield f"{where}/sections/{j}", "a section needs 3-D points or L and diam"
        seen.add(sec["name"])
    for list_name, members in (cell.get("section_lists") or {}).items():
        for k, sec in enumerate(members):
            if sec not in seen:
                yield f"{where}/section_lists/{list_name}/{k}", f"undefined section {sec!r}"
    for syn_name, site in (cell.get("synapses") or {}).items():
        if site["section"] not in seen:
            yield f"{where}/synapses/{syn_name}/section", f"undefined section {site['section']!r}"
    det = cell.get("spike_detection")
    if det and det["section"] not in seen:
        yield f"{where}/spike_detection/section", f"undefined section {det['section']!r}"


def _rule(proj: dict, where: str, sizes: dict[str, int], params: dict, base_dir: Path) -> Iterator[tuple[str, str]]:
    rule = proj["rule"]
    kind = rule["type"]
    ns, nt = sizes.get(proj["source"]), sizes.get(proj["target"])
    if kind == "explicit":
        if not (base_dir / rule["file"]).exists():
            yield f"{where}/rule/file", f"file not found: {rule['file']} (relative to {base_dir})"
        return
    if ns is None or nt is None:
        return
    same = proj["source"] == proj["target"]
    autapses, multapses = proj.get("autapses", True), proj.get("multapses", True)
    if kind == "one_to_one" and ns != nt:
        yield f"{where}/rule/type", f"one_to_one needs equal sizes, got {ns} and {nt}"
    for key, pool, what in (("indegree", ns, "source"), ("outdegree", nt, "target")):
        if kind != f"fixed_{key}":
            continue
        k = _eval(rule[key], params)
        if k is None:
            continue
        if k < 0 or abs(k - round(k)) > 1e-9:
            yield f"{where}/rule/{key}", f"{key} must be a non-negative integer, got {k}"
        available = pool - (1 if same and not autapses else 0)
        if not multapses and k > available:
            yield (f"{where}/rule/{key}",
                   f"{key} {int(k)} cannot be satisfied without multapses: only {available} {what} cells available")
        if available <= 0 and k > 0:
            yield f"{where}/rule/{key}", f"no {what} cells available for {key} {int(k)}"
    if kind == "fixed_total_number":
        n = _eval(rule["n"], params)
        pairs = ns * nt - (min(ns, nt) if same and not autapses else 0)
        if n is not None and (n < 0 or abs(n - round(n)) > 1e-9):
            yield f"{where}/rule/n", f"n must be a non-negative integer, got {n}"
        elif n is not None and not multapses and n > pairs:
            yield f"{where}/rule/n", f"n {int(n)} exceeds the {pairs} possible pairs without multapses"
    if kind == "pairwise_bernoulli" and isinstance(rule["p"], str):
        p = _eval(rule["p"], params, d=0.0)
        if p is not None and not 0.0 <= p <= 1.0:
            yield f"{where}/rule/p", f"probability evaluates to {p}, outside [0, 1]"


def _weight_sign(proj: dict, where: str, populations: dict, cell_types: dict, params: dict) -> Iterator[tuple[str, str]]:
    target = populations.get(proj["target"])
    cell = cell_types.get(target["cell_type"]) if target else None
    if not cell or cell["model"] not in MODELS:
        return
    spec = MODELS[cell["model"]]
    if spec.kind == "source":
        yield f"{where}/target", f"population {proj['target']!r} is a spike source and cannot receive connections"
        return
    weight = proj["weight"]
    value = _eval(weight, params) if not isinstance(weight, dict) else _eval(weight.get("mean", 0), params)
    if spec.synapse == "conductance" and value is not None and value < 0:
        yield (f"{where}/weight", f"weight {value} is negative but {cell['model']} is conductance-based: "
                                  "use a positive weight and an inhibitory synapse type")
