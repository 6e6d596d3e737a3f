"""Instantiate one cell of a hoc template in NEURON and describe what it built.

Run by `netbabel.importers.hoc` in a subprocess (hoc is code: loading a file
runs it; the importing process never has its NEURON state changed):

    python -m netbabel.importers.hoc_probe SPEC.json RESULT.json

SPEC: {"mechanisms": path of libnrnmech.so or null, "load": [hoc files],
"file": hoc file, "template": name, "args": [numbers or strings]}.
RESULT: {"cell": a netbabel multicompartment cell type (plain data),
"simulation": {"temperature", "v_init"}, "warnings": [...]} or {"error": "..."}.
Exit status 0 on success, 2 when the hoc code failed (NEURON's message is on stderr).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# methods every hoc object has (not template attributes)
_IGNORED_ATTRIBUTES = {"baseattr", "hname", "hocobjptr", "same"}


class ProbeError(Exception):
    """The hoc code failed or asked for something a description cannot hold."""


def _hoc_message(exc: Exception) -> str:
    return str(exc).replace("hocobj_call error: ", "").replace("hoc_execerror: ", "")


def _h():
    from neuron import h

    return h


def _names(standard: Any) -> list[tuple[str, int]]:
    h = _h()
    ref = h.ref("")
    out = []
    for i in range(int(standard.count())):
        size = int(standard.name(ref, i))
        out.append((ref[0], size))
    return out


def mechanism_names(kind: int) -> list[str]:
    """Names of all density (kind 0) or point-process (kind 1) mechanisms loaded."""
    h = _h()
    mt = h.MechanismType(kind)
    ref = h.ref("")
    names = []
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(ref)
        names.append(ref[0])
    return names


def global_values() -> dict[str, float]:
    """Every scalar GLOBAL of every mechanism (ions included), plus celsius and v_init."""
    h = _h()
    values = {"celsius": float(h.celsius), "v_init": float(h.v_init)}
    for kind in (0, 1):
        for mech in mechanism_names(kind):
            for name, size in _names(h.MechanismStandard(mech, -1)):
                if size == 1:
                    try:
                        values[name] = float(getattr(h, name))
                    except (AttributeError, LookupError, TypeError, RuntimeError):
                        continue
    return values


def _uniform(values: list[float]) -> float | list[float]:
    return values[0] if all(v == values[0] for v in values) else values


def _local_name(sec: Any, prefix: str) -> str:
    name = sec.name()
    return name[len(prefix):] if name.startswith(prefix) else name


def _ordered(sections: list[Any]) -> list[Any]:
    """Parents before children: depth-first from each root, children in creation order."""
    position = {s: i for i, s in enumerate(sections)}
    children: dict[Any, list[Any]] = {s: [] for s in sections}
    roots = []
    for s in sections:
        parent = s.parentseg()
        if parent is None or parent.sec not in position:
            roots.append(s)
        else:
            children[parent.sec].append(s)
    out = []
    stack = list(reversed(roots))
    while stack:
        s = stack.pop()
        out.append(s)
        stack.extend(sorted(children[s], key=position.__getitem__, reverse=True))
    return out


def _mechanisms(sec: Any, density: set[str]) -> dict[str, dict[str, Any]]:
    h = _h()
    segs = list(sec)
    inserted = [m for m in density if not m.endswith("_ion") and m not in ("morphology", "capacitance")
                and sec.has_membrane(m)]
    if "extracellular" in inserted:
        raise ProbeError(f"{sec.name()}: the extracellular mechanism cannot be described (not supported)")
    out = {}
    for mech in sorted(inserted):
        params = {}
        for full, size in _names(h.MechanismStandard(mech, 1)):
            short = full[: -len(mech) - 1] if full.endswith("_" + mech) else full
            if size != 1:
                raise ProbeError(f"{sec.name()}: array parameter {full}[{size}] of {mech} is not supported")
            params[short] = _uniform([float(getattr(getattr(seg, mech), short)) for seg in segs])
        out[mech] = params
    return out


def _ions(sec: Any, density: set[str], defaults: dict[str, float]) -> dict[str, dict[str, Any]]:
    segs = list(sec)
    out = {}
    for mech in sorted(density):
        if not mech.endswith("_ion") or not sec.has_membrane(mech):
            continue
        ion = mech[: -len("_ion")]
        values: dict[str, Any] = {}
        for var in (f"e{ion}", f"{ion}i", f"{ion}o"):
            try:
                vals = _uniform([float(getattr(seg, var)) for seg in segs])
            except (AttributeError, NameError):
                continue
            default = defaults.get(f"{var}0_{ion}_ion")
            if var.startswith("e") or vals != default:
                values[var] = vals
        out[ion] = values
    return out


def _single(value: float) -> float:
    """NEURON keeps 3-D points in single precision: the shortest decimal that maps to the same float32."""
    import numpy

    return float(str(numpy.float32(value)))


def _geometry(sec: Any, entry: dict) -> None:
    n3d = int(sec.n3d())
    if n3d > 0:
        entry["points"] = [[_single(sec.x3d(i)), _single(sec.y3d(i)), _single(sec.z3d(i)), _single(sec.diam3d(i))]
                           for i in range(n3d)]
        return
    diams = [float(seg.diam) for seg in sec]
    if any(d != diams[0] for d in diams):
        raise ProbeError(f"{sec.name()}: diameters differ between segments without 3-D points "
                         "(add pt3d points to describe a tapering section)")
    entry["L"] = float(sec.L)
    entry["diam"] = diams[0]


def describe_sections(cell: Any, defaults: dict[str, float], warnings: list[str]) -> tuple[list[dict], str]:
    """The instance's sections (parents first) as plain data, and the `Name[i].` name prefix."""
    h = _h()
    owner = cell.hname()
    prefix = owner + "."
    mine = [s for s in h.allsec() if s.cell() is not None and s.cell().hname() == owner]
    if not mine:
        raise ProbeError(f"the template {owner} created no sections")
    density = set(mechanism_names(0))
    ordered = _ordered(mine)
    entries = []
    for sec in ordered:
        entry: dict[str, Any] = {"name": _local_name(sec, prefix)}
        parent = sec.parentseg()
        if parent is not None and parent.sec not in ordered:
            warnings.append(f"{sec.name()} is attached to {parent.sec.name()}, outside the instance: "
                            "described as a root section")
        elif parent is not None:
            entry["parent"] = _local_name(parent.sec, prefix)
            entry["parent_x"] = float(h.parent_connection(sec=sec))
            entry["child_x"] = int(round(float(sec.orientation())))
        entry["nseg"] = int(sec.nseg)
        _geometry(sec, entry)
        entry["Ra"] = float(sec.Ra)
        cms = [float(seg.cm) for seg in sec]
        if any(c != cms[0] for c in cms):
            raise ProbeError(f"{sec.name()}: cm differs between segments (per-segment cm is not supported)")
        entry["cm"] = cms[0]
        entry["mechanisms"] = _mechanisms(sec, density)
        ions = _ions(sec, density, defaults)
        if ions:
            entry["ions"] = ions
        entries.append(entry)
    return entries, prefix


def _public_objects(cell: Any) -> list[tuple[str, Any]]:
    """Public object attributes of the template instance (name, object), lists expanded."""
    h = _h()
    out = []
    for name in dir(cell):
        if name.startswith("__") or name in _IGNORED_ATTRIBUTES:
            continue
        try:
            value = getattr(cell, name)
        except Exception:  # noqa: BLE001 - a hoc attribute that cannot be read from Python
            continue
        if str(value).endswith("[?]"):  # an objref array: syn[0], syn[1]... -> syn_0, syn_1...
            try:
                items = [value[i] for i in range(len(value))]
            except Exception:  # noqa: BLE001
                continue
            out.extend((f"{name}_{i}", item) for i, item in enumerate(items) if hasattr(item, "hname"))
            continue
        if not isinstance(value, type(h.List())) and not hasattr(value, "hname"):
            continue
        try:
            label = value.hname()
        except Exception:  # noqa: BLE001
            continue
        out.append((name, value))
        if label.startswith("List["):
            out.extend((f"{name}_{i}", item) for i, item in enumerate(value))
    return out


def section_lists(cell: Any, sections: list[dict], prefix: str) -> dict[str, list[str]]:
    """Lists by section array name (soma, dend, ...), `all`, and the template's SectionList attributes."""
    h = _h()
    lists: dict[str, list[str]] = {}
    for entry in sections:
        base = entry["name"].split("[", 1)[0]
        lists.setdefault(base, []).append(entry["name"])
    lists["all"] = [e["name"] for e in sections]
    for name, value in _public_objects(cell):
        if isinstance(value, type(h.SectionList())):
            lists[name] = [_local_name(s, prefix) for s in value]
    return lists


def synapses(cell: Any, owner: str, prefix: str, warnings: list[str]) -> dict[str, dict]:
    """Point processes located on the cell: NetCon targets become synapse sites, others are reported."""
    h = _h()
    names = {}
    for name, value in _public_objects(cell):
        try:
            names.setdefault(value.hname(), name)
        except Exception:  # noqa: BLE001
            continue
    mt = h.MechanismType(1)
    out: dict[str, dict] = {}
    for index, mech in enumerate(mechanism_names(1)):
        is_target = bool(mt.is_netcon_target(index))
        params = [(n, size) for n, size in _names(h.MechanismStandard(mech, 1))]
        for k, pp in enumerate(h.List(mech)):
            seg = pp.get_segment() if hasattr(pp, "get_segment") else None
            if seg is None or seg.sec.cell() is None or seg.sec.cell().hname() != owner:
                continue
            where = f"{_local_name(seg.sec, prefix)}({seg.x:g})"
            if not is_target:
                warnings.append(f"{pp.hname()} at {where} is not a synapse (no NET_RECEIVE): left out")
                continue
            site = names.get(pp.hname(), f"{mech}_{k}")
            values = {}
            for pname, size in params:
                if size != 1:
                    raise ProbeError(f"{pp.hname()}: array parameter {pname}[{size}] is not supported")
                values[pname] = float(getattr(pp, pname))
            out[site] = {"mechanism": mech, "section": _local_name(seg.sec, prefix),
                         "x": _location(pp), "params": values}
    return out


def _location(pp: Any) -> float:
    """The exact arc position of a point process (pop_section after get_loc)."""
    h = _h()
    x = float(pp.get_loc())
    h.pop_section()
    return x


def spike_detection(cell: Any, owner: str, prefix: str, sections: list[dict], warnings: list[str]) -> dict:
    """A NetCon watching v on the cell (one the template made, or connect2target's), else soma(0.5), 10 mV."""
    h = _h()
    found = _netcon_source(owner, prefix)
    if found is None and hasattr(cell, "connect2target"):
        h("objref netbabel_probe_cell, netbabel_probe_nc, netbabel_probe_nil")
        h.netbabel_probe_cell = cell
        try:
            h("netbabel_probe_cell.connect2target(netbabel_probe_nil, netbabel_probe_nc)")
        except RuntimeError:
            warnings.append("connect2target(nil, nc) failed: spike detection at soma(0.5)")
        found = _netcon_source(owner, prefix)
    if found is not None:
        return found
    names = [e["name"] for e in sections]
    soma = next((n for n in names if n == "soma" or n.startswith("soma[")), names[0])
    warnings.append(f"the template makes no NetCon from the cell: spike detection at {soma}(0.5), "
                    "threshold 10 mV (NEURON's NetCon default)")
    return {"section": soma, "x": 0.5, "threshold": 10.0}


def _netcon_source(owner: str, prefix: str) -> dict | None:
    h = _h()
    for nc in h.List("NetCon"):
        seg = nc.preseg()
        if seg is not None and seg.sec.cell() is not None and seg.sec.cell().hname() == owner:
            return {"section": _local_name(seg.sec, prefix), "x": float(seg.x), "threshold": float(nc.threshold)}
    return None


def _templates_in(spec: dict) -> list[str]:
    names = []
    for path in [*spec.get("load", []), spec["file"]]:
        try:
            with open(path, errors="replace") as f:
                names += re.findall(r"^\s*begintemplate\s+(\w+)", f.read(), flags=re.MULTILINE)
        except OSError:
            continue
    return names


def changed_globals(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    skip = {"celsius", "v_init"}
    return {k: v for k, v in after.items() if k not in skip and before.get(k) != v}


def probe(spec: dict) -> dict:
    h = _h()
    h.load_file("stdrun.hoc")
    if spec.get("mechanisms"):
        if not h.nrn_load_dll(spec["mechanisms"]):
            raise ProbeError(f"cannot load the compiled mechanisms {spec['mechanisms']}")
    before = global_values()
    for path in [*spec.get("load", []), spec["file"]]:
        try:
            ok = h.load_file(1, path)
        except RuntimeError as exc:
            raise ProbeError(f"hoc error while loading {path}: {_hoc_message(exc)}") from None
        if not ok:
            raise ProbeError(f"hoc error while loading {path}")
    name = spec["template"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or h.name_declared(name) != 1:
        raise ProbeError(f"no template named {name!r} was defined by the loaded files"
                         f" (templates found: {', '.join(_templates_in(spec)) or 'none'})")
    template = getattr(h, name)
    try:
        cell = template(*spec.get("args", []))
    except (RuntimeError, TypeError) as exc:
        raise ProbeError(f"the constructor {name}({', '.join(map(repr, spec.get('args', [])))}) failed: {_hoc_message(exc)}") from None
    if not hasattr(cell, "hname") or not cell.hname().startswith(name + "["):
        raise ProbeError(f"{name!r} is not a template")
    warnings: list[str] = []
    after = global_values()
    owner = cell.hname()
    sections, prefix = describe_sections(cell, after, warnings)
    cell_type: dict[str, Any] = {"model": "multicompartment", "sections": sections,
                                 "section_lists": section_lists(cell, sections, prefix)}
    changed = changed_globals(before, after)
    if changed:
        cell_type["params"] = changed
    cell_type["spike_detection"] = spike_detection(cell, owner, prefix, sections, warnings)
    syns = synapses(cell, owner, prefix, warnings)
    if syns:
        cell_type["synapses"] = syns
    others = [s.name() for s in h.allsec() if s.cell() is None or s.cell().hname() != owner]
    if others:
        warnings.append(f"{len(others)} sections outside the {name} instance left out: {', '.join(others[:5])}")
    return {"cell": cell_type, "simulation": {"temperature": after["celsius"], "v_init": after["v_init"],
                                                    "dt": float(h.dt)},
            "warnings": warnings}


def main(argv: list[str]) -> int:
    spec_path, result_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        result = probe(spec)
        status = 0
    except ProbeError as exc:
        result, status = {"error": str(exc)}, 2
    with open(result_path, "w") as f:
        json.dump(result, f)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
