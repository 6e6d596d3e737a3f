"""NeuroML2 exporter: a `<name>.net.nml` network (or `.net.nml.h5`) and a `LEMS_<name>.xml` simulation.

NeuroML2 has no connection rules, so every rule is drawn by
`netbabel.instantiate` and written as explicit `connectionWD`s (weights and
delays per connection). Poisson inputs are `poissonFiringSynapse`s in native
mode (each simulator draws its own trains) and `timedSynapticInput`s carrying
netbabel's own trains in frozen mode (for spike-by-spike comparison). The unit
and cell-type mapping is in `netbabel.converters.neuroml`. What NeuroML2 cannot
express (delta synapses, NMODL-only mechanisms, per-cell initial potentials,
...) is refused with the reason, never dropped.

The Open Source Brain bundle (NeuroML2 + LEMS + OMV tests + README) of `netbabel publish`
is written by `netbabel.publish`, which runs this exporter and the neuroml backend.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netbabel.converters import neuroml as conv
from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT, defaults
from netbabel.description.model import Description, Distribution, Input, Population
from netbabel.errors import NetbabelError, UnsupportedFeature

FORMAT = "neuroml"
SINGLE_FILE = False
HDF5_THRESHOLD = 200_000  # connections above which --neuroml-hdf5 auto writes HDF5
ID_MAP_FILE = "netbabel_ids.json"
# jNeuroML's NEURON export refuses PyNN cells with tau_refrac = 0. Its refractory regime ends on a NEURON
# WATCH (t > last spike + tau_refrac), which only fires when a step end has seen the condition false:
# tau_refrac = 1.5 dt ends it at the second step after the spike (jLEMS with 0: the first)
NEURON_TAU_REFRAC_STEPS = 1.5
_NML_ID = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--neuroml-hdf5", choices=["auto", "always", "never"], default="auto",
                       help=f"write the network as NeuroML2 HDF5 (auto: above {HDF5_THRESHOLD} connections)")


@dataclass
class Export:
    """What `export` wrote: the network and LEMS files and the NeuroML id of each population."""

    directory: Path
    network_file: Path
    lems_file: Path
    population_ids: dict[str, str]  # netbabel population -> NeuroML population id
    spike_files: dict[str, str]  # netbabel population -> spike file (relative, times in s)
    sizes: dict[str, int] = field(default_factory=dict)


def write(description: Description, out: Path, options: argparse.Namespace) -> None:
    """`netbabel convert ... --to neuroml`: the network and LEMS files in the directory `out`."""
    export(description, out, options)


# -- the export -----------------------------------------------------------------------------

def export(description: Description, out: Path, options: Any = None, safe_ids: bool = False,
           validate: bool = True) -> Export:
    """Write `<name>.net.nml` (or `.net.nml.h5`) and `LEMS_<name>.xml` into the directory `out`.

    `safe_ids` prefixes population ids with `pop_` (jNeuroML's NEURON export puts them in hoc,
    where names such as `E` or `PI` are built-in constants; the mapping is in `netbabel_ids.json`)
    and writes a PyNN cell's tau_refrac 0 as 1.5 dt (NEURON_TAU_REFRAC_STEPS; the NEURON export refuses 0).
    V_m recordings (simulation.record.v) go to `<population id>.v.dat` (time and v of the recorded
    cells in ascending index order, SI units; `voltage_columns`).
    """
    quiet_libraries()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frozen = getattr(options, "mode", "native") == "frozen"
    _refuse_inexpressible(description)
    with tempfile.TemporaryDirectory(prefix="netbabel-neuroml-") as scratch:
        explicit = _explicit(description, frozen, Path(scratch))
        return _export(description, explicit, out, options, safe_ids, validate, frozen)


def _export(description: Description, explicit: Description, out: Path, options: Any, safe_ids: bool,
            validate: bool, frozen: bool) -> Export:
    import neuroml

    name = _nml_id(description.name, "model")
    doc = neuroml.NeuroMLDocument(id=name, notes=_notes(description))
    net = neuroml.Network(id=f"{name}_network")
    hdf5 = _use_hdf5(getattr(options, "neuroml_hdf5", "auto"), _count_edges(explicit))
    builder = _Builder(description, explicit, doc, net, safe_ids, frozen)
    builder.all_listed = hdf5  # jNeuroML reads HDF5 connections only between populationLists
    builder.build()
    doc.networks.append(net)
    network_file = out / (f"{name}.net.nml.h5" if hdf5 else f"{name}.net.nml")
    _write_document(doc, network_file, hdf5, validate, builder)
    lems_file = _write_lems(description, name, net.id, network_file, builder, out)
    ids = {pop: builder.pop_ids[pop] for pop in description.populations}
    (out / ID_MAP_FILE).write_text(json.dumps({"populations": ids, "spike_files": builder.spike_files,
                                               "sizes": builder.sizes}, indent=1))
    return Export(out, network_file, lems_file, ids, dict(builder.spike_files), dict(builder.sizes))


def _count_edges(d: Description) -> int:
    import h5py

    total = 0
    for i, proj in enumerate(d.projections):
        if proj.rule.type != "explicit" or not proj.rule.file:
            continue
        try:
            with h5py.File(d.resolve_path(proj.rule.file), "r") as f:
                total += f[f"edges/{proj.rule.population or d.projection_name(i)}/source_node_id"].shape[0]
        except (OSError, KeyError):
            continue
    return total


def quiet_libraries() -> None:
    """pyNeuroML, libNeuroML and numexpr log at INFO level on import and on every file written."""
    import logging

    logging.getLogger("numexpr").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("pyneuroml", "neuroml", "numexpr"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _use_hdf5(choice: str, connections: int) -> bool:
    return choice == "always" or (choice == "auto" and connections > HDF5_THRESHOLD)


def _notes(d: Description) -> str:
    from netbabel import __version__

    title = d.metadata.title or d.name
    return f"{title}. Exported by netbabel {__version__}."


def _nml_id(text: str, fallback: str) -> str:
    """A valid NeuroML2 id (NmlId) made from `text`."""
    if _NML_ID.match(text):
        return text
    cleaned = re.sub(r"[^a-zA-Z0-9_]", "_", text)
    if not cleaned or not re.match(r"[a-zA-Z_]", cleaned[0]):
        cleaned = f"{fallback}_{cleaned}"
    return cleaned


def _refuse_inexpressible(d: Description) -> None:
    """Refuse, before writing anything, what NeuroML2 cannot express."""
    for pname, pop in d.populations.items():
        cell = d.cell_types[pop.cell_type]
        where = f"/populations/{pname}"
        if isinstance(pop.v_init, Distribution):
            raise UnsupportedFeature("NeuroML2 populations have one initial potential per cell type: a "
                                     "v_init distribution cannot be expressed", None, f"{where}/v_init")
        if cell.model == "spike_generator":
            times = cell.params.get("spike_times", [])
            if cell.params.get("spike_file") or (times and isinstance(times[0], list)):
                raise UnsupportedFeature("a spike_generator population with one train per cell is not "
                                         "expressible as a NeuroML2 population (one spikeArray per population); "
                                         "use a spike_train input instead", None, f"/cell_types/{pop.cell_type}")
    for i, proj in enumerate(d.projections):
        model = d.cell_types[d.populations[proj.target].cell_type].model
        if model in ("iaf_psc_delta", "izhikevich"):
            raise UnsupportedFeature(conv.DELTA_REFUSAL.format(model=model), None, f"/projections/{i}")
        syn = d.synapse_types.get(proj.synapse_type or "")
        if syn is not None and syn.model != "static":
            raise UnsupportedFeature(f"synapse model {syn.model!r}: netbabel exports only static synapses to "
                                     "NeuroML2", None, f"/synapse_types/{proj.synapse_type}")
    for i, inp in enumerate(d.inputs):
        model = d.cell_types[d.populations[inp.target].cell_type].model
        if inp.type in ("poisson", "spike_train") and model in ("iaf_psc_delta", "izhikevich"):
            raise UnsupportedFeature(conv.DELTA_REFUSAL.format(model=model), None, f"/inputs/{i}")


def _explicit(d: Description, frozen: bool, scratch: Path) -> Description:
    """The description with every projection explicit (and, in frozen mode, every Poisson input a spike train)."""
    needs = any(p.rule.type != "explicit" for p in d.projections) or (
        frozen and any(i.type == "poisson" for i in d.inputs)) or any(
        p.positions is not None and p.positions.type == "random" for p in d.populations.values())
    if not needs:
        return d
    from netbabel.instantiate import instantiate_to_directory

    explicit = instantiate_to_directory(d, scratch / "explicit", progress=False)
    explicit.__dict__["_tmp_dir"] = scratch / "explicit"
    return explicit


def read_edges(d: Description, rule_file: str, population: str) -> dict[str, np.ndarray]:
    """Source, target, weight and delay arrays of one SONATA edge population."""
    import h5py

    path = d.resolve_path(rule_file)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetbabelError(f"cannot read edges: {exc}", str(path)) from None
    with f:
        group = f.get(f"edges/{population}")
        if group is None:
            raise NetbabelError(f"no edge population {population!r}", str(path), f"/edges/{population}")
        out = {"source": group["source_node_id"][()].astype(np.int64),
               "target": group["target_node_id"][()].astype(np.int64)}
        attrs = group.get("0")
        for key, name in (("weight", "syn_weight"), ("delay", "delay")):
            if attrs is not None and name in attrs:
                out[key] = attrs[name][()].astype(np.float64)
    return out


def read_spike_trains(d: Description, spike_file: str, population: str) -> tuple[np.ndarray, np.ndarray]:
    """(node_ids, times in ms) of one population of a SONATA spike file."""
    import h5py

    path = d.resolve_path(spike_file)
    with h5py.File(path, "r") as f:
        group = f.get(f"spikes/{population}")
        if group is None:
            raise NetbabelError(f"no spike population {population!r}", str(path))
        return group["node_ids"][()].astype(np.int64), group["timestamps"][()].astype(np.float64)


# -- building the NeuroML document -------------------------------------------------------------------

class _Builder:
    def __init__(self, original: Description, explicit: Description, doc: Any, net: Any, safe_ids: bool,
                 frozen: bool):
        self.d = original
        self.x = explicit
        self.doc = doc
        self.net = net
        self.safe_ids = safe_ids
        self.frozen = frozen
        self.pop_ids: dict[str, str] = {}
        self.components: dict[str, str] = {}  # cell type -> NeuroML component id
        self.cell_models: dict[str, str] = {}  # cell type -> catalogue model
        self.cell_params: dict[str, dict] = {}
        self.synapses: dict[tuple[str, str], str] = {}
        self.listed: set[str] = set()
        self.sizes: dict[str, int] = {}
        self.spike_files: dict[str, str] = {}
        self.connection_count = 0
        self.segments: dict[str, dict[str, list[tuple[int, float, float]]]] = {}  # cell -> section -> segs
        self.used_ids: set[str] = set()
        self.channels: set[str] = set()
        self.all_listed = False
        self.pop_components: dict[str, str] = {}  # population -> NeuroML cell component
        self.connections: dict[str, tuple] = {}  # projection id -> arrays, written by write_connections

    def unique(self, text: str, fallback: str) -> str:
        base = _nml_id(text, fallback)
        candidate, k = base, 1
        while candidate in self.used_ids:
            k += 1
            candidate = f"{base}_{k}"
        self.used_ids.add(candidate)
        return candidate

    def build(self) -> None:
        if self.d.simulation.temperature is not None:
            self.net.type = "networkWithTemperature"
            self.net.temperature = conv.q(self.d.value(self.d.simulation.temperature), "degC")
        for pname, pop in self.d.populations.items():
            self.population(pname, pop)
        for i, proj in enumerate(self.x.projections):
            self.projection(i, proj)
        inputs = self.x.inputs if self.frozen else self.d.inputs
        for i, inp in enumerate(inputs):
            self.input(i, inp, self.x if self.frozen else self.d)
        if self.channels:
            from netbabel.exporters import _neuroml_morphology as morph

            morph.add_channels(self.doc, self.channels)

    # cells ------------------------------------------------------------------------------------------
    def component(self, type_name: str) -> str:
        if type_name in self.components:
            return self.components[type_name]
        cell = self.d.cell_types[type_name]
        cid = self.unique(type_name, "cell")
        self.components[type_name] = cid
        self.cell_models[type_name] = cell.model
        where = f"/cell_types/{type_name}"
        if cell.model == MULTICOMPARTMENT:
            from netbabel.exporters import _neuroml_morphology as morph

            nml_cell, segments, channels = morph.cell(self.d, cell, cid, where)
            self.segments[type_name] = segments
            self.channels |= channels
            self.doc.cells.append(nml_cell)
            self.cell_params[type_name] = {}
            return cid
        params = {**defaults(cell.model), **{k: self._eval(v, f"{where}/params/{k}") for k, v in cell.params.items()}}
        self.cell_params[type_name] = params
        if cell.model == "poisson_generator":
            self._poisson_source(cid, params, where)
        elif cell.model == "spike_generator":
            self._spike_source(cid, params)
        else:
            try:
                nml_type, attrs = conv.cell_to_neuroml(cell.model, params)
            except UnsupportedFeature as exc:
                raise UnsupportedFeature(exc.problems[0].message, None, where) from None
            self._add_component(nml_type, cid, attrs)
        return cid

    def _eval(self, value: Any, where: str) -> Any:
        if isinstance(value, (list, bool)) or value is None:
            return value
        if isinstance(value, str) and value.endswith((".h5", ".csv")):
            return value
        return self.d.value(value)

    def _add_component(self, nml_type: str, cid: str, attrs: dict[str, str]) -> None:
        import neuroml

        cls_name = {"IF_curr_exp": "IF_curr_exp", "IF_curr_alpha": "IF_curr_alpha", "IF_cond_exp": "IF_cond_exp",
                    "IF_cond_alpha": "IF_cond_alpha", "EIF_cond_exp_isfa_ista": "EIF_cond_exp_isfa_ista",
                    "HH_cond_exp": "HH_cond_exp", "izhikevichCell": "IzhikevichCell",
                    "iafRefCell": "IafRefCell", "izhikevich2007Cell": "Izhikevich2007Cell"}[nml_type]
        if self.safe_ids and attrs.get("tau_refrac") is not None and float(attrs["tau_refrac"]) == 0:
            dt = float(self.d.value(self.d.simulation.dt))
            attrs = {**attrs, "tau_refrac": conv.fmt(NEURON_TAU_REFRAC_STEPS * dt)}
        kwargs = {_snake(k): v for k, v in attrs.items()}
        obj = getattr(neuroml, cls_name)(id=cid, **kwargs)
        self.doc.add(obj)

    def _poisson_source(self, cid: str, p: dict, where: str) -> None:
        import neuroml

        start = float(p["start"]) + float(p["origin"])
        stop = float(p["stop"]) + float(p["origin"])
        duration = stop - start if math.isfinite(stop) else 1e9
        self.doc.add(neuroml.SpikeSourcePoisson(id=cid, start=conv.q(start, "ms"), duration=conv.q(duration, "ms"),
                                                rate=conv.q(float(p["rate"]), "Hz")))

    def _spike_source(self, cid: str, p: dict) -> None:
        import neuroml

        times = [self.d.value(t) for t in p.get("spike_times", [])]
        self.doc.add(neuroml.SpikeArray(id=cid, spikes=[neuroml.Spike(id=k, time=conv.q(t, "ms"))
                                                        for k, t in enumerate(times)]))

    # populations -------------------------------------------------------------------------------------
    def population(self, pname: str, pop: Population) -> None:
        import neuroml

        comp = self.component(pop.cell_type)
        pid = self.unique(f"pop_{pname}" if self.safe_ids else pname, "pop")
        self.pop_ids[pname] = pid
        size = self.d.size(pname)
        self.sizes[pname] = size
        positions = self._positions(pname, pop, size)
        model = self.cell_models[pop.cell_type]
        if pop.v_init is not None and model not in ("poisson_generator", "spike_generator"):
            comp = self._component_with_v_init(pname, pop, comp, model)
        self.pop_components[pname] = comp
        props = [neuroml.Property(tag="netbabel_name", value=pname)] if pid != pname else []
        for key, value in pop.annotations.items():
            props.append(neuroml.Property(tag=str(key), value=str(value)))
        if positions is not None or model == MULTICOMPARTMENT or self.all_listed:
            if positions is None:
                positions = np.zeros((size, 3))
            instances = [neuroml.Instance(id=i, location=neuroml.Location(x=float(x), y=float(y), z=float(z)))
                         for i, (x, y, z) in enumerate(positions)]
            self.listed.add(pname)
            nml_pop = neuroml.Population(id=pid, component=comp, size=size, type="populationList",
                                         instances=instances, properties=props)
        else:
            nml_pop = neuroml.Population(id=pid, component=comp, size=size, properties=props)
        self.net.populations.append(nml_pop)
        if self._recorded(pname):
            self.spike_files[pname] = f"{pid}.spikes"

    def _component_with_v_init(self, pname: str, pop: Population, comp: str, model: str) -> str:
        """NeuroML2 takes the initial potential from the cell: a copy of the cell type with V_m = v_init."""
        where = f"/populations/{pname}/v_init"
        if model == MULTICOMPARTMENT:
            raise UnsupportedFeature("multicompartment cells start at simulation.v_init in NeuroML2 "
                                     "(initMembPotential); a population v_init is not exported", None, where)
        params = {**self.cell_params[pop.cell_type], "V_m": float(self.d.value(pop.v_init))}
        if params["V_m"] == self.cell_params[pop.cell_type]["V_m"]:
            return comp
        try:
            nml_type, attrs = conv.cell_to_neuroml(model, params)
        except UnsupportedFeature as exc:
            raise UnsupportedFeature(exc.problems[0].message, None, where) from None
        cid = self.unique(f"{comp}_{pname}", "cell")
        self._add_component(nml_type, cid, attrs)
        return cid

    def _recorded(self, pname: str) -> bool:
        spikes = self.d.simulation.record.spikes
        return spikes == "all" or pname in spikes

    def _positions(self, pname: str, pop: Population, size: int) -> np.ndarray | None:
        pos = pop.positions
        if pos is None:
            return None
        if pos.type == "grid":
            shape = list(pos.shape or [])
            spacing = list(pos.spacing or [1.0] * len(shape))
            origin = list(pos.origin or [0.0] * len(shape))
            axes = [origin[k] + spacing[k] * np.arange(shape[k]) for k in range(len(shape))]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))
            return np.pad(grid, ((0, 0), (0, 3 - grid.shape[1])))
        if pos.type == "file":
            return _read_positions(self.d, pos.file or "", f"/populations/{pname}/positions/file")
        nodes = self._instantiated_positions(pname)
        if nodes is None:
            raise UnsupportedFeature("random positions need netbabel.instantiate's nodes.h5 with x, y, z",
                                     None, f"/populations/{pname}/positions")
        return nodes

    def _instantiated_positions(self, pname: str) -> np.ndarray | None:
        import h5py

        tmp = self.x.__dict__.get("_tmp_dir")
        if tmp is None or not (Path(tmp) / "nodes.h5").exists():
            return None
        with h5py.File(Path(tmp) / "nodes.h5", "r") as f:
            group = f.get(f"nodes/{pname}/0")
            if group is None or not all(k in group for k in ("x", "y", "z")):
                return None
            return np.stack([group[k][()] for k in ("x", "y", "z")], axis=1)

    def cell_path(self, pname: str, index: int) -> str:
        pid = self.pop_ids[pname]
        if pname in self.listed:
            return f"../{pid}/{index}/{self.pop_components[pname]}"
        return f"../{pid}[{index}]"

    # synapses and projections -----------------------------------------------------------------------------
    def synapse(self, target_type: str, receptor: str, site: str | None = None) -> str:
        key = (target_type, site or receptor)
        if key in self.synapses:
            return self.synapses[key]
        import neuroml

        model = self.cell_models[target_type]
        if model == MULTICOMPARTMENT:
            from netbabel.exporters import _neuroml_morphology as morph

            sid = self.unique(f"syn_{target_type}_{site}", "syn")
            morph.add_synapse(self.doc, self.d.cell_types[target_type], site, sid)
        else:
            nml_type, attrs = conv.synapse_to_neuroml(model, self.cell_params[target_type], receptor)
            sid = self.unique(f"syn_{target_type}_{'ex' if receptor == 'excitatory' else 'in'}", "syn")
            cls = {"expCurrSynapse": neuroml.ExpCurrSynapse, "alphaCurrSynapse": neuroml.AlphaCurrSynapse,
                   "expCondSynapse": neuroml.ExpCondSynapse, "alphaCondSynapse": neuroml.AlphaCondSynapse,
                   "expTwoSynapse": neuroml.ExpTwoSynapse}[nml_type]
            self.doc.add(cls(id=sid, **attrs))
        self.synapses[key] = sid
        return sid

    def receptor(self, synapse_type: str | None, weight_sign: float, target_type: str, where: str) -> tuple[str, str | None]:
        syn = self.d.synapse_types.get(synapse_type or "")
        model = self.cell_models[target_type]
        if model == MULTICOMPARTMENT:
            site = syn.site if syn is not None else None
            sites = self.d.cell_types[target_type].synapses or {}
            if site is None and len(sites) == 1:
                site = next(iter(sites))
            if site is None or site not in sites:
                raise UnsupportedFeature("a connection onto a multicompartment cell needs a synapse type naming one "
                                         "of the cell's synapses (site)", None, where)
            return "site", site
        if model in MODELS and MODELS[model].synapse == "current":
            return ("excitatory" if weight_sign >= 0 else "inhibitory"), None
        receptor = syn.receptor if syn is not None else "excitatory"
        if receptor not in ("excitatory", "inhibitory"):
            raise UnsupportedFeature(f"receptor {receptor!r}: NeuroML2 export knows excitatory and inhibitory",
                                     None, where)
        return receptor, None

    def projection(self, index: int, proj: Any) -> None:
        import neuroml

        where = f"/projections/{index}"
        name = self.x.projection_name(index)
        edges = read_edges(self.x, proj.rule.file, proj.rule.population or name)
        n = len(edges["source"])
        weights = edges.get("weight")
        if weights is None:
            weights = np.full(n, self._scalar(proj.weight, f"{where}/weight"))
        delays = edges.get("delay")
        if delays is None:
            delays = np.full(n, self._scalar(proj.delay, f"{where}/delay"))
        target_type = self.d.populations[proj.target].cell_type
        model = self.cell_models[target_type]
        groups: dict[tuple[str, str | None], np.ndarray] = {}
        signs = np.sign(weights)
        for sign in (1.0, -1.0):
            mask = signs >= 0 if sign > 0 else signs < 0
            if not mask.any():
                continue
            receptor, site = self.receptor(proj.synapse_type, sign, target_type, where)
            groups.setdefault((receptor, site), np.zeros(n, bool))
            groups[(receptor, site)] |= mask
        for k, ((receptor, site), mask) in enumerate(groups.items()):
            syn = self.synapse(target_type, receptor, site)
            pid = self.unique(name if k == 0 else f"{name}_{receptor}", "proj")
            nml = neuroml.Projection(id=pid, presynaptic_population=self.pop_ids[proj.source],
                                     postsynaptic_population=self.pop_ids[proj.target], synapse=syn)
            post_segment = self._site_segment(target_type, site)
            sources, targets = edges["source"][mask], edges["target"][mask]
            w = weights[mask] if model == MULTICOMPARTMENT else np.array(
                [conv.weight_to_neuroml(model, float(x)) for x in weights[mask]])
            if self.all_listed:  # HDF5: the arrays are written directly, in libNeuroML's layout
                nml = _array_projection(nml, sources, targets, w, delays[mask], post_segment)
            else:  # XML: the connections are streamed into the file after libNeuroML wrote the rest
                self.connections[pid] = (proj.source, proj.target, sources, targets, w, delays[mask], post_segment)
            self.connection_count += int(mask.sum())
            self.net.projections.append(nml)

    def _site_segment(self, target_type: str, site: str | None) -> tuple[int, float] | None:
        if site is None:
            return None
        from netbabel.exporters import _neuroml_morphology as morph

        spec = self.d.cell_types[target_type].synapses[site]
        return morph.segment_at(self.segments[target_type], spec.section, spec.x)

    def _scalar(self, value: Any, where: str) -> float:
        if isinstance(value, Distribution):
            raise UnsupportedFeature("a distribution here needs explicit values (instantiate the model)", None, where)
        return float(self.d.value(value))

    # inputs -----------------------------------------------------------------------------------------------
    def input(self, index: int, inp: Input, d: Description) -> None:
        where = f"/inputs/{index}"
        name = d.input_name(index)
        target_type = self.d.populations[inp.target].cell_type
        size = self.sizes[inp.target]
        if inp.type == "dc":
            self._pulses(name, inp.target, target_type, size, [(inp.start, inp.stop, inp.amplitude)], inp, where)
        elif inp.type == "step_current":
            times = [d.value(t) for t in inp.times or []]
            amps = [d.value(a) for a in inp.amplitudes or []]
            stop = d.value(inp.stop) if inp.stop is not None else float(d.value(self.d.simulation.duration))
            pieces = [(times[k], times[k + 1] if k + 1 < len(times) else stop, amps[k]) for k in range(len(times))]
            self._pulses(name, inp.target, target_type, size, pieces, inp, where)
        elif inp.type == "poisson":
            self._poisson(name, inp, target_type, size, where)
        elif inp.type == "spike_train":
            self._spike_train(name, inp, target_type, d, where)
        else:
            raise UnsupportedFeature(f"input type {inp.type!r} has no NeuroML2 form", None, where)

    def _input_list(self, list_id: str, component: str, target: str, cells: list[tuple[int, float | None]],
                    segment: tuple[int, float] | None = None) -> None:
        import neuroml

        il = neuroml.InputList(id=list_id, component=component, populations=self.pop_ids[target])
        for k, (cell, weight) in enumerate(cells):
            path = self.cell_path(target, cell)
            if weight is None:
                item = neuroml.Input(id=k, target=path, destination="synapses")
                il.input.append(item)
            else:
                item = neuroml.InputW(id=k, target=path, destination="synapses", weight=weight)
                il.input_ws.append(item)
            if segment is not None:
                item.segment_id, item.fraction_along = segment
        self.net.input_lists.append(il)

    def _input_segment(self, target_type: str, inp: Input, where: str) -> tuple[int, float] | None:
        if self.cell_models[target_type] != MULTICOMPARTMENT:
            return None
        from netbabel.exporters import _neuroml_morphology as morph

        cell = self.d.cell_types[target_type]
        section = inp.section or cell.sections[0].name
        return morph.segment_at(self.segments[target_type], section, inp.x if inp.x is not None else 0.5)

    def _pulses(self, name: str, target: str, target_type: str, size: int, pieces: list, inp: Input,
                where: str) -> None:
        import neuroml

        model = self.cell_models[target_type]
        duration = float(self.d.value(self.d.simulation.duration))
        for k, (start, stop, amplitude) in enumerate(pieces):
            t0 = float(self.d.value(start)) if start is not None else 0.0
            t1 = float(self.d.value(stop)) if stop is not None else duration
            t1 = min(t1, max(duration, t0))
            amp = float(self.d.value(amplitude))
            list_id = self.unique(f"{name}_pulse{k}" if len(pieces) > 1 else name, "input")
            cid = self.unique(f"{list_id}_gen", "input")
            if model == "izhikevich":  # dimensionless current: NEST's pA with C = 1 pF
                self.doc.add(neuroml.PulseGeneratorDL(id=cid, delay=conv.q(t0, "ms"), duration=conv.q(t1 - t0, "ms"),
                                                      amplitude=conv.fmt(amp)))
            else:
                self.doc.add(neuroml.PulseGenerator(id=cid, delay=conv.q(t0, "ms"), duration=conv.q(t1 - t0, "ms"),
                                                    amplitude=conv.q(amp, "pA")))
            self._input_list(list_id, cid, target, [(i, None) for i in range(size)],
                             self._input_segment(target_type, inp, where))

    def _input_synapse(self, inp: Input, target_type: str, where: str, sign: float) -> str:
        receptor, site = self.receptor(inp.synapse_type, sign, target_type, where)
        self._last_site = site
        return self.synapse(target_type, receptor, site)

    def _synaptic_segment(self, target_type: str, inp: Input, where: str) -> tuple[int, float] | None:
        """Where a synaptic input lands: its synapse site on a multicompartment cell."""
        site = getattr(self, "_last_site", None)
        if site is not None:
            return self._site_segment(target_type, site)
        return self._input_segment(target_type, inp, where)

    def _weight(self, target_type: str, w: float) -> float:
        model = self.cell_models[target_type]
        return float(w) if model == MULTICOMPARTMENT else conv.weight_to_neuroml(model, float(w))

    def _poisson(self, name: str, inp: Input, target_type: str, size: int, where: str) -> None:
        import neuroml

        if isinstance(inp.weight, Distribution):
            raise UnsupportedFeature("a Poisson input with a weight distribution needs --mode frozen", None,
                                     f"{where}/weight")
        weight = float(self.d.value(inp.weight if inp.weight is not None else 1.0))
        rate = float(self.d.value(inp.rate)) * float(self.d.value(inp.indegree if inp.indegree is not None else 1))
        syn = self._input_synapse(inp, target_type, where, weight)
        list_id = self.unique(name, "input")
        cid = self.unique(f"{name}_gen", "input")
        # NeuroML2 Poisson inputs have no delay: a Poisson train shifted by a constant is a Poisson train
        start = float(self.d.value(inp.start)) if inp.start is not None else 0.0
        if inp.stop is not None or start > 0:
            stop = float(self.d.value(inp.stop)) if inp.stop is not None else 1e9
            self.doc.add(neuroml.TransientPoissonFiringSynapse(
                id=cid, average_rate=conv.q(rate, "Hz"), delay=conv.q(start, "ms"),
                duration=conv.q(stop - start, "ms"), synapse=syn, spike_target=f"./{syn}"))
        else:
            self.doc.add(neuroml.PoissonFiringSynapse(id=cid, average_rate=conv.q(rate, "Hz"), synapse=syn,
                                                      spike_target=f"./{syn}"))
        w = self._weight(target_type, weight)
        self._input_list(list_id, cid, inp.target, [(i, w) for i in range(size)],
                         self._synaptic_segment(target_type, inp, where))

    def _spike_train(self, name: str, inp: Input, target_type: str, d: Description, where: str) -> None:
        import neuroml

        ids, times = read_spike_trains(d, inp.file or "", inp.population or name)
        delay = 0.0 if inp.delay is None else self._scalar(inp.delay, f"{where}/delay")
        weight = 1.0 if inp.weight is None else self._scalar(inp.weight, f"{where}/weight")
        syn = self._input_synapse(inp, target_type, where, weight)
        w = self._weight(target_type, weight)
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order] + delay
        segment = self._synaptic_segment(target_type, inp, where)
        for cell in np.unique(ids):
            cell_times = times[ids == cell]
            cid = self.unique(f"{name}__{cell}_gen", "input")
            spikes = [neuroml.Spike(id=k, time=conv.q(float(t), "ms")) for k, t in enumerate(cell_times)]
            self.doc.add(neuroml.TimedSynapticInput(id=cid, synapse=syn, spike_target=f"./{syn}", spikes=spikes))
            self._input_list(self.unique(f"{name}__{cell}", "input"), cid, inp.target, [(int(cell), w)], segment)


def _array_projection(proj: Any, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                      delays: np.ndarray, segment: tuple[int, float] | None) -> Any:
    """A libNeuroML Projection whose connections are numpy arrays, written to HDF5 without objects."""
    import neuroml

    class ArrayProjection(neuroml.Projection):
        def exportHdf5(self, h5file: Any, h5Group: Any) -> None:  # noqa: N802 (libNeuroML's name)
            group = h5file.create_group(h5Group, "projection_" + self.id)
            for key, value in (("id", self.id), ("type", "projection"),
                               ("presynapticPopulation", self.presynaptic_population),
                               ("postsynapticPopulation", self.postsynaptic_population), ("synapse", self.synapse)):
                group._f_setattr(key, value)
            columns = [sources, targets]
            names = ["pre_cell_id", "post_cell_id"]
            if segment is not None:
                n = len(sources)
                columns += [np.zeros(n), np.full(n, segment[0]), np.full(n, 0.5), np.full(n, segment[1])]
                names += ["pre_segment_id", "post_segment_id", "pre_fraction_along", "post_fraction_along"]
            columns += [weights, delays]
            names += ["weight", "delay"]
            if len(sources):
                table = np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=1)  # as libNeuroML
                array = h5file.create_carray(group, self.id, obj=table, title=f"Connections of cells in {self.id}")
                for k, name in enumerate(names):
                    array._f_setattr(f"column_{k}", name)

    return ArrayProjection(id=proj.id, presynaptic_population=proj.presynaptic_population,
                           postsynaptic_population=proj.postsynaptic_population, synapse=proj.synapse)


def _snake(name: str) -> str:
    """libNeuroML's keyword for a NeuroML2 attribute (leakReversal -> leak_reversal)."""
    if "_" in name or name == "C":
        return name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _read_positions(d: Description, relative: str, where: str) -> np.ndarray:
    path = d.resolve_path(relative)
    if path.suffix.lower() == ".csv":
        return np.loadtxt(path, delimiter=",", ndmin=2)[:, :3]
    import h5py

    with h5py.File(path, "r") as f:
        if "positions" not in f:
            raise NetbabelError("expected a dataset 'positions' (N x 3)", str(path), where)
        return np.asarray(f["positions"][()], dtype=float)[:, :3]


def _write_document(doc: Any, path: Path, hdf5: bool, validate: bool, builder: "_Builder") -> None:
    from neuroml.writers import NeuroMLHdf5Writer, NeuroMLWriter

    if hdf5:
        import neuroml.utils  # noqa: F401  (libNeuroML's HDF5 export uses it without importing it)

        NeuroMLHdf5Writer.write(doc, str(path))
        return
    NeuroMLWriter.write(doc, str(path))
    if builder.connections:
        write_connections(path, builder)
    if validate:
        validate_file(path)


_PROJECTION_TAG = re.compile(r'^(?P<indent>\s*)<projection id="(?P<id>[^"]+)"(?P<rest>[^>]*?)/>\s*$')


def write_connections(path: Path, builder: "_Builder") -> None:
    """Stream each projection's connectionWDs into the file libNeuroML wrote (fast for large networks)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(path) as src, open(tmp, "w") as dst:
        for line in src:
            m = _PROJECTION_TAG.match(line)
            if not m or m.group("id") not in builder.connections:
                dst.write(line)
                continue
            indent = m.group("indent")
            dst.write(f'{indent}<projection id="{m.group("id")}"{m.group("rest")}>\n')
            source, target, sources, targets, weights, delays, segment = builder.connections[m.group("id")]
            extra = f' postSegmentId="{segment[0]}" postFractionAlong="{conv.fmt(segment[1])}"' if segment else ""
            pre_paths = {int(i): builder.cell_path(source, int(i)) for i in np.unique(sources)}
            post_paths = {int(i): builder.cell_path(target, int(i)) for i in np.unique(targets)}
            lines = [f'{indent}    <connectionWD id="{j}" preCellId="{pre_paths[int(s)]}" postCellId="{post_paths[int(t)]}"'
                     f'{extra} weight="{conv.fmt(float(w))}" delay="{conv.fmt(float(dl))}ms"/>\n'
                     for j, (s, t, w, dl) in enumerate(zip(sources, targets, weights, delays))]
            dst.writelines(lines)
            dst.write(f"{indent}</projection>\n")
    tmp.replace(path)


def validate_file(path: Path) -> None:
    """Validate a NeuroML2 XML file against the NeuroML2 XSD that libNeuroML writes (lxml, no Java)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        _schema().assertValid(etree.parse(str(path), parser))
    except etree.DocumentInvalid as exc:
        raise NetbabelError(f"the exported NeuroML2 does not validate: {exc}", str(path)) from None


@functools.lru_cache(maxsize=1)
def _schema() -> Any:
    import neuroml
    from lxml import etree

    xsd = Path(neuroml.__file__).parent / "nml" / "NeuroML_v2.3.1.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


# -- LEMS ---------------------------------------------------------------------------------------------

def voltage_columns(d: Description) -> dict[str, list[int]]:
    """Population -> the cells whose V_m is recorded (ascending, each once): the columns of its .v.dat file."""
    columns: dict[str, set[int]] = {}
    for rec in d.simulation.record.v:
        columns.setdefault(rec.population, set()).update(int(i) for i in rec.ids)
    return {pname: sorted(ids) for pname, ids in columns.items()}


def _write_lems(d: Description, name: str, network_id: str, network_file: Path, builder: _Builder,
                out: Path) -> Path:
    from pyneuroml.lems import LEMSSimulation

    quiet_libraries()

    duration = float(d.value(d.simulation.duration))
    dt = float(d.value(d.simulation.dt))
    sim = LEMSSimulation(f"sim_{name}", duration, dt, target=network_id, simulation_seed=int(d.simulation.seed))
    for core in ("PyNN.xml", "Inputs.xml", "Synapses.xml"):
        sim.include_lems_file(core, include_included=False)
    sim.include_neuroml2_file(network_file.name, include_included=False)
    for pname, spike_file in builder.spike_files.items():
        pop_id = builder.pop_ids[pname]
        of = f"spikes_{pop_id}"
        sim.create_event_output_file(of, spike_file, format="ID_TIME")
        for i in range(builder.sizes[pname]):
            path = builder.cell_path(pname, i)[3:]
            sim.add_selection_to_event_output_file(of, i, path, "spike")
    for pname, ids in voltage_columns(d).items():
        pop_id = builder.pop_ids[pname]
        of = f"v_{pop_id}"
        sim.create_output_file(of, f"{pop_id}.v.dat")
        for i in ids:
            sim.add_column_to_output_file(of, f"v{i}", builder.cell_path(pname, i)[3:] + "/v")
    lems_file = out / f"LEMS_{name}.xml"
    cwd = Path.cwd()
    try:
        import os

        os.chdir(out)
        sim.save_to_file(lems_file.name)
    finally:
        os.chdir(cwd)
    return lems_file
