"""SONATA <-> netbabel mapping tables: model types, NEST model names, dynamics params, units.

SONATA leaves units to the model type. The convention applied here (docs/sonata.md):

- `point_process` / `point_neuron`: `model_template` is `nest:<model>` or `<model>`;
  `dynamics_params` are NEST parameters in NEST units (what bmtk PointNet passes to
  `nest.Create`), which are netbabel's catalogue units: identity. Edge weight =
  `syn_weight * nsyns` in the target model's NEST weight unit (pA current, nS
  conductance, mV delta), delay in ms.
- `virtual`: spike sources; spike times in ms (a `units` attribute `s` is converted).
- `biophysical`: SWC morphology (um) and Allen cell-types style dynamics params
  (`passive`, `genome`, `conditions`) in NEURON units (S/cm2, uF/cm2, ohm*cm, mV),
  which are netbabel's section units: identity. `syn_weight * nsyns` is a NetCon
  weight in uS (netbabel's multicompartment weight unit).
- current clamp `amp`: nA onto biophysical cells (NEURON's IClamp), pA onto point
  neurons (bmtk PointNet gives it to NEST unchanged); netbabel stores pA.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from netbabel.converters.units import convert
from netbabel.description.catalogue import MODELS
from netbabel.description.model import CellType, Section, SpikeDetection, SynapseSite, SynapseType
from netbabel.errors import NetbabelError, UnsupportedFeature

POINT_MODEL_TYPES = ("point_process", "point_neuron")
VIRTUAL = "virtual"
BIOPHYSICAL = "biophysical"
KNOWN_MODEL_TYPES = (*POINT_MODEL_TYPES, VIRTUAL, BIOPHYSICAL)

NEST_SYNAPSES = {"static_synapse": "static", "static": "static", "tsodyks_synapse": "tsodyks",
                 "tsodyks2_synapse": "tsodyks", "stdp_synapse": "stdp"}
NEST_SYNAPSE_OF = {"static": "static_synapse", "tsodyks": "tsodyks_synapse", "stdp": "stdp_synapse"}
NEURON_SYNAPSES = {"exp2syn": "Exp2Syn", "expsyn": "ExpSyn"}
# Allen section names in dynamics params -> netbabel/NEURON section lists
ALLEN_SECTION_LISTS = {"soma": "somatic", "axon": "axonal", "dend": "basal", "apic": "apical"}
SWC_TYPES = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}
BUILTIN_MECHANISMS = {"pas", "hh", "extracellular", "fastpas", "k_ion", "na_ion", "ca_ion"}
CURRENT_CLAMP_UNIT = "nA"  # SONATA/bmtk IClamp amp
DEFAULT_SPIKE_THRESHOLD = -15.0  # bmtk BioNet default (mV)
DEFAULT_DL = 20.0  # bmtk BioNet default segment length (um)
NEST_DEFAULT_DELAY = 1.0  # ms: what NEST (and so bmtk PointNet) uses when an edge type gives no delay


# -- point neurons ------------------------------------------------------------------

def nest_model(template: str, file: str, pointer: str) -> str:
    """The catalogue model of a `model_template` such as `nest:iaf_psc_alpha` or `iaf_psc_alpha`."""
    name = str(template).strip()
    if name.startswith("nest:"):
        name = name[len("nest:"):]
    if name not in MODELS or MODELS[name].kind != "neuron":
        known = ", ".join(m for m, spec in MODELS.items() if spec.kind == "neuron")
        raise UnsupportedFeature(f"model_template {template!r} is not a NEST model netbabel knows (known: {known})",
                                 file, pointer)
    return name


def point_params_in(model: str, dynamics: dict, file: str, pointer: str) -> dict[str, Any]:
    """NEST dynamics params (NEST units) -> catalogue params (the same units)."""
    spec = MODELS[model].params
    unknown = sorted(set(dynamics) - set(spec))
    if unknown:
        raise NetbabelError(f"parameters {unknown} are not parameters of {model} "
                            f"(known: {', '.join(spec)})", file, pointer)
    out: dict[str, Any] = {}
    for name, value in dynamics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(spec[name].default, bool) and isinstance(value, bool):
                out[name] = value
                continue
            raise NetbabelError(f"{name}: expected a number, got {value!r}", file, f"{pointer}/{name}")
        out[name] = float(value)
    return out


V_INIT_COLUMN = "netbabel_v_init"  # node types column: a population's v_init (number or distribution) as JSON


def point_params_out(params: dict[str, float]) -> dict[str, Any]:
    """Evaluated catalogue params -> NEST dynamics params JSON (infinite values are NEST's defaults: left out)."""
    return {k: v for k, v in params.items() if not (isinstance(v, float) and math.isinf(v))}


def edge_weight_in(syn_weight: np.ndarray | float, nsyns: np.ndarray | float | None) -> np.ndarray | float:
    """bmtk's rule: the connection weight is syn_weight * nsyns (nsyns defaults to 1)."""
    return syn_weight if nsyns is None else syn_weight * nsyns


def current_clamp_unit(multicompartment: bool) -> str:
    """The unit of a current clamp's `amp`: nA onto biophysical cells (bmtk BioNet, NEURON's IClamp), pA onto
    point neurons (bmtk PointNet hands `amp` to NEST's step_current_generator unchanged)."""
    return CURRENT_CLAMP_UNIT if multicompartment else "pA"


def current_clamp_in(amp: float, multicompartment: bool) -> float:
    """SONATA current clamp amplitude -> netbabel pA."""
    return convert(float(amp), current_clamp_unit(multicompartment), "pA")


def current_clamp_out(amp_pA: float, multicompartment: bool) -> float:
    return convert(float(amp_pA), "pA", current_clamp_unit(multicompartment))


# -- synapses ----------------------------------------------------------------------

def synapse_in(template: str | None, dynamics: dict, receptor: str, file: str, pointer: str) -> SynapseType:
    """An edge type's model_template + dynamics params -> a synapse type (point targets)."""
    name = (template or "static_synapse").strip()
    if name.startswith("nest:"):
        name = name[len("nest:"):]
    if name.lower() in NEURON_SYNAPSES:
        return SynapseType(model="static", receptor=receptor)
    if name not in NEST_SYNAPSES:
        raise UnsupportedFeature(f"synapse model_template {template!r} is not supported "
                                 f"(known: {', '.join(NEST_SYNAPSES)})", file, pointer)
    params = {k: v for k, v in dynamics.items() if k not in ("weight", "delay") and isinstance(v, (int, float))}
    return SynapseType(model=NEST_SYNAPSES[name], receptor=receptor, params=params)


def synapse_site_in(template: str | None, dynamics: dict, section: str, file: str, pointer: str) -> SynapseSite:
    """An edge type onto a biophysical cell -> an ExpSyn / Exp2Syn site (NEURON units: ms, mV)."""
    name = (template or dynamics.get("level_of_detail") or "exp2syn").strip()
    mechanism = NEURON_SYNAPSES.get(name.lower())
    if mechanism is None:
        raise UnsupportedFeature(f"synapse model_template {template!r} onto a biophysical cell is not supported "
                                 f"(known: {', '.join(NEURON_SYNAPSES)})", file, pointer)
    params: dict[str, Any] = {}
    if mechanism == "Exp2Syn":
        params["tau1"] = float(dynamics.get("tau1", 1.0))
        params["tau2"] = float(dynamics.get("tau2", 3.0))
    else:
        params["tau"] = float(dynamics.get("tau", dynamics.get("tau1", 2.0)))
    params["e"] = float(dynamics.get("erev", dynamics.get("e", 0.0)))
    return SynapseSite(mechanism=mechanism, section=section, x=0.5, params=params)


def synapse_site_out(site: SynapseSite) -> tuple[str, dict]:
    """A synapse site -> (model_template, dynamics params JSON) in bmtk's style."""
    if site.mechanism == "Exp2Syn":
        return "exp2syn", {"level_of_detail": "exp2syn", "tau1": site.params.get("tau1", 1.0),
                           "tau2": site.params.get("tau2", 3.0), "erev": site.params.get("e", 0.0)}
    if site.mechanism == "ExpSyn":
        return "expsyn", {"level_of_detail": "expsyn", "tau": site.params.get("tau", 2.0),
                          "erev": site.params.get("e", 0.0)}
    raise UnsupportedFeature(f"synapse mechanism {site.mechanism!r} has no SONATA/bmtk equivalent")


def receptor_of_sign(weight: float) -> str:
    return "inhibitory" if weight < 0 else "excitatory"


# -- biophysical cells ----------------------------------------------------------------

def read_swc(path: Path) -> tuple[list[Section], dict[str, list[str]]]:
    """SWC morphology -> unbranched sections (NEURON Import3d naming: soma, dend[i], apic[i], axon[i])."""
    rows = []
    try:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) < 7:
                    raise NetbabelError(f"line {lineno}: expected 7 columns (id type x y z radius parent)", str(path))
                rows.append((int(parts[0]), int(float(parts[1])), *map(float, parts[2:6]), int(float(parts[6]))))
    except OSError as exc:
        raise NetbabelError(f"cannot read morphology: {exc.strerror}", str(path)) from None
    except ValueError as exc:
        raise NetbabelError(f"invalid SWC: {exc}", str(path)) from None
    if not rows:
        raise NetbabelError("empty SWC morphology", str(path))
    points = {r[0]: r for r in rows}
    children: dict[int, list[int]] = {r[0]: [] for r in rows}
    for r in rows:
        if r[6] != -1:
            if r[6] not in points:
                raise NetbabelError(f"point {r[0]}: parent {r[6]} does not exist", str(path))
            children[r[6]].append(r[0])
    soma_ids = [r[0] for r in rows if r[1] == 1]
    sections: list[Section] = []
    lists: dict[str, list[str]] = {"somatic": [], "axonal": [], "basal": [], "apical": [], "all": []}
    if soma_ids:
        soma_pts = [_pt(points[i]) for i in soma_ids]
        if len(soma_pts) == 1:
            x, y, z, d = soma_pts[0]
            soma_pts = [[x, y - d / 2, z, d], [x, y, z, d], [x, y + d / 2, z, d]]
        sections.append(Section(name="soma", points=soma_pts))
        lists["somatic"].append("soma")
        roots = [(c, "soma", 0.5, None) for s in soma_ids for c in children[s] if points[c][1] != 1]
    else:
        roots = [(r[0], None, 1.0, None) for r in rows if r[6] == -1]
    counters = {"axon": 0, "dend": 0, "apic": 0}
    stack = list(reversed(roots))
    while stack:
        start, parent, parent_x, first = stack.pop()
        kind = SWC_TYPES.get(points[start][1], "dend")
        if kind == "soma":
            kind = "dend"
        name = f"{kind}[{counters[kind]}]"
        counters[kind] += 1
        pts = [first] if first is not None else []
        node = start
        while True:
            pts.append(_pt(points[node]))
            kids = children[node]
            if len(kids) == 1:
                node = kids[0]
                continue
            break
        if len(pts) == 1:
            pts.append(list(pts[0]))
        sections.append(Section(name=name, parent=parent, parent_x=parent_x, child_x=0.0, points=pts))
        lists[{"axon": "axonal", "dend": "basal", "apic": "apical"}[kind]].append(name)
        for kid in reversed(children[node]):
            stack.append((kid, name, 1.0, _pt(points[node])))
    lists["all"] = [s.name for s in sections]
    return sections, {k: v for k, v in lists.items() if v}


def _pt(row: tuple) -> list[float]:
    return [row[2], row[3], row[4], 2.0 * row[5]]


def _length(sec: Section) -> float:
    if sec.points:
        p = np.asarray(sec.points)[:, :3]
        return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    return float(sec.L or 0.0)


def fix_axon_peri(sections: list[Section], lists: dict[str, list[str]]) -> None:
    """bmtk/Allen `aibs_perisomatic` processing: replace the axon by two 30 um x 1 um stubs."""
    axon = set(lists.get("axonal", []))
    kept = [s for s in sections if s.name not in axon and s.parent not in axon]
    sections[:] = kept
    sections.append(Section(name="axon[0]", parent="soma", parent_x=0.5, L=30.0, diam=1.0))
    sections.append(Section(name="axon[1]", parent="axon[0]", parent_x=1.0, L=30.0, diam=1.0))
    lists["axonal"] = ["axon[0]", "axon[1]"]
    names = {s.name for s in sections}
    for key in list(lists):
        if key != "axonal":
            lists[key] = [n for n in lists[key] if n in names]
    lists["all"] = [s.name for s in sections]


def set_nseg(sections: list[Section], dL: float) -> None:
    """bmtk's rule: nseg = 1 + 2 * int(L / (2 dL))."""
    for sec in sections:
        sec.nseg = 1 + 2 * int(_length(sec) / (2.0 * dL))


def biophysical_cell_in(morphology: Path, dynamics: dict, model_processing: str | None, dL: float,
                        spike_threshold: float, mod_files: list[str], file: str, pointer: str) -> CellType:
    """SWC + Allen perisomatic dynamics params -> a multicompartment cell type (NEURON units)."""
    sections, lists = read_swc(morphology)
    processing = (model_processing or "").strip()
    if processing in ("aibs_perisomatic", "fix_axon_peri", "aibs_perisomatic_directed"):
        fix_axon_peri(sections, lists)
    elif processing not in ("", "NULL", "None", "none", "aibs_allactive", "fix_axon_allactive"):
        raise UnsupportedFeature(f"model_processing {processing!r} is a Python function netbabel cannot apply",
                                 file, pointer)
    set_nseg(sections, dL)
    by_name = {s.name: s for s in sections}

    def targets(section_key: str) -> list[Section]:
        if section_key == "all":
            return sections
        lst = ALLEN_SECTION_LISTS.get(section_key, section_key)
        return [by_name[n] for n in lists.get(lst, [])]

    passive = dynamics.get("passive") or []
    passive = passive[0] if isinstance(passive, list) and passive else (passive or {})
    if "ra" in passive:
        for s in sections:
            s.Ra = float(passive["ra"])
    for entry in passive.get("cm", []) or []:
        for s in targets(entry["section"]):
            s.cm = float(entry["cm"])
    if "e_pas" in passive:
        for s in sections:
            s.mechanisms.setdefault("pas", {})["e"] = float(passive["e_pas"])
    for j, gene in enumerate(dynamics.get("genome", []) or []):
        try:
            section_key, name, value = gene["section"], gene["name"], float(gene["value"])
        except (KeyError, TypeError, ValueError):
            raise NetbabelError("genome entry needs section, name and a numeric value", file,
                                f"{pointer}/genome/{j}") from None
        mech = gene.get("mechanism") or ""
        for s in targets(section_key):
            _apply_gene(s, name, mech, value)
    for cond in (dynamics.get("conditions") or [])[:1]:
        for erev in cond.get("erev", []) or []:
            for s in targets(erev.get("section", "all")):
                for key, value in erev.items():
                    if key.startswith("e") and key != "erev" and len(key) <= 4:
                        ion = key[1:]
                        if _uses_ion(s, ion):
                            s.ions.setdefault(ion, {})[key] = float(value)
    used = {m for s in sections for m in s.mechanisms}
    needs_mod = sorted(used - BUILTIN_MECHANISMS)
    return CellType(model="multicompartment", sections=sections, section_lists=lists,
                    mod_files=(mod_files or None) if needs_mod else None,
                    spike_detection=SpikeDetection(section="soma" if "soma" in by_name else sections[0].name,
                                                   x=0.5, threshold=spike_threshold))


def _apply_gene(sec: Section, name: str, mech: str, value: float) -> None:
    if name in ("cm", "Ra"):
        setattr(sec, name, value)
        return
    if mech and name.endswith("_" + mech):
        sec.mechanisms.setdefault(mech, {})[name[: -len(mech) - 1]] = value
        return
    if "_" in name:
        param, _, suffix = name.rpartition("_")
        sec.mechanisms.setdefault(mech or suffix, {})[param] = value
        return
    sec.mechanisms.setdefault(mech or name, {})


def _uses_ion(sec: Section, ion: str) -> bool:
    """Reversal potentials are set only where a mechanism that uses the ion is inserted (as Allen's code does)."""
    for mech, params in sec.mechanisms.items():
        if mech in ("pas",):
            continue
        if ion in ("na", "k") and (ion.lower() in mech.lower() or mech == "hh"):
            return True
        if ion == "ca" and "ca" in mech.lower():
            return True
    return False


def sections_digest(cell: CellType) -> str:
    """A fingerprint of a multicompartment cell's anatomy and biophysics (detects edits before export)."""
    import hashlib

    from netbabel.description.model import to_dict

    data = {"sections": to_dict(cell.sections or []), "lists": cell.section_lists or {}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
