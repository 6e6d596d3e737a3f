"""Multicompartment cells for the NeuroML2 exporter: morphology, biophysics, synapse sites.

Each section becomes a chain of segments (one per pair of 3-D points) in an
unbranched segment group named after the section (neuroLexId sao864921383,
`numberInternalDivisions` = nseg); section lists become segment groups that
include them. Mechanisms: NEURON's built-in `hh` (three NeuroML2 channels with
HH 1952 rates and q10 = 3 from 6.3 degC) and `pas` (a passive channel). A
mechanism that exists only as NMODL is refused: NeuroML2 needs a channel
definition, and netbabel does not invent one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netbabel.converters import neuroml as conv
from netbabel.description.model import CellType, Description, Section
from netbabel.errors import UnsupportedFeature

UNBRANCHED = "sao864921383"

Segments = dict[str, list[tuple[int, float, float]]]  # section -> [(segment id, start, end) as fractions]


def _section_points(sec: Section, start: list[float] | None) -> list[list[float]]:
    if sec.points and len(sec.points) >= 2:
        return [list(map(float, p)) for p in sec.points]
    origin = start[:3] if start else [0.0, 0.0, 0.0]
    L, diam = float(sec.L or 0.0), float(sec.diam or 0.0)
    return [[*origin, diam], [origin[0] + L, origin[1], origin[2], diam]]


def _point_at(points: list[list[float]], x: float) -> list[float]:
    pts = np.asarray(points)[:, :3]
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    target = x * lengths[-1]
    k = int(np.clip(np.searchsorted(lengths, target) - 1, 0, len(pts) - 2))
    span = lengths[k + 1] - lengths[k]
    f = 0.0 if span == 0 else (target - lengths[k]) / span
    return list(pts[k] + f * (pts[k + 1] - pts[k]))


def segment_at(segments: Segments, section: str, x: float) -> tuple[int, float]:
    """(segment id, fraction along it) of position x on a section."""
    for seg_id, a, b in segments[section]:
        if a <= x <= b or (seg_id, a, b) == segments[section][-1]:
            return seg_id, (0.5 if b == a else min(1.0, max(0.0, (x - a) / (b - a))))
    raise UnsupportedFeature(f"no segment at {section}({x})")


def cell(d: Description, ct: CellType, cid: str, where: str) -> tuple[Any, Segments, set[str]]:
    """A libNeuroML Cell, where each section's segments lie, and the channel ids it uses."""
    import neuroml

    _check_mechanisms(ct, where)
    morph = neuroml.Morphology(id=f"{cid}_morphology")
    segments: Segments = {}
    section_points: dict[str, list[list[float]]] = {}
    groups = []
    next_id = 0
    for sec in ct.sections or []:
        parent_start = None
        if sec.parent is not None:
            parent_start = _point_at(section_points[sec.parent], sec.parent_x)
        points = _section_points(sec, parent_start)
        section_points[sec.name] = points
        pts = np.asarray(points)[:, :3]
        cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        total = cum[-1] if cum[-1] > 0 else 1.0
        members = []
        segments[sec.name] = []
        for k in range(len(points) - 1):
            p0, p1 = points[k], points[k + 1]
            seg = neuroml.Segment(id=next_id, name=f"{_gid(sec.name)}_{k}",
                                  distal=neuroml.Point3DWithDiam(x=p1[0], y=p1[1], z=p1[2], diameter=p1[3]))
            if k == 0:
                seg.proximal = neuroml.Point3DWithDiam(x=p0[0], y=p0[1], z=p0[2], diameter=p0[3])
                if sec.parent is not None:
                    pseg, frac = segment_at(segments, sec.parent, sec.parent_x)
                    seg.parent = neuroml.SegmentParent(segments=pseg, fraction_along=frac)
            else:
                seg.parent = neuroml.SegmentParent(segments=next_id - 1)
            morph.segments.append(seg)
            members.append(neuroml.Member(segments=next_id))
            segments[sec.name].append((next_id, cum[k] / total, cum[k + 1] / total))
            next_id += 1
        group = neuroml.SegmentGroup(id=_gid(sec.name), neuro_lex_id=UNBRANCHED, members=members,
                                     properties=[neuroml.Property(tag="numberInternalDivisions", value=str(sec.nseg))])
        if _gid(sec.name) != sec.name:
            group.properties.append(neuroml.Property(tag="netbabel_section", value=sec.name))
        groups.append(group)
        # biophysics refers to this list group: jNeuroML's NEURON export writes `forsec GROUP`, which
        # needs a SectionList, not the section of the same name
        groups.append(neuroml.SegmentGroup(id=_biogroup(sec.name), includes=[neuroml.Include(segment_groups=_gid(sec.name))]))
    for list_name, members in (ct.section_lists or {}).items():
        if list_name == "all":
            continue
        groups.append(neuroml.SegmentGroup(id=_gid(list_name), includes=[neuroml.Include(segment_groups=_gid(s))
                                                                         for s in members]))
    groups.append(neuroml.SegmentGroup(id="all", includes=[neuroml.Include(segment_groups=_gid(s.name))
                                                           for s in ct.sections or []]))
    morph.segment_groups = groups
    biophysics, channels = _biophysics(d, ct, cid)
    nml_cell = neuroml.Cell(id=cid, morphology=morph, biophysical_properties=biophysics)
    return nml_cell, segments, channels


def _biogroup(name: str) -> str:
    return f"{_gid(name)}_group"


def _gid(name: str) -> str:
    """A NeuroML id for a section name such as `dend[3]`."""
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name).strip("_") or "section"
    return out if out[0].isalpha() or out[0] == "_" else f"s_{out}"


def _check_mechanisms(ct: CellType, where: str) -> None:
    for sec in ct.sections or []:
        for mech, params in sec.mechanisms.items():
            if mech not in conv.KNOWN_MECHANISMS:
                mods = ", ".join(ct.mod_files or []) or "no mod file listed"
                raise UnsupportedFeature(
                    f"section {sec.name}: mechanism {mech!r} exists only as NMODL ({mods}); NeuroML2 needs a "
                    "channel definition (ionChannelHH / ComponentType) and netbabel does not invent one. Only "
                    "NEURON's built-in hh and pas are mapped. Fallback: export with --to netpyne or --to sonata, "
                    "which carry the NMODL files, or describe the channel in NeuroML2 and import that model",
                    None, f"{where}/sections")
            for key, value in params.items():
                if isinstance(value, list):
                    raise UnsupportedFeature(f"section {sec.name}: non-uniform {mech}.{key} (one value per segment) "
                                             "is not exported to NeuroML2", None, f"{where}/sections")


def _biophysics(d: Description, ct: CellType, cid: str) -> tuple[Any, set[str]]:
    import neuroml

    mp = neuroml.MembraneProperties()
    ip = neuroml.IntracellularProperties()
    used_channels: set[str] = set()
    for sec in ct.sections or []:
        group = _biogroup(sec.name)
        mp.specific_capacitances.append(neuroml.SpecificCapacitance(
            value=conv.q(float(d.value(sec.cm if sec.cm is not None else 1.0)), "uF_per_cm2"), segment_groups=group))
        ip.resistivities.append(neuroml.Resistivity(
            value=conv.q(float(d.value(sec.Ra if sec.Ra is not None else 35.4)), "ohm_cm"), segment_groups=group))
        for mech, params in sec.mechanisms.items():
            for density in _densities(d, sec, mech, params, group):
                used_channels.add(density.ion_channel)
                mp.channel_densities.append(density)
    v_init = d.simulation.v_init
    mp.init_memb_potentials.append(neuroml.InitMembPotential(
        value=conv.q(float(d.value(v_init)) if v_init is not None else -65.0, "mV"), segment_groups="all"))
    threshold = ct.spike_detection.threshold if ct.spike_detection is not None else 10.0
    mp.spike_threshes.append(neuroml.SpikeThresh(value=conv.q(float(threshold), "mV"), segment_groups="all"))
    return (neuroml.BiophysicalProperties(id=f"{cid}_biophysics", membrane_properties=mp,
                                          intracellular_properties=ip), used_channels)


def _densities(d: Description, sec: Section, mech: str, params: dict, group: str) -> list[Any]:
    import neuroml

    def value(key: str, default: float) -> float:
        return float(d.value(params.get(key, default)))

    if mech == "pas":
        return [neuroml.ChannelDensity(id=f"pas_{group}", ion_channel="pas", ion="non_specific", segment_groups=group,
                                       cond_density=conv.s_per_cm2(value("g", conv.PAS_DEFAULTS["g"])),
                                       erev=conv.q(value("e", conv.PAS_DEFAULTS["e"]), "mV"))]
    ions = sec.ions or {}
    ena = float(ions.get("na", {}).get("ena", conv.HH_REVERSALS["na"][1]))
    ek = float(ions.get("k", {}).get("ek", conv.HH_REVERSALS["k"][1]))
    hh = conv.HH_DEFAULTS
    return [
        neuroml.ChannelDensity(id=f"hh_na_{group}", ion_channel="hh_na", ion="na", segment_groups=group,
                               cond_density=conv.s_per_cm2(value("gnabar", hh["gnabar"])), erev=conv.q(ena, "mV")),
        neuroml.ChannelDensity(id=f"hh_k_{group}", ion_channel="hh_k", ion="k", segment_groups=group,
                               cond_density=conv.s_per_cm2(value("gkbar", hh["gkbar"])), erev=conv.q(ek, "mV")),
        neuroml.ChannelDensity(id=f"hh_leak_{group}", ion_channel="hh_leak", ion="non_specific",
                               segment_groups=group, cond_density=conv.s_per_cm2(value("gl", hh["gl"])),
                               erev=conv.q(value("el", hh["el"]), "mV")),
    ]


def add_channels(doc: Any, needed: set[str]) -> None:
    """The NeuroML2 channels that the exported cells use (hh_na, hh_k, hh_leak, pas)."""
    import neuroml

    existing = {c.id for c in doc.ion_channel_hhs} | {c.id for c in doc.ion_channel}
    for cid in sorted(needed - existing):
        if cid in conv.HH_CHANNELS:
            spec = conv.HH_CHANNELS[cid]
            gates = []
            for gate, (instances, forward, reverse) in spec["gates"].items():
                gates.append(neuroml.GateHHRates(
                    id=gate, instances=instances,
                    q10_settings=neuroml.Q10Settings(type="q10ExpTemp", q10_factor="3", experimental_temp="6.3 degC"),
                    forward_rate=neuroml.HHRate(type=forward[0], rate=forward[1], scale=forward[2], midpoint=forward[3]),
                    reverse_rate=neuroml.HHRate(type=reverse[0], rate=reverse[1], scale=reverse[2], midpoint=reverse[3])))
            doc.ion_channel_hhs.append(neuroml.IonChannelHH(id=cid, conductance="10pS", species=spec["ion"],
                                                            gate_hh_rates=gates))
        else:
            doc.ion_channel.append(neuroml.IonChannel(id=cid, conductance="10pS", type="ionChannelPassive"))


def add_synapse(doc: Any, ct: CellType, site: str, sid: str) -> None:
    """The NeuroML2 synapse of a synapse site: ExpSyn -> expOneSynapse, Exp2Syn -> expTwoSynapse (gbase 1 uS)."""
    import neuroml

    spec = (ct.synapses or {})[site]
    p = spec.params
    if spec.mechanism == "ExpSyn":
        doc.exp_one_synapses.append(neuroml.ExpOneSynapse(
            id=sid, gbase="1.0uS", erev=conv.q(float(p.get("e", 0.0)), "mV"),
            tau_decay=conv.q(float(p.get("tau", 0.1)), "ms")))
    elif spec.mechanism == "Exp2Syn":
        doc.exp_two_synapses.append(neuroml.ExpTwoSynapse(
            id=sid, gbase="1.0uS", erev=conv.q(float(p.get("e", 0.0)), "mV"),
            tau_rise=conv.q(float(p.get("tau1", 0.1)), "ms"), tau_decay=conv.q(float(p.get("tau2", 10.0)), "ms")))
    else:
        raise UnsupportedFeature(f"synapse site {site!r}: point process {spec.mechanism!r} has no NeuroML2 "
                                 "equivalent (ExpSyn and Exp2Syn are mapped)")

