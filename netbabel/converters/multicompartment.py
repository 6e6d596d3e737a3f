"""Multicompartment cell types (sections, biophysics, synapse sites) -> NEURON / NetPyNE.

A `multicompartment` cell type stores NEURON's own quantities in NEURON's
units (um, ohm*cm, uF/cm2, S/cm2, mV, ms, mM), so the mapping is structural:

- `netpyne_cell_params(cell_type, description)`: a NetPyNE cellParams rule
  (`secs` with `geom` (nseg, L/diam or pt3d, Ra, cm), `topol`, `mechs`, `ions`,
  `spikeGenLoc`/`threshold`; `secLists`; `globals`).
- `netpyne_syn_mech_params(cell_type)` / `netpyne_synapse_sites(cell_type)`:
  the cell's synapse point processes as NetPyNE synMechParams and the
  `sec`/`loc` a connection onto each named site must use.
- `build_neuron_cell(cell_type, description)`: the cell built directly in
  NEURON (used by tests and by anyone who wants the cell without NetPyNE).

Ion settings use NEURON's names (`ena`, `nai`, `nao`); NetPyNE's are `e`, `i`, `o`.
Mechanism parameters are a number (uniform over the section) or a list with one
value per segment (non-uniform, in segment order).
"""

from __future__ import annotations

from typing import Any

from netbabel.description.model import CellType, Description
from netbabel.errors import NetbabelError

MULTICOMPARTMENT = "multicompartment"


def _check(cell_type: CellType) -> None:
    if cell_type.model != MULTICOMPARTMENT or not cell_type.sections:
        raise NetbabelError(f"not a multicompartment cell type (model {cell_type.model!r})")


def _number(description: Description | None, value: Any) -> Any:
    """A number, a list of numbers (evaluated element-wise) or an expression evaluated."""
    if isinstance(value, list):
        return [_number(description, v) for v in value]
    if isinstance(value, str):
        if description is None:
            raise NetbabelError(f"expression {value!r} needs the description's parameters")
        return description.value(value)
    return value


def ion_key(ion: str, name: str) -> str:
    """NEURON's ion variable (`ena`, `nai`, `nao`) -> NetPyNE's key (`e`, `i`, `o`)."""
    if name == f"e{ion}":
        return "e"
    if name == f"{ion}i":
        return "i"
    if name == f"{ion}o":
        return "o"
    raise NetbabelError(f"unknown ion variable {name!r} for ion {ion!r} (expected e{ion}, {ion}i or {ion}o)")


def netpyne_cell_params(cell_type: CellType, description: Description | None = None) -> dict:
    """A NetPyNE cellParams rule for a multicompartment cell type.

    Keys: `secs` (per section: `geom`, `topol`, `mechs`, `ions`, and on the
    spike detection section `spikeGenLoc` and `threshold`), `secLists`, and
    `globals` (NEURON globals the cell sets, from `cell_type.params`).
    Synapses are not part of a NetPyNE cell rule: see `netpyne_syn_mech_params`
    and `netpyne_synapse_sites`. Exporters should set
    `cfg.pt3dRelativeToCellLocation = False` (or place cells at the origin)
    when bit-exact agreement with the original cell matters: shifting 3-D
    points by the cell position re-rounds them (NEURON stores them as float32).
    """
    _check(cell_type)
    secs: dict[str, dict] = {}
    for sec in cell_type.sections:
        geom: dict[str, Any] = {"nseg": int(sec.nseg)}
        if sec.points:
            geom["pt3d"] = [tuple(float(c) for c in p) for p in sec.points]
        else:
            geom["L"] = float(_number(description, sec.L))
            geom["diam"] = float(_number(description, sec.diam))
        if sec.Ra is not None:
            geom["Ra"] = float(_number(description, sec.Ra))
        if sec.cm is not None:
            geom["cm"] = float(_number(description, sec.cm))
        entry: dict[str, Any] = {"geom": geom}
        if sec.parent is not None:
            entry["topol"] = {"parentSec": sec.parent, "parentX": float(sec.parent_x), "childX": float(sec.child_x)}
        else:
            entry["topol"] = {}
        entry["mechs"] = {name: {p: _number(description, v) for p, v in params.items()}
                          for name, params in sec.mechanisms.items()}
        if sec.ions:
            entry["ions"] = {ion: {ion_key(ion, k): _number(description, v) for k, v in values.items()}
                             for ion, values in sec.ions.items()}
        secs[sec.name] = entry
    det = cell_type.spike_detection
    if det is not None:
        secs[det.section]["spikeGenLoc"] = float(det.x)
        secs[det.section]["threshold"] = float(det.threshold)
    rule: dict[str, Any] = {"secs": secs}
    if cell_type.section_lists:
        rule["secLists"] = {name: list(members) for name, members in cell_type.section_lists.items()}
    if cell_type.params:
        rule["globals"] = {k: _number(description, v) for k, v in cell_type.params.items()}
    return rule


def syn_mech_label(site: str, label_prefix: str = "") -> str:
    """The NetPyNE synMech label of a synapse site (prefix it with the cell type to keep labels unique)."""
    return f"{label_prefix}{site}"


def netpyne_syn_mech_params(cell_type: CellType, description: Description | None = None,
                            label_prefix: str = "") -> dict[str, dict]:
    """NetPyNE synMechParams for every synapse site: {label: {"mod": "ExpSyn", "tau": 2.0, "e": 0.0}}."""
    _check(cell_type)
    out = {}
    for name, site in (cell_type.synapses or {}).items():
        params = {k: _number(description, v) for k, v in site.params.items()}
        out[syn_mech_label(name, label_prefix)] = {"mod": site.mechanism, **params}
    return out


def netpyne_synapse_sites(cell_type: CellType, label_prefix: str = "") -> dict[str, dict]:
    """Where connections onto each named site go: {site: {"synMech": label, "sec": "dend", "loc": 0.5}}."""
    _check(cell_type)
    return {name: {"synMech": syn_mech_label(name, label_prefix), "sec": site.section, "loc": float(site.x)}
            for name, site in (cell_type.synapses or {}).items()}


# -- direct NEURON construction ------------------------------------------------------

class NeuronCell:
    """A cell built in NEURON from a description: sections, synapses, spike source."""

    def __init__(self) -> None:
        self.secs: dict[str, Any] = {}
        self.section_lists: dict[str, Any] = {}
        self.synapses: dict[str, Any] = {}
        self.spike_section: Any = None
        self.spike_x: float = 0.5
        self.threshold: float = 10.0

    def segment(self, section: str, x: float) -> Any:
        return self.secs[section](x)

    def spike_netcon(self, target: Any = None) -> Any:
        """A NetCon from the spike detection site (threshold set) to `target` (or none)."""
        from neuron import h

        nc = h.NetCon(self.spike_section(self.spike_x)._ref_v, target, sec=self.spike_section)
        nc.threshold = self.threshold
        return nc


def _set_segments(sec: Any, setter, value: Any) -> None:
    segs = list(sec)
    if isinstance(value, list):
        if len(value) != len(segs):
            raise NetbabelError(f"{sec.name()}: {len(value)} values for {len(segs)} segments")
        for seg, v in zip(segs, value):
            setter(seg, v)
    else:
        for seg in segs:
            setter(seg, value)


def build_neuron_cell(cell_type: CellType, description: Description | None = None, prefix: str = "") -> NeuronCell:
    """Build the cell in the current NEURON process (mechanisms must be loaded already).

    Sets the cell's NEURON globals (`cell_type.params`); temperature and v_init
    are simulation settings and are left to the caller.
    """
    from neuron import h

    _check(cell_type)
    cell = NeuronCell()
    for name, value in (cell_type.params or {}).items():
        setattr(h, name, float(_number(description, value)))
    for spec in cell_type.sections:
        sec = h.Section(name=f"{prefix}{spec.name}")
        cell.secs[spec.name] = sec
        if spec.parent is not None:
            sec.connect(cell.secs[spec.parent](spec.parent_x), spec.child_x)
    for spec in cell_type.sections:
        sec = cell.secs[spec.name]
        sec.nseg = int(spec.nseg)
        if spec.points:
            h.pt3dclear(sec=sec)
            for x, y, z, d in spec.points:
                h.pt3dadd(x, y, z, d, sec=sec)
        else:
            sec.L = float(_number(description, spec.L))
            sec.diam = float(_number(description, spec.diam))
        if spec.Ra is not None:
            sec.Ra = float(_number(description, spec.Ra))
        if spec.cm is not None:
            _set_segments(sec, lambda seg, v: setattr(seg, "cm", v), float(_number(description, spec.cm)))
        for mech, params in spec.mechanisms.items():
            sec.insert(mech)
            for pname, value in params.items():
                _set_segments(sec, lambda seg, v, m=mech, p=pname: setattr(getattr(seg, m), p, v),
                              _number(description, value))
        for ion, values in spec.ions.items():
            sec.insert(f"{ion}_ion")
            for vname, value in values.items():
                _set_segments(sec, lambda seg, v, n=vname: setattr(seg, n, v), _number(description, value))
    for list_name, members in (cell_type.section_lists or {}).items():
        sl = h.SectionList()
        for member in members:
            sl.append(cell.secs[member])
        cell.section_lists[list_name] = sl
    for site_name, site in (cell_type.synapses or {}).items():
        pp = getattr(h, site.mechanism)(cell.secs[site.section](site.x))
        for pname, value in site.params.items():
            setattr(pp, pname, float(_number(description, value)))
        cell.synapses[site_name] = pp
    det = cell_type.spike_detection
    root = cell_type.sections[0].name
    cell.spike_section = cell.secs[det.section] if det else cell.secs.get("soma", cell.secs[root])
    cell.spike_x = float(det.x) if det else 0.5
    cell.threshold = float(det.threshold) if det else 10.0
    return cell
