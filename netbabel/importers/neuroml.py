"""NeuroML2 importer: `.net.nml` / `.nml` (XML), `.nml.h5` (HDF5) or a `LEMS_*.xml` naming one.

The document and its includes are parsed without DTDs, external entities or
network access (a document that declares entities is refused). Population ids
become population names (a `netbabel_name` property, written by netbabel's
exporter, takes precedence), connections become `explicit` projections whose
edges are written, in SONATA layout, to `--neuroml-workdir` (default: a cache
folder keyed by the input files), and every quantity is parsed with its
dimension checked. Anything that cannot be mapped (electrical projections,
unknown component types, inputs on part of a population, izhikevich2007Cell with
synapses other than expTwoSynapse, ...) raises an error naming the element id and file, never dropped silently;
components defined but not used by the network are listed on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from netbabel.converters import neuroml as conv
from netbabel.description.catalogue import MULTICOMPARTMENT
from netbabel.description.model import (CellType, Description, Input, Metadata, Population, Positions, Projection,
                                        Provenance, Rule, Simulation, SynapseType)
from netbabel.errors import NetbabelError, UnsupportedFeature

FORMAT = "neuroml"
CORE_LEMS_FILES = {"Cells.xml", "Networks.xml", "Simulation.xml", "PyNN.xml", "Inputs.xml", "Synapses.xml",
                   "Channels.xml", "NeuroML2CoreTypes.xml", "NeuroMLCoreDimensions.xml",
                   "NeuroMLCoreCompTypes.xml"}
NETWORK_TAGS = {"network"}
IGNORED_TAGS = {"notes", "annotation", "property", "include", "Include", "Target", "Dimension", "Unit", "Constant"}
SOURCE_TAGS = {"SpikeSourcePoisson", "spikeGeneratorPoisson", "spikeArray"}
INPUT_TAGS = {"pulseGenerator", "pulseGeneratorDL", "poissonFiringSynapse", "transientPoissonFiringSynapse",
              "timedSynapticInput"}
MORPH_TAGS = {"cell", "ionChannel", "ionChannelHH", "ionChannelPassive", "expTwoSynapse", "morphology",
              "biophysicalProperties"}
CELL_TAGS = set(conv.PYNN_CELLS) | {"iafCell", "iafRefCell", "izhikevichCell", "izhikevich2007Cell", "cell"}
SYNAPSE_TAGS = set(conv.SYNAPSE_FAMILIES) | {"expTwoSynapse"}
_CELL_REF = [re.compile(r"^\.\./(?P<pop>[A-Za-z_][\w]*)/(?P<i>\d+)/[A-Za-z_][\w]*$"),
             re.compile(r"^\.\./(?P<pop>[A-Za-z_][\w]*)\[(?P<i>\d+)\]$"),
             re.compile(r"^(?P<pop>[A-Za-z_][\w]*)\[(?P<i>\d+)\]$"),
             re.compile(r"^(?P<pop>[A-Za-z_][\w]*)/(?P<i>\d+)/[A-Za-z_][\w]*$")]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--neuroml-workdir", metavar="DIR",
                       help="NeuroML2 import: folder for the edges, positions and spike files it derives "
                            "(default: a cache folder keyed by the input files)")


def detect(path: Path) -> bool:
    name = path.name.lower()
    if not path.is_file():
        return False
    if name.endswith((".nml", ".nml.h5")):
        return True
    if name.endswith(".xml"):
        head = path.read_text(errors="replace")[:4000]
        return "<neuroml" in head or ("<Lems" in head and ".nml" in head)
    return False


def read(source: str, options: argparse.Namespace | None = None) -> Description:
    """A NeuroML2 model (network file, HDF5 file or LEMS file) as a Description."""
    path = Path(source)
    if not path.is_file():
        raise NetbabelError("no such file", str(path))
    model = load_model(path)
    workdir = _workdir(model, getattr(options, "neuroml_workdir", None) if options else None)
    return _Importer(model, workdir).build()


# -- parsing -----------------------------------------------------------------------------------------------

@dataclass
class Element:
    """A parsed element: tag without namespace, attributes, children, and the file it came from."""

    tag: str
    attrs: dict[str, str]
    children: list["Element"]
    file: str
    line: int | None = None

    def id(self) -> str:
        return self.attrs.get("id", "?")

    def where(self) -> str:
        return f"<{self.tag} id={self.id()!r}>" + (f" (line {self.line})" if self.line else "")

    def find(self, *tags: str) -> Iterator["Element"]:
        return (c for c in self.children if c.tag in tags)


@dataclass
class Model:
    """Everything read from a model's files: components by id, networks, the LEMS simulation."""

    files: list[Path] = field(default_factory=list)
    components: dict[str, Element] = field(default_factory=dict)
    networks: list[Element] = field(default_factory=list)
    simulation: Element | None = None
    unknown: list[Element] = field(default_factory=list)
    source: Path | None = None
    hdf5_connections: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def parse_xml(path: Path) -> Any:
    """An lxml tree of `path`, refusing DTD entity declarations and never touching the network."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=True, remove_comments=True, remove_pis=True)
    try:
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as exc:
        raise NetbabelError(f"invalid XML: {exc}", str(path)) from None
    except OSError as exc:
        raise NetbabelError(f"cannot read: {exc}", str(path)) from None
    dtd = tree.docinfo.internalDTD
    if dtd is not None and (list(dtd.iterentities()) or "ENTITY" in (tree.docinfo.doctype or "")):
        raise NetbabelError("the document declares XML entities (<!ENTITY ...>); netbabel does not resolve "
                            "entities (they can read local files or the network)", str(path))
    for node in tree.iter():
        if isinstance(node, etree._Entity):
            raise NetbabelError(f"line {node.sourceline}: entity reference {node.text} is not resolved by netbabel",
                                str(path))
    return tree


def _element(node: Any, file: str) -> Element:
    from lxml import etree

    children = [_element(c, file) for c in node if isinstance(c.tag, str)]
    return Element(etree.QName(node).localname, dict(node.attrib), children, file, node.sourceline)


def load_model(path: Path) -> Model:
    """Parse a NeuroML2 / LEMS file and, recursively, its includes."""
    model = Model(source=path.resolve())
    _load(path.resolve(), model, set())
    return model


def _load(path: Path, model: Model, seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    model.files.append(path)
    if path.name.lower().endswith(".h5"):
        root = _element(parse_xml_text(_hdf5_as_xml(path, model), path), str(path))
    else:
        root = _element(parse_xml(path).getroot(), str(path))
    if root.tag not in ("neuroml", "Lems"):
        raise NetbabelError(f"not a NeuroML2 or LEMS document (root element <{root.tag}>)", str(path))
    for child in root.children:
        if child.tag in ("include", "Include"):
            href = child.attrs.get("href") or child.attrs.get("file") or ""
            target = (path.parent / href).resolve()
            if not target.exists():
                if Path(href).name in CORE_LEMS_FILES:
                    continue
                raise NetbabelError(f"included file {href!r} not found (looked in {path.parent})", str(path),
                                    f"line {child.line}")
            _load(target, model, seen)
        elif child.tag == "network":
            model.networks.append(child)
        elif child.tag == "Simulation":
            model.simulation = child
        elif child.tag in IGNORED_TAGS:
            continue
        elif "id" in child.attrs:
            if child.id() in model.components and model.components[child.id()].file != child.file:
                raise NetbabelError(f"{child.where()}: id defined twice (also in {model.components[child.id()].file})",
                                    child.file)
            model.components[child.id()] = child
        else:
            model.unknown.append(child)


def parse_xml_text(text: bytes, path: Path) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        return etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        raise NetbabelError(f"invalid NeuroML2 HDF5 content: {exc}", str(path)) from None


def _hdf5_as_xml(path: Path, model: "Model") -> bytes:
    """A NeuroML2 HDF5 file as XML (libNeuroML's optimized loader) with its connections kept as arrays.

    The connections of each projection are read with h5py into `model.hdf5_connections` and the
    projections are written to the XML empty: large networks never become per-connection objects.
    """
    import tempfile

    import neuroml
    from neuroml.loaders import NeuroMLHdf5Loader
    from neuroml.writers import NeuroMLWriter

    try:
        doc = NeuroMLHdf5Loader.load(str(path), optimized=True)
        model.hdf5_connections.update(_hdf5_connections(path))
    except Exception as exc:  # h5py / tables errors of a corrupt file
        raise NetbabelError(f"not a readable NeuroML2 HDF5 file ({type(exc).__name__}: {exc})", str(path)) from None
    inputs = _hdf5_tables(path, "inputList_")
    for net in doc.networks:
        net.projections = [neuroml.Projection(id=p.id, presynaptic_population=p.presynaptic_population,
                                              postsynaptic_population=p.postsynaptic_population, synapse=p.synapse)
                           for p in net.projections]
        net.input_lists = [_input_list_from_table(il, inputs.get(il.id, {})) for il in net.input_lists]
    with tempfile.TemporaryDirectory(prefix="netbabel-nml-h5-") as tmp:
        xml = Path(tmp) / "doc.nml"
        NeuroMLWriter.write(doc, str(xml))
        return xml.read_bytes()


def _input_list_from_table(il: Any, table: dict[str, np.ndarray]) -> Any:
    """A plain libNeuroML InputList (Input or InputW per row) from an HDF5 input table."""
    import neuroml

    out = neuroml.InputList(id=il.id, component=il.component, populations=il.populations)
    if not table:
        return out
    n = len(table["target_cell_id"])
    population = il.populations
    component = "cell"
    for k in range(n):
        kwargs = dict(id=k, target=f"../{population}/{int(table['target_cell_id'][k])}/{component}",
                      destination="synapses", segment_id=int(table.get("segment_id", np.zeros(n))[k]),
                      fraction_along=float(table.get("fraction_along", np.full(n, 0.5))[k]))
        if "weight" in table:
            out.input_ws.append(neuroml.InputW(weight=float(table["weight"][k]), **kwargs))
        else:
            out.input.append(neuroml.Input(**kwargs))
    return out


def _hdf5_connections(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{projection id: {column name: values}} from the `projection_<id>/<id>` arrays of a NeuroML2 HDF5 file."""
    return _hdf5_tables(path, "projection_")


def _hdf5_tables(path: Path, prefix: str) -> dict[str, dict[str, np.ndarray]]:
    """{element id: {column name: values}} of the `<prefix><id>/<id>` arrays of a NeuroML2 HDF5 network."""
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f.get("neuroml")
        for net in (root.values() if root is not None else []):
            if not isinstance(net, h5py.Group):
                continue
            for name, group in net.items():
                if not name.startswith(prefix) or not isinstance(group, h5py.Group):
                    continue
                pid = _text(group.attrs.get("id", name[len(prefix):]))
                data = group.get(pid)
                if data is None:
                    out[pid] = {}
                    continue
                table = np.asarray(data[()], dtype=np.float64)
                columns = {_text(v): int(k.split("_")[1]) for k, v in data.attrs.items() if k.startswith("column_")}
                out[pid] = {col: table[:, k] for col, k in columns.items()}
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _workdir(model: Model, requested: str | None) -> Path:
    if requested:
        return Path(requested).resolve()
    h = hashlib.sha256()
    for p in model.files:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (cache / "netbabel" / "neuroml" / h.hexdigest()[:16]).resolve()


def cell_index(ref: str, element: Element, what: str) -> tuple[str, int]:
    """('pop', 3) from '../pop/3/comp' or '../pop[3]'."""
    for pattern in _CELL_REF:
        m = pattern.match(ref.strip())
        if m:
            return m.group("pop"), int(m.group("i"))
    raise NetbabelError(f"{element.where()}: cannot read the cell reference {what}={ref!r}", element.file)


# -- building the description -------------------------------------------------------------------------------

@dataclass
class _Pop:
    id: str
    name: str
    component: str
    size: int
    positions: np.ndarray | None
    element: Element


class _Importer:
    def __init__(self, model: Model, workdir: Path):
        self.m = model
        self.workdir = workdir
        self.net = self._network()
        self.file = str(model.source)
        self.pops: dict[str, _Pop] = {}
        self.used: set[str] = set()
        self.cell_synapses: dict[str, dict[str, set[float]]] = {}  # component -> {"ex"/"in": taus}

    def _network(self) -> Element:
        nets = self.m.networks
        if not nets:
            raise NetbabelError("no <network> in the model", str(self.m.source))
        if self.m.simulation is not None and len(nets) > 1:
            target = self.m.simulation.attrs.get("target")
            for n in nets:
                if n.id() == target:
                    return n
            raise NetbabelError(f"the simulation targets network {target!r}, which is not defined",
                                str(self.m.source))
        if len(nets) > 1:
            raise NetbabelError(f"{len(nets)} networks; name one with a LEMS file", str(self.m.source))
        return nets[0]

    def q(self, el: Element, attr: str, unit: str, default: str | None = None) -> float:
        """Attribute `attr` of `el` in NeuroML unit `unit` ('none' for plain numbers), dimension checked."""
        text = el.attrs.get(attr, default)
        if text is None:
            raise NetbabelError(f"{el.where()}: attribute {attr!r} is missing", el.file)
        where = f"{el.where()} {attr}"
        if unit == "none":
            return conv.parse_quantity(text, "none", where, el.file)
        return conv.quantity_in(text, unit, where, el.file)

    def component(self, cid: str, el: Element, what: str) -> Element:
        comp = self.m.components.get(cid)
        if comp is None:
            raise NetbabelError(f"{el.where()}: {what} {cid!r} is not defined in the model's files", el.file)
        self.used.add(cid)
        return comp

    def build(self) -> Description:
        import tempfile

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.workdir))
        try:
            return self._build()
        finally:
            import shutil

            shutil.rmtree(self.staging, ignore_errors=True)

    def _build(self) -> Description:
        d = Description(name=_name(self.m.source), base_dir=self.m.source.parent)
        d.metadata = Metadata(title=f"NeuroML2 model {self.net.id()}", provenance=[Provenance(
            tool=f"netbabel {_version()} neuroml importer", source=str(self.m.source),
            sha256=_sha256(self.m.source), format="neuroml")])
        self.d = d
        self._simulation()
        for el in self.net.find("population"):
            self._population(el)
        for el in self.net.children:
            if el.tag in ("electricalProjection", "continuousProjection"):
                raise UnsupportedFeature(f"{el.where()}: {el.tag} (gap junctions / graded synapses) cannot be "
                                         "expressed in a netbabel description (it has chemical synapses only)",
                                         el.file)
        projections = [self._projection(el) for el in self.net.find("projection")]
        inputs = [self._input_list(el) for el in self.net.find("inputList", "explicitInput")]
        self._cell_types()
        for proj in projections:
            proj.finish(self)
        for group in inputs:
            for inp in group:
                inp.finish(self)
        write_trains(self)
        self.publish_files()
        self._report_unused()
        for el in self.net.children:
            if el.tag not in ("population", "projection", "inputList", "explicitInput", "notes", "property",
                              "annotation"):
                raise UnsupportedFeature(f"{el.where()}: network element <{el.tag}> cannot be mapped", el.file)
        from netbabel.description import check

        problems = check(d.to_dict(), base_dir=d.base_dir, file=self.file)
        if problems:
            raise NetbabelError(problems)
        return Description.from_dict(d.to_dict(), base_dir=d.base_dir)

    def _simulation(self) -> None:
        sim = self.m.simulation
        self.d.simulation = Simulation(record=self.d.simulation.record)
        if sim is not None:
            self.d.simulation.duration = self.q(sim, "length", "ms")
            self.d.simulation.dt = self.q(sim, "step", "ms")
            if "seed" in sim.attrs:
                self.d.simulation.seed = int(sim.attrs["seed"])
        if "temperature" in self.net.attrs:
            self.d.simulation.temperature = self.q(self.net, "temperature", "degC")

    # populations ------------------------------------------------------------------------------------------
    def _population(self, el: Element) -> None:
        pid = el.id()
        comp = el.attrs.get("component")
        if comp is None:
            raise NetbabelError(f"{el.where()}: no component", el.file)
        cell = self.component(comp, el, "component")
        props = {p.attrs.get("tag"): p.attrs.get("value") for p in el.find("property")}
        name = props.pop("netbabel_name", None) or pid
        instances = list(el.find("instance"))
        size = int(el.attrs.get("size", len(instances)))
        positions = None
        if instances:
            if len(instances) != size:
                raise NetbabelError(f"{el.where()}: size {size} but {len(instances)} instances", el.file)
            positions = np.zeros((size, 3))
            for inst in instances:
                i = int(inst.attrs.get("id", 0))
                loc = next(inst.find("location"), None)
                if loc is not None and 0 <= i < size:
                    positions[i] = [float(loc.attrs.get(k, 0.0)) for k in ("x", "y", "z")]
        if cell.tag not in CELL_TAGS | SOURCE_TAGS:
            raise UnsupportedFeature(f"{cell.where()}: unknown component type <{cell.tag}> used by population "
                                     f"{pid!r}", cell.file)
        self.pops[pid] = _Pop(pid, name, comp, size, positions, el)
        pop = Population(cell_type=comp, size=size, annotations={k: v for k, v in props.items() if k})
        if positions is not None and np.any(positions):
            pop.positions = Positions(type="file", file=str(self._write_positions(name, positions)))
        self.d.populations[name] = pop

    def _write_positions(self, name: str, positions: np.ndarray) -> Path:
        import h5py

        name = f"positions_{_safe(name)}.h5"
        with h5py.File(self.staging / name, "w") as f:
            f.create_dataset("positions", data=positions)
        return self.workdir / name

    def pop(self, pid: str, el: Element) -> _Pop:
        if pid not in self.pops:
            raise NetbabelError(f"{el.where()}: undefined population {pid!r}", el.file)
        return self.pops[pid]

    # cell types ---------------------------------------------------------------------------------------------
    def note_synapse(self, component: str, receptor: str, syn: conv.SynapseInfo, el: Element) -> None:
        families = self.cell_synapses.setdefault(component, {})
        families.setdefault("family", set()).add(syn.family)
        families.setdefault(receptor, set()).add((syn.taus, syn.erev))

    def _cell_types(self) -> None:
        for pop in self.pops.values():
            if pop.component in self.d.cell_types:
                continue
            el = self.m.components[pop.component]
            self.d.cell_types[pop.component] = self._cell_type(el)

    def _cell_type(self, el: Element) -> CellType:
        syns = self.cell_synapses.get(el.id(), {})
        families = syns.get("family", set())
        if el.tag in conv.PYNN_CELLS:
            attrs = {a: self.q(el, a, "none") for a in conv.PYNN_CELL_ATTRS[el.tag]}
            model, params = conv.cell_from_pynn(el.tag, attrs)
            expected = conv.PYNN_CELL_FAMILY[el.tag]
            if families and families != {expected}:
                raise UnsupportedFeature(f"{el.where()}: synapses of kind {sorted(families)} onto a {el.tag}, whose "
                                         f"catalogue model {model} has {expected} synapses", el.file)
            self._synapse_params(el, params, syns, conductance=expected.startswith("cond"))
            return CellType(model=model, params=params)
        if el.tag in ("iafCell", "iafRefCell"):
            attrs = {a: self.q(el, a, u) for a, u in conv.DIMENSIONAL_CELL_ATTRS[el.tag].items()}
            params = conv.iaf_from_neuroml(el.tag, attrs)
            if not families:
                params.pop("I_e")
                return CellType(model="iaf_psc_delta", params=params)
            if len(families) > 1:
                raise UnsupportedFeature(f"{el.where()}: mixed synapse kinds {sorted(families)}: no catalogue model",
                                         el.file)
            family = next(iter(families))
            if family not in conv.FAMILY_MODELS:
                raise UnsupportedFeature(f"{el.where()}: {family} synapses onto an {el.tag}: no catalogue model",
                                         el.file)
            model = conv.FAMILY_MODELS[family]
            if model.startswith("iaf_cond"):
                params["g_L"] = conv.tidy(params["C_m"] / params.pop("tau_m"))
            self._synapse_params(el, params, syns, conductance=model.startswith("iaf_cond"))
            return CellType(model=model, params=params)
        if el.tag == "izhikevichCell":
            if families:
                raise UnsupportedFeature(f"{el.where()}: " + conv.DELTA_REFUSAL.format(model="izhikevich"), el.file)
            attrs = {a: self.q(el, a, u) for a, u in conv.DIMENSIONAL_CELL_ATTRS[el.tag].items()}
            attrs.update({a: self.q(el, a, "none") for a in ("a", "b", "c", "d")})
            return CellType(model="izhikevich", params=conv.izhikevich_from_neuroml(attrs))
        if el.tag == "izhikevich2007Cell":
            return self._izhikevich2007(el, syns, families)
        if el.tag == "SpikeSourcePoisson":
            start, duration = self.q(el, "start", "ms"), self.q(el, "duration", "ms")
            params = {"rate": self.q(el, "rate", "Hz"), "start": start}
            if duration < 1e8:
                params["stop"] = conv.tidy(start + duration)
            return CellType(model="poisson_generator", params=params)
        if el.tag == "spikeGeneratorPoisson":
            return CellType(model="poisson_generator", params={"rate": self.q(el, "averageRate", "Hz")})
        if el.tag == "spikeArray":
            times = sorted(self.q(s, "time", "ms") for s in el.find("spike"))
            return CellType(model="spike_generator", params={"spike_times": times})
        if el.tag == "cell":
            from netbabel.importers import _neuroml_morphology as morph

            return morph.read_cell(self, el)
        raise UnsupportedFeature(f"{el.where()}: unknown component type <{el.tag}>", el.file)

    def _izhikevich2007(self, el: Element, syns: dict, families: set) -> CellType:
        """izhikevich2007Cell with expTwoSynapse synapses (or none) -> izhikevich2007_cond_beta."""
        if families - {"cond_beta"}:
            raise UnsupportedFeature(f"{el.where()}: {sorted(families - {'cond_beta'})} synapses onto an "
                                     "izhikevich2007Cell: netbabel maps it (to izhikevich2007_cond_beta) with "
                                     "expTwoSynapse synapses only", el.file)
        attrs = {a: self.q(el, a, u) for a, u in conv.DIMENSIONAL_CELL_ATTRS[el.tag].items()}
        params = conv.izhikevich2007_from_neuroml(attrs)
        for receptor in ("ex", "in"):
            found = syns.get(receptor, set())
            if len(found) > 1:
                raise UnsupportedFeature(f"{el.where()}: {len(found)} different {receptor}citatory expTwoSynapses "
                                         f"(tauRise, tauDecay, erev) {sorted(found)} onto one cell type: "
                                         "izhikevich2007_cond_beta has one per receptor", el.file)
            for (tau_rise, tau_decay), erev in found:
                params.update({f"tau_rise_{receptor}": tau_rise, f"tau_decay_{receptor}": tau_decay,
                               f"E_{receptor}": erev})
        return CellType(model="izhikevich2007_cond_beta", params=params)

    def _synapse_params(self, el: Element, params: dict, syns: dict, conductance: bool) -> None:
        for receptor, suffix in (("ex", "ex"), ("in", "in")):
            found = syns.get(receptor, set())
            taus = {t for t, _ in found}
            if len(taus) > 1:
                raise UnsupportedFeature(f"{el.where()}: {len(taus)} different {receptor}citatory synaptic time "
                                         f"constants {sorted(taus)} onto one cell type: the catalogue model has one",
                                         el.file)
            erevs = {e for _, e in found}
            if len(erevs) > 1:
                raise UnsupportedFeature(f"{el.where()}: different {receptor} reversal potentials {sorted(erevs)} "
                                         "onto one cell type", el.file)
            if taus:
                params[f"tau_syn_{suffix}"] = next(iter(taus))
            if conductance and erevs and next(iter(erevs)) is not None:
                params["E_ex" if suffix == "ex" else "E_in"] = next(iter(erevs))

    def synapse(self, sid: str, el: Element) -> tuple[Element, conv.SynapseInfo | None]:
        syn = self.component(sid, el, "synapse")
        if syn.tag in conv.SYNAPSE_FAMILIES:
            units = conv.SYNAPSE_FAMILIES[syn.tag][1]
            attrs = {a: self.q(syn, a, u) for a, u in units.items()}
            return syn, conv.synapse_from_neuroml(syn.tag, attrs)
        raise UnsupportedFeature(f"{syn.where()}: synapse type <{syn.tag}> has no netbabel equivalent", syn.file)

    def receptor_of(self, target: _Pop, info: conv.SynapseInfo, weights: np.ndarray, el: Element) -> list[str]:
        """The receptors ('ex'/'in') the connections use on the target cell type."""
        if info.conductance:
            if np.any(weights < 0):
                raise UnsupportedFeature(f"{el.where()}: negative weights on a conductance synapse", el.file)
            cell = self.m.components[target.component]
            threshold = -40.0
            if cell.tag in conv.PYNN_CELLS and "v_thresh" in cell.attrs:
                threshold = float(cell.attrs["v_thresh"])
            elif "thresh" in cell.attrs:
                threshold = self.q(cell, "thresh", "mV")
            elif cell.tag == "izhikevich2007Cell":
                threshold = self.q(cell, "vt", "mV")
            return ["ex" if (info.erev or 0.0) > threshold else "in"]
        out = []
        if np.any(weights >= 0):
            out.append("ex")
        if np.any(weights < 0):
            out.append("in")
        return out

    def synapse_type(self, receptor: str) -> str:
        name = "excitatory" if receptor == "ex" else "inhibitory"
        self.d.synapse_types.setdefault(name, SynapseType(model="static", receptor=name))
        return name

    # projections -------------------------------------------------------------------------------------------
    def _projection(self, el: Element) -> "_PendingProjection":
        pre = self.pop(el.attrs.get("presynapticPopulation", ""), el)
        post = self.pop(el.attrs.get("postsynapticPopulation", ""), el)
        syn_el, info = self.synapse(el.attrs.get("synapse", ""), el)
        conns = [c for c in el.children if c.tag in ("connection", "connectionWD")]
        other = [c for c in el.children if c.tag not in ("connection", "connectionWD", "notes", "property")]
        if other:
            raise UnsupportedFeature(f"{other[0].where()}: <{other[0].tag}> in projection {el.id()!r} cannot be "
                                     "mapped", el.file)
        arrays = self.m.hdf5_connections.get(el.id()) if not conns else None
        if arrays is not None:
            src, tgt, w, dl, segments = self._array_connections(el, arrays, pre, post)
        else:
            src, tgt, w, dl, segments = self._element_connections(el, conns, pre, post)
        if info is not None:
            for receptor in self.receptor_of(post, info, w, el):
                self.note_synapse(post.component, receptor, info, el)
        return _PendingProjection(el, pre, post, syn_el, info, src, tgt, w, dl, segments)

    def _element_connections(self, el: Element, conns: list[Element], pre: _Pop, post: _Pop) -> tuple:
        n = len(conns)
        src, tgt = np.zeros(n, np.int64), np.zeros(n, np.int64)
        w, dl = np.ones(n), np.zeros(n)
        segments = []
        for k, c in enumerate(conns):
            p, src[k] = cell_index(c.attrs.get("preCellId", ""), c, "preCellId")
            p2, tgt[k] = cell_index(c.attrs.get("postCellId", ""), c, "postCellId")
            if p != pre.id or p2 != post.id:
                raise NetbabelError(f"{c.where()} in projection {el.id()!r}: connects {p}->{p2}, not "
                                    f"{pre.id}->{post.id}", c.file)
            if src[k] >= pre.size or tgt[k] >= post.size:
                raise NetbabelError(f"{c.where()} in projection {el.id()!r}: cell index out of range", c.file)
            if c.tag == "connectionWD":
                w[k] = self.q(c, "weight", "none")
                dl[k] = self.q(c, "delay", "ms")
            segments.append((int(c.attrs.get("postSegmentId", 0)), float(c.attrs.get("postFractionAlong", 0.5))))
        return src, tgt, w, dl, segments

    def _array_connections(self, el: Element, arrays: dict, pre: _Pop, post: _Pop) -> tuple:
        """Connections of an HDF5 projection (columns pre_cell_id, post_cell_id, weight, delay in ms, ...)."""
        if not arrays:
            z = np.zeros(0)
            return z.astype(np.int64), z.astype(np.int64), z, z, []
        src = arrays["pre_cell_id"].astype(np.int64)
        tgt = arrays["post_cell_id"].astype(np.int64)
        n = len(src)
        if n and (src.max() >= pre.size or tgt.max() >= post.size or min(src.min(), tgt.min()) < 0):
            raise NetbabelError(f"{el.where()}: cell index out of range in the HDF5 connections", el.file)
        w = arrays.get("weight", np.ones(n)).astype(np.float64)
        dl = arrays.get("delay", np.zeros(n)).astype(np.float64)
        seg = arrays.get("post_segment_id", np.zeros(n)).astype(np.int64)
        frac = arrays.get("post_fraction_along", np.full(n, 0.5))
        return src, tgt, w, dl, list(zip(seg.tolist(), frac.tolist()))

    # inputs -------------------------------------------------------------------------------------------------
    def _input_list(self, el: Element) -> list["_PendingInput"]:
        if el.tag == "explicitInput":
            pid, i = cell_index(el.attrs.get("target", ""), el, "target")
            comp = self.component(el.attrs.get("input", ""), el, "input")
            return [_PendingInput(el, self.pop(pid, el), comp, np.array([i]), np.ones(1), [(0, 0.5)])]
        target = self.pop(el.attrs.get("population", ""), el)
        comp = self.component(el.attrs.get("component", ""), el, "component")
        items = [c for c in el.children if c.tag in ("input", "inputW")]
        cells, weights, segments = np.zeros(len(items), np.int64), np.ones(len(items)), []
        for k, c in enumerate(items):
            p, cells[k] = cell_index(c.attrs.get("target", ""), c, "target")
            if p != target.id:
                raise NetbabelError(f"{c.where()}: targets population {p!r}, not {target.id!r}", c.file)
            if c.tag == "inputW":
                weights[k] = self.q(c, "weight", "none")
            segments.append((int(c.attrs.get("segmentId", 0)), float(c.attrs.get("fractionAlong", 0.5))))
        if comp.tag in ("poissonFiringSynapse", "transientPoissonFiringSynapse", "timedSynapticInput"):
            syn_el, info = self.synapse(comp.attrs.get("synapse", ""), comp)
            if info is not None:
                for receptor in self.receptor_of(target, info, weights, el):
                    self.note_synapse(target.component, receptor, info, el)
        return [_PendingInput(el, target, comp, cells, weights, segments)]

    def _report_unused(self) -> None:
        unused = [c for cid, c in self.m.components.items() if cid not in self.used]
        for c in unused + self.m.unknown:
            print(f"warning: {c.file}: {c.where()}: not used by network {self.net.id()!r}; not imported",
                  file=sys.stderr)

    def edges_file(self) -> Path:
        """Where the edges will be (the description refers to it); written first to staging_edges_file."""
        return self.workdir / "edges.h5"

    def staging_edges_file(self) -> Path:
        return self.staging / "edges.h5"

    def publish_files(self) -> None:
        """Move the derived files from the staging folder into the work directory (atomic renames)."""
        import shutil

        for path in self.staging.iterdir():
            os.replace(path, self.workdir / path.name)
        shutil.rmtree(self.staging, ignore_errors=True)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _name(path: Path) -> str:
    name = path.name
    for suffix in (".net.nml.h5", ".nml.h5", ".net.nml", ".nml", ".xml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.startswith("LEMS_"):
        name = name[5:]
    name = re.sub(r"[^A-Za-z0-9_]", "_", name) or "neuroml_model"
    return name if re.match(r"[A-Za-z_]", name) else f"m_{name}"


def _version() -> str:
    from netbabel import __version__

    return __version__


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- pending projections and inputs (finished once the cell types are known) --------------------------------

@dataclass
class _PendingProjection:
    el: Element
    pre: _Pop
    post: _Pop
    syn_el: Element
    info: conv.SynapseInfo | None
    src: np.ndarray
    tgt: np.ndarray
    weights: np.ndarray
    delays: np.ndarray
    segments: list

    def finish(self, imp: _Importer) -> None:
        d = imp.d
        target_cell = d.cell_types[self.post.component]
        if target_cell.model == MULTICOMPARTMENT:
            from netbabel.importers import _neuroml_morphology as morph

            site, weights = morph.projection_site(imp, self, target_cell)
            synapse_type = site
        else:
            if self.info is None:
                raise UnsupportedFeature(f"{self.syn_el.where()}: <{self.syn_el.tag}> onto a point cell has no "
                                         "catalogue equivalent", self.syn_el.file)
            receptors = imp.receptor_of(self.post, self.info, self.weights, self.el)
            scale = self.info.base
            weights = np.array([conv.weight_from_neuroml(self.info.conductance, w, scale) for w in self.weights])
            synapse_type = imp.synapse_type(receptors[0]) if len(receptors) == 1 else None
        name = self.el.id()
        self._write(imp, name, weights)
        mean_w = float(np.mean(weights)) if len(weights) else 0.0
        mean_d = float(np.mean(self.delays)) if len(self.delays) else 0.0
        d.projections.append(Projection(
            source=self.pre.name, target=self.post.name, name=name, synapse_type=synapse_type,
            rule=Rule(type="explicit", file=str(imp.edges_file()), population=name),
            weight=conv.tidy(mean_w), delay=conv.tidy(mean_d)))

    def _write(self, imp: _Importer, name: str, weights: np.ndarray) -> None:
        import h5py

        from netbabel.instantiate.writer import EdgePopulationWriter

        path = imp.staging_edges_file()
        mode = "a" if getattr(imp, "_edges_started", False) else "w"
        imp._edges_started = True
        order = np.argsort(self.tgt, kind="stable")
        with h5py.File(path, mode) as f:
            writer = EdgePopulationWriter(f, name, self.pre.name, self.post.name, self.pre.size, self.post.size,
                                          expected_size=len(order))
            writer.append(self.src[order], self.tgt[order], weights[order], self.delays[order])
            writer.finish()


@dataclass
class _PendingInput:
    el: Element
    target: _Pop
    comp: Element
    cells: np.ndarray
    weights: np.ndarray
    segments: list

    def finish(self, imp: _Importer) -> None:
        d = imp.d
        c = self.comp
        name = self.el.id()
        full = len(self.cells) == self.target.size and set(self.cells.tolist()) == set(range(self.target.size))
        model = d.cell_types[self.target.component].model
        section, x = None, None
        if model == MULTICOMPARTMENT:
            from netbabel.importers import _neuroml_morphology as morph

            section, x = morph.input_site(imp, self)
        if c.tag in ("pulseGenerator", "pulseGeneratorDL"):
            if not full:
                raise UnsupportedFeature(f"{self.el.where()}: a current input on {len(self.cells)} of the "
                                         f"{self.target.size} cells of {self.target.id!r}: netbabel inputs drive "
                                         "whole populations", self.el.file)
            start = imp.q(c, "delay", "ms")
            stop = conv.tidy(start + imp.q(c, "duration", "ms"))
            amp = imp.q(c, "amplitude", "pA") if c.tag == "pulseGenerator" else imp.q(c, "amplitude", "none")
            if _after_end(imp, c, start):
                return
            inp = Input(type="dc", target=self.target.name, name=name, amplitude=amp, start=start, stop=stop,
                        section=section, x=x)
            if stop >= float(d.value(d.simulation.duration)):
                inp.stop = None
            d.inputs.append(inp)
            return
        if c.tag in ("poissonFiringSynapse", "transientPoissonFiringSynapse"):
            if not full:
                raise UnsupportedFeature(f"{self.el.where()}: a Poisson input on {len(self.cells)} of the "
                                         f"{self.target.size} cells of {self.target.id!r}: netbabel inputs drive "
                                         "whole populations", self.el.file)
            if len(set(self.weights.tolist())) > 1:
                raise UnsupportedFeature(f"{self.el.where()}: Poisson inputs with different weights per cell",
                                         self.el.file)
            syn_type, weight = self._synapse(imp, float(self.weights[0]) if len(self.weights) else 1.0)
            inp = Input(type="poisson", target=self.target.name, name=name, rate=imp.q(c, "averageRate", "Hz"),
                        indegree=1, weight=weight, delay=float(d.value(d.simulation.dt)), synapse_type=syn_type,
                        section=section, x=x)
            if c.tag == "transientPoissonFiringSynapse":
                inp.start = imp.q(c, "delay", "ms")
                if _after_end(imp, c, inp.start):
                    return
                duration = imp.q(c, "duration", "ms")
                if duration < 1e8:
                    inp.stop = conv.tidy(inp.start + duration)
            d.inputs.append(inp)
            return
        if c.tag == "timedSynapticInput":
            self._timed(imp, name, section, x)
            return
        raise UnsupportedFeature(f"{c.where()}: input type <{c.tag}> has no netbabel equivalent", c.file)

    def _synapse(self, imp: _Importer, weight: float) -> tuple[str | None, float]:
        syn_id = self.comp.attrs.get("synapse", "")
        syn_el, info = imp.synapse(syn_id, self.comp)
        model = imp.d.cell_types[self.target.component].model
        if model == MULTICOMPARTMENT:
            from netbabel.importers import _neuroml_morphology as morph

            return morph.input_synapse(imp, self, syn_el, weight)
        if info is None:
            raise UnsupportedFeature(f"{syn_el.where()}: <{syn_el.tag}> onto a point cell has no catalogue "
                                     "equivalent", syn_el.file)
        receptor = imp.receptor_of(self.target, info, np.array([weight]), self.el)[0]
        return imp.synapse_type(receptor), conv.weight_from_neuroml(info.conductance, weight, info.base)

    def _timed(self, imp: _Importer, name: str, section: str | None, x: float | None) -> None:
        """timedSynapticInputs: their spikes go to a SONATA spike file; grouped per input list."""
        spikes = sorted(imp.q(s, "time", "ms") for s in self.comp.find("spike"))
        if len(set(self.weights.tolist())) > 1:
            raise UnsupportedFeature(f"{self.el.where()}: spike inputs with different weights per cell",
                                     self.el.file)
        syn_type, weight = self._synapse(imp, float(self.weights[0]) if len(self.weights) else 1.0)
        group = f"{self.target.name}|{self.comp.attrs.get('synapse')}|{weight}"
        pending = imp.__dict__.setdefault("_trains", {})
        if group not in pending:
            input_name = _train_name(name)
            pending[group] = (input_name, [], [])
            imp.d.inputs.append(Input(type="spike_train", target=self.target.name, name=input_name,
                                      file=str(imp.workdir / "inputs.h5"), population=input_name, weight=weight,
                                      delay=0.0, synapse_type=syn_type, section=section, x=x))
        input_name, ids, times = pending[group]
        for cell in self.cells:
            ids.extend([int(cell)] * len(spikes))
            times.extend(spikes)


def _after_end(imp: _Importer, comp: Element, start: float) -> bool:
    """True (with a warning) for an input that starts at or after the simulation's end: it is not imported.

    Kept, it would be an input whose stop (the end of the simulation) lies before its start.
    """
    duration = float(imp.d.value(imp.d.simulation.duration))
    if start < duration:
        return False
    print(f"warning: {comp.file}: {comp.where()}: starts at {start:g} ms, at or after the end of the simulation "
          f"({duration:g} ms); not imported", file=sys.stderr)
    return True


def write_trains(imp: _Importer) -> None:
    """The spikes of timedSynapticInputs, one SONATA population per netbabel input, into inputs.h5."""
    import h5py

    pending = imp.__dict__.get("_trains")
    if not pending:
        return
    dt = float(imp.d.value(imp.d.simulation.dt))
    by_name = {i.name: i for i in imp.d.inputs}
    with h5py.File(imp.staging / "inputs.h5", "w") as f:
        root = f.create_group("spikes")
        root.attrs["magic"] = np.uint32(0x0A7A)
        for input_name, ids, times in pending.values():
            # NeuroML2 spike times are arrival times; netbabel (like NEST) needs a delay of at least dt
            if times and min(times) >= dt:
                times = [conv.tidy(t - dt) for t in times]
                by_name[input_name].delay = dt
            g = root.create_group(input_name)
            order = np.lexsort((np.array(times), np.array(ids)))
            g.create_dataset("node_ids", data=np.array(ids, np.uint64)[order])
            ts = g.create_dataset("timestamps", data=np.array(times, np.float64)[order])
            ts.attrs["units"] = "ms"


def _train_name(list_id: str) -> str:
    """`drive__12` (netbabel's export of input `drive`, cell 12) -> `drive`; other ids unchanged."""
    m = re.match(r"^(?P<base>.+)__\d+$", list_id)
    return m.group("base") if m else list_id
