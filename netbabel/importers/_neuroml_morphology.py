"""Multicompartment NeuroML2 cells for the NeuroML2 importer: morphology, biophysics, synapse sites.

Sections are the unbranched segment groups (neuroLexId sao864921383); without
them every segment is a section. Channels are recognised by their content, not
their id: an ionChannelHH with exactly the rates of NEURON's `hh` sodium or
potassium channel, and passive channels. A cell whose sodium, potassium and
leak densities cover the same sections becomes NEURON's `hh` (gnabar, gkbar,
gl, el; ena/ek as ions); other passive channels become `pas`. Any other
channel is refused with its id and file (netbabel would need its NMODL).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netbabel.converters import neuroml as conv
from netbabel.description.model import CellType, Section, SpikeDetection, SynapseSite
from netbabel.errors import NetbabelError, UnsupportedFeature

UNBRANCHED = "sao864921383"


def read_cell(imp: Any, el: Any) -> CellType:
    """A NeuroML2 <cell> as a netbabel multicompartment cell type."""
    morph = next(el.find("morphology"), None)
    bio = next(el.find("biophysicalProperties"), None)
    if morph is None:
        ref = el.attrs.get("morphology")
        morph = imp.m.components.get(ref) if ref else None
        if ref:
            imp.used.add(ref)
    if bio is None:
        ref = el.attrs.get("biophysicalProperties")
        bio = imp.m.components.get(ref) if ref else None
        if ref:
            imp.used.add(ref)
    if morph is None or bio is None:
        raise UnsupportedFeature(f"{el.where()}: a cell needs a morphology and biophysicalProperties", el.file)
    layout = _Layout(imp, el, morph)
    sections = layout.sections()
    ct = CellType(model="multicompartment", sections=sections, section_lists=layout.section_lists(),
                  source={"format": "neuroml", "cell": el.id(), "file": el.file})
    _biophysics(imp, el, bio, layout, ct)
    imp.__dict__.setdefault("layouts", {})[el.id()] = layout
    return ct


class _Layout:
    """Segments, sections (unbranched groups) and the groups that list them."""

    def __init__(self, imp: Any, cell: Any, morph: Any):
        self.imp, self.cell = imp, cell
        self.segments: dict[int, dict] = {}
        for seg in morph.find("segment"):
            sid = int(seg.attrs["id"])
            parent = next(seg.find("parent"), None)
            prox = next(seg.find("proximal"), None)
            dist = next(seg.find("distal"), None)
            if dist is None:
                raise NetbabelError(f"{seg.where()} of cell {cell.id()!r}: no distal point", seg.file)
            self.segments[sid] = {
                "parent": int(parent.attrs["segment"]) if parent is not None else None,
                "fraction": float(parent.attrs.get("fractionAlong", 1.0)) if parent is not None else 1.0,
                "proximal": _point(prox) if prox is not None else None, "distal": _point(dist)}
        self.groups = {g.id(): g for g in morph.find("segmentGroup")}
        self.section_of: dict[int, str] = {}
        self.members: dict[str, list[int]] = {}
        self.names: dict[str, str] = {}
        unbranched = [g for g in self.groups.values() if g.attrs.get("neuroLexId") == UNBRANCHED]
        if unbranched:
            for g in unbranched:
                props = {p.attrs.get("tag"): p.attrs.get("value") for p in g.find("property")}
                name = props.get("netbabel_section") or g.id()
                self.names[g.id()] = name
                segs = [int(m.attrs["segment"]) for m in g.find("member")]
                self.members[name] = segs
                for s in segs:
                    self.section_of[s] = name
        missing = [s for s in self.segments if s not in self.section_of]
        for s in missing:
            name = f"seg{s}"
            self.members[name] = [s]
            self.section_of[s] = name

    def group_sections(self, gid: str, seen: set | None = None) -> list[str]:
        """The sections a segment group covers (members, includes, recursively)."""
        if gid == "all" and gid not in self.groups:
            return list(self.members)
        if gid in self.names:
            return [self.names[gid]]
        g = self.groups.get(gid)
        if g is None:
            raise NetbabelError(f"cell {self.cell.id()!r}: undefined segment group {gid!r}", self.cell.file)
        seen = seen or set()
        out: list[str] = []
        for m in g.find("member"):
            sec = self.section_of[int(m.attrs["segment"])]
            if sec not in out:
                out.append(sec)
        for inc in g.find("include"):
            ref = inc.attrs.get("segmentGroup", "")
            if ref not in seen:
                seen.add(ref)
                out.extend(s for s in self.group_sections(ref, seen) if s not in out)
        if not out and (list(g.find("path")) or list(g.find("subTree"))):
            raise UnsupportedFeature(f"cell {self.cell.id()!r}: segment group {gid!r} uses path/subTree",
                                     self.cell.file)
        return out

    def sections(self) -> list[Section]:
        out = []
        order = sorted(self.members, key=lambda n: min(self.members[n]))
        for name in order:
            segs = sorted(self.members[name])
            first = self.segments[segs[0]]
            points = []
            prox = first["proximal"]
            if prox is None and first["parent"] is not None:
                prox = self.segments[first["parent"]]["distal"]
            points.append(prox)
            points.extend(self.segments[s]["distal"] for s in segs)
            parent, parent_x = None, 1.0
            if first["parent"] is not None:
                parent = self.section_of[first["parent"]]
                parent_x = self.x_of(parent, first["parent"], first["fraction"])
            nseg = 1
            gid = next((g for g, n in self.names.items() if n == name), None)
            if gid is not None:
                props = {p.attrs.get("tag"): p.attrs.get("value") for p in self.groups[gid].find("property")}
                nseg = int(props.get("numberInternalDivisions", 1))
            out.append(Section(name=name, parent=parent, parent_x=parent_x, nseg=nseg,
                               points=[[float(v) for v in p] for p in points]))
        return out

    def x_of(self, section: str, segment: int, fraction: float) -> float:
        """Position along a section of a point `fraction` along one of its segments (by length)."""
        segs = sorted(self.members[section])
        lengths = [np.linalg.norm(np.subtract(self.segments[s]["distal"][:3], self._proximal(s)[:3])) for s in segs]
        total = sum(lengths) or 1.0
        before = sum(lengths[: segs.index(segment)])
        return conv.tidy((before + fraction * lengths[segs.index(segment)]) / total)

    def _proximal(self, s: int) -> list[float]:
        seg = self.segments[s]
        return seg["proximal"] if seg["proximal"] is not None else self.segments[seg["parent"]]["distal"]

    def section_lists(self) -> dict[str, list[str]]:
        lists = {}
        for gid, g in self.groups.items():
            if gid == "all" or gid in self.names or gid.endswith("_group") and len(self.group_sections(gid)) == 1 and \
                    gid[:-6] in self.names:
                continue
            lists[gid] = self.group_sections(gid)
        return lists


def _point(el: Any) -> list[float]:
    return [float(el.attrs[k]) for k in ("x", "y", "z", "diameter")]


def _biophysics(imp: Any, cell: Any, bio: Any, layout: _Layout, ct: CellType) -> None:
    sections = {s.name: s for s in ct.sections or []}
    mp = next(bio.find("membraneProperties"), None)
    ip = next(bio.find("intracellularProperties"), None)
    hh: dict[str, dict] = {}
    for el in (mp.children if mp is not None else []):
        groups = layout.group_sections(el.attrs.get("segmentGroup", "all"))
        if el.tag == "specificCapacitance":
            for s in groups:
                sections[s].cm = imp.q(el, "value", "uF_per_cm2")
        elif el.tag == "spikeThresh":
            root = ct.sections[0].name
            ct.spike_detection = SpikeDetection(section=root, x=0.5, threshold=imp.q(el, "value", "mV"))
        elif el.tag == "initMembPotential":
            imp.d.simulation.v_init = imp.q(el, "value", "mV")
        elif el.tag == "channelDensity":
            kind = _channel_kind(imp, el)
            g = imp.q(el, "condDensity", "S_per_cm2")
            erev = imp.q(el, "erev", "mV")
            for s in groups:
                if kind == "passive":
                    sections[s].mechanisms["pas"] = {"g": g, "e": erev}
                else:
                    hh.setdefault(s, {})[kind] = (g, erev, el)
        else:
            raise UnsupportedFeature(f"{el.where()} in cell {cell.id()!r}: <{el.tag}> cannot be mapped", el.file)
    for s, parts in hh.items():
        if set(parts) != {"na", "k"} or "pas" not in sections[s].mechanisms:
            el = next(iter(parts.values()))[2]
            raise UnsupportedFeature(f"{el.where()} in cell {cell.id()!r}: section {s}: Hodgkin-Huxley sodium, "
                                     "potassium and a leak must all be present to map to NEURON's hh", el.file)
        leak = sections[s].mechanisms.pop("pas")
        sections[s].mechanisms["hh"] = {"gnabar": parts["na"][0], "gkbar": parts["k"][0], "gl": leak["g"],
                                        "el": leak["e"]}
        sections[s].ions = {"na": {"ena": parts["na"][1]}, "k": {"ek": parts["k"][1]}}
    for el in (ip.children if ip is not None else []):
        if el.tag == "resistivity":
            for s in layout.group_sections(el.attrs.get("segmentGroup", "all")):
                sections[s].Ra = imp.q(el, "value", "ohm_cm")
        else:
            raise UnsupportedFeature(f"{el.where()} in cell {cell.id()!r}: <{el.tag}> cannot be mapped", el.file)


def _channel_kind(imp: Any, density: Any) -> str:
    """'na' / 'k' (NEURON hh channels), 'passive', or an error naming the channel."""
    cid = density.attrs.get("ionChannel", "")
    ch = imp.component(cid, density, "ion channel")
    if ch.tag in ("ionChannel", "ionChannelPassive") and (ch.tag == "ionChannelPassive" or
                                                          ch.attrs.get("type") == "ionChannelPassive" or
                                                          not ch.children):
        return "passive"
    for kind, spec in conv.HH_CHANNELS.items():
        if _same_rates(imp, ch, spec):
            return spec["ion"]
    raise UnsupportedFeature(f"{ch.where()}: ion channel {cid!r} is not one netbabel maps to a NEURON built-in "
                             "(hh sodium/potassium, passive); its NMODL would be needed", ch.file)


def _same_rates(imp: Any, ch: Any, spec: dict) -> bool:
    gates = [g for g in ch.children if g.tag in ("gateHHrates", "gate")]
    if len(gates) != len(spec["gates"]) or ch.attrs.get("species") != spec["ion"]:
        return False
    for g in gates:
        want = spec["gates"].get(g.id())
        if want is None or int(g.attrs.get("instances", 1)) != want[0]:
            return False
        q10 = next(g.find("q10Settings"), None)
        if q10 is None or float(q10.attrs.get("q10Factor", 0)) != 3.0 or \
                conv.quantity_in(q10.attrs.get("experimentalTemp", "0degC"), "degC") != 6.3:
            return False
        for tag, expected in (("forwardRate", want[1]), ("reverseRate", want[2])):
            rate = next(g.find(tag), None)
            if rate is None or rate.attrs.get("type") != expected[0]:
                return False
            for attr, text in zip(("rate", "scale", "midpoint"), expected[1:]):
                unit = {"rate": "per_ms", "scale": "mV", "midpoint": "mV"}[attr]
                if imp.q(rate, attr, unit) != conv.quantity_in(text, unit):
                    return False
    return True


# -- synapses and inputs on multicompartment cells -----------------------------------------------------------

def _site(imp: Any, pending_target: Any, syn_el: Any, segments: list, where: Any) -> str:
    """Register (once) a synapse site for synapse `syn_el` at the projection's segment; its name."""
    ct = imp.d.cell_types[pending_target.component]
    layout = imp.layouts[pending_target.component]
    if len(set(segments)) > 1:
        raise UnsupportedFeature(f"{where.where()}: connections onto several segments of cell "
                                 f"{pending_target.component!r}: netbabel puts one synapse site per projection",
                                 where.file)
    seg, frac = segments[0] if segments else (0, 0.5)
    section = layout.section_of[seg]
    x = layout.x_of(section, seg, frac)
    if syn_el.tag == "expOneSynapse":
        mech, params = "ExpSyn", {"tau": imp.q(syn_el, "tauDecay", "ms"), "e": imp.q(syn_el, "erev", "mV")}
    elif syn_el.tag == "expTwoSynapse":
        mech, params = "Exp2Syn", {"tau1": imp.q(syn_el, "tauRise", "ms"), "tau2": imp.q(syn_el, "tauDecay", "ms"),
                                   "e": imp.q(syn_el, "erev", "mV")}
    else:
        raise UnsupportedFeature(f"{syn_el.where()}: <{syn_el.tag}> on a multicompartment cell has no NEURON "
                                 "point process netbabel maps (expOneSynapse, expTwoSynapse)", syn_el.file)
    ct.synapses = ct.synapses or {}
    name = syn_el.id() if (syn_el.id() not in ct.synapses or
                           (ct.synapses[syn_el.id()].section, ct.synapses[syn_el.id()].x) == (section, x)) \
        else f"{syn_el.id()}_{section}_{len(ct.synapses)}"
    ct.synapses[name] = SynapseSite(mechanism=mech, section=section, x=x, params=params)
    imp.d.synapse_types.setdefault(name, _synapse_type(name))
    return name


def _synapse_type(site: str) -> Any:
    from netbabel.description.model import SynapseType

    return SynapseType(model="static", receptor="excitatory", site=site)


def _gbase(imp: Any, syn_el: Any) -> float:
    return imp.q(syn_el, "gbase", "uS")


def projection_site(imp: Any, proj: Any, ct: CellType) -> tuple[str, np.ndarray]:
    site = _site(imp, proj.post, proj.syn_el, proj.segments, proj.el)
    if np.any(proj.weights < 0):
        raise UnsupportedFeature(f"{proj.el.where()}: negative weights onto a conductance synapse", proj.el.file)
    return site, np.array([conv.tidy(w * _gbase(imp, proj.syn_el)) for w in proj.weights])


def input_site(imp: Any, pending: Any) -> tuple[str, float]:
    layout = imp.layouts[pending.target.component]
    seg, frac = pending.segments[0] if pending.segments else (0, 0.5)
    section = layout.section_of[seg]
    return section, layout.x_of(section, seg, frac)


def input_synapse(imp: Any, pending: Any, syn_el: Any, weight: float) -> tuple[str, float]:
    site = _site(imp, pending.target, syn_el, pending.segments, pending.el)
    return site, conv.tidy(weight * _gbase(imp, syn_el))
