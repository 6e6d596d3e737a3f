"""Backends `neuroml` (jNeuroML), `neuroml-neuron` (jNeuroML's NEURON export) and `neuroml-pylems` (PyLEMS).

All three export the description with `netbabel.exporters.neuroml` into a work
directory and run the LEMS file in a subprocess:

- `neuroml`: `java -jar jNeuroML.jar LEMS_<name>.xml -nogui` (jLEMS, forward Euler at the model's dt).
  Its spike files hold seconds; the report holds ms.
- `neuroml-neuron`: `jNeuroML -neuron` writes a NEURON model (Python + NMODL); netbabel patches the
  generated NMODL of Poisson inputs (see `patch_mod_files`), compiles it with nrnivmodl and runs it.
  Population ids are prefixed (`pop_E`), as names such as `E` or `PI` are hoc built-in constants.
- `neuroml-pylems`: PyLEMS, pure Python, no Java; slow (about 10^3 - 10^4 cell-steps per second), for
  single cells and tiny networks. PyLEMS 0.6.9 needs the fixes of `patch_pylems` to run NeuroML2
  networks (input paths, connection weights and delays, ...) and writes no event files: `pylems_main`
  records the spike ports itself, on the dt grid as jLEMS does.

Cell types an engine cannot run are refused with the reason (`_refuse_engine_limits`; docs/neuroml.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from netbabel.backends.common import log_tail, work_directory
from netbabel.description.model import Description
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import write_report, write_voltage_population

ENGINES = ("neuroml", "neuroml-neuron", "neuroml-pylems")


def jneuroml_jar() -> Path:
    """The jNeuroML jar shipped inside pyNeuroML (found without importing pyneuroml)."""
    spec = importlib.util.find_spec("pyneuroml")
    if spec is None or not spec.submodule_search_locations:
        raise NetbabelError("the neuroml backends need pyNeuroML: pip install pyNeuroML")
    jars = sorted(Path(list(spec.submodule_search_locations)[0], "lib").glob("jNeuroML-*-jar-with-dependencies.jar"))
    if not jars:
        raise NetbabelError("pyNeuroML has no jNeuroML jar in its lib folder")
    return jars[-1]


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise NetbabelError("the neuroml backends need Java (jNeuroML): install a JRE (e.g. openjdk-17-jre)")
    return found


def run(description: Description, output: Path, options: argparse.Namespace) -> None:
    """Export, simulate with the engine named by options.backend, write the SONATA spike report."""
    from netbabel.exporters.neuroml import export

    engine = getattr(options, "backend", "neuroml") or "neuroml"
    if engine not in ENGINES:
        raise NetbabelError(f"unknown NeuroML engine {engine!r}")
    if int(getattr(description.simulation, "processes", 1) or 1) > 1:
        raise NetbabelError(f"the {engine} backend runs in one process (no MPI)")
    if engine in ("neuroml", "neuroml-pylems"):
        for name, cell in description.cell_types.items():
            if cell.model == "multicompartment" and len(cell.sections or []) > 1:
                raise NetbabelError(f"cell type {name!r} has {len(cell.sections or [])} sections: jLEMS and PyLEMS "
                                    "simulate only single-compartment cells; use --backend neuroml-neuron")
    _refuse_engine_limits(description, engine)
    with work_directory(options, prefix=f"netbabel-{engine}-") as workdir:
        model_dir = workdir / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        result = export(description, model_dir, options, safe_ids=engine == "neuroml-neuron")
        if engine == "neuroml":
            run_jneuroml(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        elif engine == "neuroml-neuron":
            run_neuron(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        else:
            run_pylems(result.lems_file, workdir)
            spikes = read_spike_files(result, seconds=True)
        write_report(output, spikes, attrs={"simulator": engine})
        write_voltage_report(description, result, Path(output), first_row=0 if engine == "neuroml-pylems" else 1)


def _refuse_engine_limits(description: Description, engine: str) -> None:
    """Refuse cell types an engine cannot run (docs/neuroml.md, "Known limits of the engines").

    hh_cond_exp_traub -> HH_cond_exp, whose LEMS definition (PyNN.xml) has no spike port: jLEMS and PyLEMS
    can neither record its spikes nor connect from it ("No output port"); jNeuroML's NEURON export of PyNN
    cells requires a `v_thresh`, which HH_cond_exp does not have. aeif_cond_exp in the NEURON export: v
    runs away through the exponential term at the first spike (and disturbed other cells' spike times).
    """
    for name, cell in description.cell_types.items():
        if cell.model != "hh_cond_exp_traub":
            continue
        pops = [p for p, pop in description.populations.items() if pop.cell_type == name]
        spikes = description.simulation.record.spikes
        needed = [p for p in pops if spikes == "all" or p in spikes
                  or any(proj.source == p for proj in description.projections)]
        if engine == "neuroml-neuron" and pops:
            raise UnsupportedFeature("hh_cond_exp_traub -> NeuroML2 HH_cond_exp: jNeuroML's NEURON export of "
                                     "PyNN cells needs v_thresh, which HH_cond_exp lacks", None, f"/cell_types/{name}")
        if needed:
            raise UnsupportedFeature(f"hh_cond_exp_traub -> NeuroML2 HH_cond_exp has no spike output port in its "
                                     f"LEMS definition: the spikes of {', '.join(needed)} can neither be recorded "
                                     f"nor sent in {engine} (record V_m only, or use nest/netpyne/pynn)", None,
                                     f"/cell_types/{name}")
    for name, cell in description.cell_types.items():
        used = any(pop.cell_type == name for pop in description.populations.values())
        if engine == "neuroml-neuron" and cell.model == "aeif_cond_exp" and used:
            raise UnsupportedFeature("aeif_cond_exp -> NeuroML2 EIF_cond_exp_isfa_ista in jNeuroML's NEURON export: "
                                     "NEURON integrates v through the exponential term to ~1e27 mV before the "
                                     "reset at the first spike, and the cell never recovers; use --backend neuroml",
                                     None, f"/cell_types/{name}")


def _run(command: list[str], cwd: Path, log: Path, env: dict | None = None, timeout: float | None = None) -> float:
    """Run a command, logging its output; NetbabelError with the log's end on failure. Wall-clock seconds."""
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        try:
            proc = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})}, timeout=timeout)
        except OSError as exc:
            raise NetbabelError(f"cannot start {command[0]}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise NetbabelError(f"{Path(command[0]).name} did not finish within {timeout} s", str(log)) from None
    if proc.returncode != 0:
        raise NetbabelError(f"{' '.join(command[:4])} ... exited with status {proc.returncode}\n"
                            f"--- last lines of {log} ---\n{log_tail(log)}")
    text = log.read_text(errors="replace")
    if "Exception" in text and "Finished" not in text and command[0].endswith("java"):
        raise NetbabelError(f"jNeuroML failed\n--- last lines of {log} ---\n{log_tail(log)}")
    return time.perf_counter() - start


def run_jneuroml(lems_file: Path, workdir: Path) -> float:
    """`jnml LEMS -nogui` in the LEMS file's folder; seconds taken."""
    return _run([java(), "-Xmx1G", "-jar", str(jneuroml_jar()), lems_file.name, "-nogui"], lems_file.parent,
                workdir / "jnml.log")


def neuron_environment() -> dict[str, str]:
    """NEURON_HOME for jNeuroML's NEURON export: the prefix where nrnivmodl lives (the virtual environment)."""
    nrnivmodl = shutil.which("nrnivmodl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if nrnivmodl is None:
        raise NetbabelError("the neuroml-neuron backend needs NEURON (nrnivmodl): pip install neuron")
    bindir = Path(nrnivmodl).parent
    return {"NEURON_HOME": str(bindir.parent), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_neuron(lems_file: Path, workdir: Path) -> float:
    """jNeuroML -> NEURON (Python + NMODL), patched, compiled and run; seconds taken."""
    env = neuron_environment()
    folder = lems_file.parent
    seconds = _run([java(), "-Xmx1G", "-jar", str(jneuroml_jar()), lems_file.name, "-neuron", "-nogui"], folder,
                   workdir / "jnml_neuron.log", env)
    patch_mod_files(folder)
    seconds += _run([str(Path(env["NEURON_HOME"]) / "bin" / "nrnivmodl")], folder, workdir / "nrnivmodl.log", env)
    script = folder / f"{lems_file.stem}_nrn.py"
    seconds += _run([sys.executable, script.name, "-nogui"], folder, workdir / "neuron.log", env)
    return seconds


_PATCHES = [
    # old C prototypes that clash with NEURON 9's C++ declarations (Rand* nrn_random_arg(int), ...)
    (re.compile(r"^\s*double\s+nrn_random_pick\s*\(\s*void\s*\*\s*\w*\s*\)\s*;\s*$", re.M), ""),
    (re.compile(r"^\s*void\s*\*\s*nrn_random_arg\s*\(\s*int\s*\w*\s*\)\s*;\s*$", re.M), ""),
    (re.compile(r"\*pv\s*=\s*nrn_random_arg\(1\);"), "*pv = (void*) nrn_random_arg(1);"),
    (re.compile(r"nrn_random_pick\(_p_donotuse\)"), "nrn_random_pick(static_cast<Rand*>(_p_donotuse))"),
]


def patch_mod_files(folder: Path) -> list[str]:
    """Make jNeuroML's generated NMODL compile with NEURON 9; returns the files changed.

    jNeuroML 0.14 writes Poisson inputs (poissonFiringSynapse, transientPoissonFiringSynapse,
    SpikeSourcePoisson) with VERBATIM blocks copied from NEURON 8's netstim.mod: C prototypes
    `double nrn_random_pick(void*)` and `void* nrn_random_arg(int)`. NEURON 9 compiles NMODL as
    C++ and declares `Rand* nrn_random_arg(int)`, so the old prototypes are "ambiguating new
    declarations". The patch drops them and casts between `void*` and `Rand*` where they are used.
    """
    changed = []
    for mod in sorted(folder.glob("*.mod")):
        text = mod.read_text()
        new = text
        for pattern, replacement in _PATCHES:
            new = pattern.sub(replacement, new)
        if new != text:
            mod.write_text(new)
            changed.append(mod.name)
    return changed


def core_types_dir(workdir: Path) -> Path:
    """NeuroML2CoreTypes extracted from the jNeuroML jar (PyLEMS needs them on its include path)."""
    target = workdir / "NeuroML2CoreTypes"
    if not target.exists():
        with zipfile.ZipFile(jneuroml_jar()) as jar:
            for name in jar.namelist():
                if name.startswith("NeuroML2CoreTypes/") and name.endswith(".xml"):
                    jar.extract(name, workdir)
    return target


def run_pylems(lems_file: Path, workdir: Path) -> float:
    """PyLEMS (with `patch_pylems`, recording spikes as `pylems_main` does) in a subprocess; seconds taken."""
    core = core_types_dir(workdir)
    runner = "import sys; from netbabel.backends.neuroml import pylems_main; pylems_main(sys.argv[1], sys.argv[2])"
    return _run([sys.executable, "-c", runner, lems_file.name, str(core.resolve())],
                lems_file.parent, workdir / "pylems.log")


def pylems_main(lems_name: str, core_dir: str) -> None:
    """Run a LEMS file in PyLEMS (patched) and write its EventOutputFiles (ID_TIME, seconds) itself.

    PyLEMS parses but never writes `EventOutputFile`s; here every selected cell's spike port gets a
    callback that notes the time of the step in which it fired (as jLEMS does).
    """
    import xml.etree.ElementTree as ET

    patch_pylems()
    from lems.run import main
    from lems.sim.build import SimulationBuilder

    outputs: dict[str, list[tuple[int, str, str]]] = {}
    for element in ET.parse(lems_name).getroot().iter("EventOutputFile"):
        outputs[element.get("fileName")] = [(int(sel.get("id")), sel.get("select"), sel.get("eventPort", "spike"))
                                            for sel in element.iter("EventSelection")]
    events: dict[str, list[tuple[int, float]]] = {name: [] for name in outputs}
    build = SimulationBuilder.build

    def build_recording(self):
        sim = build(self)
        network = next(iter(sim.runnables.values()))
        for name, selections in outputs.items():
            for cell_id, select, port in selections:
                cell = network.resolve_path(select)
                cell.register_event_out_callback(port, _spike_recorder(events[name], cell_id, cell))
        return sim

    SimulationBuilder.build = build_recording
    main(argparse.Namespace(lems_file=lems_name, I=[core_dir], dlems=False, nogui=True))
    for name, rows in events.items():
        with open(name, "w") as handle:
            handle.writelines(f"{cell_id}\t{t!r}\n" for cell_id, t in rows)


def _spike_recorder(rows: list, cell_id: int, cell):
    return lambda: rows.append((cell_id, round(cell.time_completed, 12)))


# -- PyLEMS compatibility (applied in the PyLEMS subprocess only) ------------------------------------

_PENDING: list = []  # heap of (due time in s, sequence number, target runnable, port): delayed events
_CLOCK = {"t": 0.0, "seq": 0}


def patch_pylems() -> None:
    """Make PyLEMS 0.6 run NeuroML2 point-neuron networks as jLEMS does (monkeypatches, this process only).

    PyLEMS 0.6.9 and what is done about it:
    (a) it resolves every EventConnection path on the parent first, where NeuroML2's
        `spikeTarget="./syn"` (timedSynapticInput, poissonFiringSynapse) fails ("Unable to find child
        '.'"): such paths are resolved on the component itself, './x' meaning its child x;
    (b) it ignores an EventConnection's `delay` and `<Assign property="weight">` (connectionWD, inputW:
        every event arrived at once with weight 1): both are read from the LEMS file and applied, delayed
        events are delivered in the step after spike time + delay (as in jLEMS); its event handlers read
        the state from the start of the step, so of several events in one step only one counted
        (`I = I + weight` twice added weight once): each handled event now updates the state it assigns;
    (c) it attaches an input to a cell only by type (PyNN cells attach `baseSynapse`s, so pulseGenerators
        and timedSynapticInputs were refused): an input goes into the container named by its destination;
    (d) generated code calls `heaviside_step` (LEMS's H(), in the Poisson inputs), never defined: defined;
    (e) a population's cells are copies sharing their template's lists of event callbacks, so a
        connection from one cell fired on the spikes of all: copies get their own lists;
    (f) a connectionWD made two connections, its own and the weightless, undelayed one of `connection`,
        which it extends: a type's EventConnection replaces the one of the type it extends.
    """
    _patch_pylems_structure()
    _patch_pylems_connections()
    _patch_pylems_events()


def _patch_pylems_structure() -> None:
    """(a) './x' paths, (c) attachment by destination, (e) own callback lists for copies, (d) H()."""
    from lems.sim import runnable as runnable_module
    from lems.sim.runnable import Runnable

    resolve_path = Runnable.resolve_path

    def resolve_path_dot(self, path: str):
        if path == ".":
            return self
        if path.startswith("./"):
            try:
                return resolve_path_dot(self, path[2:])
            except Exception:
                # PyLEMS's Runnable.copy resolves on the parent first and then again on the copy itself
                return self
        return resolve_path(self, path)

    add_attachment = Runnable.add_attachment

    def add_attachment_by_container(self, runnable, container=None) -> None:
        if container and not any(t in self.attachments for t in runnable.component.types) \
                and container in self.attachments.values():
            runnable.id = runnable.id + str(len(self.__dict__[container]))
            self.__dict__[container].append(runnable)
            runnable.parent = self
            return
        add_attachment(self, runnable, container)

    copy = Runnable.copy

    def copy_with_own_callbacks(self):
        saved = self.event_out_callbacks
        self.event_out_callbacks = _CopyingDict(saved)  # Runnable.copy shares the callback lists
        try:
            return copy(self)
        finally:
            self.event_out_callbacks = saved

    runnable_module.heaviside_step = _heaviside
    Runnable.resolve_path = resolve_path_dot
    Runnable.add_attachment = add_attachment_by_container
    Runnable.copy = copy_with_own_callbacks


def _patch_pylems_connections() -> None:
    """(b) delays and weight assignments of EventConnections read and applied, (f) most derived only."""
    from lems.model.model import Model
    from lems.parser.LEMS import LEMSFileParser
    from lems.sim.build import SimulationBuilder

    parse_ec = LEMSFileParser.parse_event_connection

    def parse_event_connection(self, node) -> None:
        parse_ec(self, node)
        ec = self.current_structure.event_connections[-1]
        ec.netbabel_delay = node.lattrib.get("delay")
        ec.netbabel_assigns = [(c.lattrib.get("property"), c.lattrib.get("value"))
                               for c in node.children if c.ltag == "assign"]

    resolve_structure = Model.resolve_structure

    def resolve(self, fc, ct) -> None:
        before = len(fc.structure.event_connections)
        resolve_structure(self, fc, ct)
        for template, ec in zip(ct.structure.event_connections, fc.structure.event_connections[before:]):
            ec.netbabel_delay = _pylems_number(fc, getattr(template, "netbabel_delay", None))
            ec.netbabel_assigns = [(prop, _pylems_number(fc, value))
                                   for prop, value in getattr(template, "netbabel_assigns", [])]

    def build_event_connections(self, component, runnable, structure) -> None:
        for ec in _most_derived(structure.event_connections):
            if ec.receiver:
                source = runnable.parent.resolve_path(ec.from_)
                target = runnable.parent.resolve_path(ec.to)
                # built afresh, not copied: Runnable.copy leaves the copied children's events (the
                # spikes of a timedSynapticInput) wired to the original
                receiver = self.build_runnable(ec.receiver, target)
                template_id = receiver.id
                receiver.id = f"{component.id}__{template_id}__"
                if ec.receiver_container:
                    target.add_attachment(receiver, ec.receiver_container)
                target.add_child(template_id, receiver)
                for prop, value in getattr(ec, "netbabel_assigns", []):
                    if prop and value is not None:
                        receiver.__dict__[prop] = value
                target = receiver
            else:
                source = runnable.resolve_path(ec.from_)
                target = runnable.resolve_path(ec.to)
            source_port = ec.source_port or _only_port(source.event_out_ports, source.id, "source")
            target_port = ec.target_port or _only_port(target.event_in_ports, target.id, "destination")
            source.register_event_out_callback(source_port,
                                               _event_callback(target, target_port, getattr(ec, "netbabel_delay", None)))

    LEMSFileParser.parse_event_connection = parse_event_connection
    Model.resolve_structure = resolve
    SimulationBuilder.build_event_connections = build_event_connections


def _patch_pylems_events() -> None:
    """(b) one state update per handled event; delayed events delivered at the start of their step."""
    import heapq

    from lems.sim.build import SimulationBuilder
    from lems.sim.sim import Simulation

    build_on_event = SimulationBuilder.build_on_event

    def build_on_event_each(self, runnable, regime, on_event) -> list[str]:
        code = build_on_event(self, runnable, regime, on_event)
        assigned = [a.variable for a in on_event.actions if hasattr(a, "variable") and hasattr(a, "expression_tree")]
        return code[:-1] + [f"    self.{v}_shadow = self.{v}" for v in assigned] + code[-1:]

    step = Simulation.step

    def step_delivering(self) -> bool:
        if self.run_queue:
            now, top = self.run_queue[0]
            _CLOCK["t"] = now
            # jLEMS hands a spike sent at step t with delay d to the target in the step after t + d
            while _PENDING and _PENDING[0][0] + 0.5 * top.time_step <= now:
                _, _, target, port = heapq.heappop(_PENDING)
                target.inc_event_in(port)
        return step(self)

    SimulationBuilder.build_on_event = build_on_event_each
    Simulation.step = step_delivering


def _most_derived(connections: list) -> list:
    """One EventConnection per (from, to, receiver): a type's own one replaces the one it extends.

    PyLEMS keeps both (connectionWD's, with delay and weight, and that of `connection`, which it extends).
    """
    chosen: dict = {}
    for ec in connections:
        key = (ec.from_, ec.to, id(ec.receiver) if ec.receiver else None)
        richer = getattr(ec, "netbabel_delay", None) is not None or getattr(ec, "netbabel_assigns", None)
        if key not in chosen or richer:
            chosen[key] = ec
    return list(chosen.values())


class _CopyingDict(dict):
    """A dict whose items are handed out as copies (lists copied, not shared)."""

    def __getitem__(self, key):
        return list(super().__getitem__(key))


def _heaviside(x: float) -> float:
    """LEMS's H(x), which PyLEMS names in generated code (`heaviside_step`) but never defines."""
    return 0.0 if x < 0 else (1.0 if x > 0 else 0.5)


def _pylems_number(fc, value: str | None) -> float | None:
    """A parameter name or a number of a resolved PyLEMS component, as an SI number (None when absent)."""
    if value is None or value == "":
        return None
    if value in fc.parameters:
        return float(fc.parameters[value].numeric_value)
    try:
        return float(value)
    except ValueError:
        return None


def _only_port(ports: list, owner: str, kind: str) -> str:
    if len(ports) != 1:
        raise NetbabelError(f"PyLEMS: no {kind} event port uniquely identifiable in {owner!r}")
    return ports[0]


def _event_callback(target, port: str, delay: float | None):
    """Deliver at once (no delay) or queue until the step after now + delay."""
    import heapq

    if not delay:
        return lambda: target.inc_event_in(port)

    def queue() -> None:
        _CLOCK["seq"] += 1
        heapq.heappush(_PENDING, (_CLOCK["t"] + delay, _CLOCK["seq"], target, port))

    return queue


def write_voltage_report(description: Description, result, output: Path, first_row: int) -> None:
    """The recorded V_m as the NEST backend's membrane report, beside the spike report (`<stem>_v.h5`).

    The LEMS OutputFiles (`<population id>.v.dat`: t and v in SI units) become /report/<population>/data
    (samples at dt, 2 dt, ..., duration; cells in ascending index order; mV), mapping/node_ids, element_ids,
    index_pointers and time. jLEMS and jNeuroML's NEURON export write the state at t = k dt in row k (row 0:
    the initial state), PyLEMS the state after step k + 1 in row k: `first_row` is 1 or 0.
    """
    import h5py

    from netbabel.atomic import atomic_path
    from netbabel.exporters.neuroml import voltage_columns

    columns = voltage_columns(description)
    if not columns:
        return
    dt = float(description.value(description.simulation.dt))
    n_steps = int(round(float(description.value(description.simulation.duration)) / dt))
    with atomic_path(output.with_name(output.stem + "_v" + output.suffix)) as tmp, h5py.File(tmp, "w") as f:
        for pname, ids in columns.items():
            path = result.directory / f"{result.population_ids[pname]}.v.dat"
            if not path.exists():
                raise NetbabelError(f"the simulation wrote no V_m file for population {pname!r}", str(path))
            values = np.loadtxt(path, ndmin=2)[first_row:first_row + n_steps, 1:1 + len(ids)] * 1000.0
            data = np.full((n_steps, len(ids)), np.nan)
            data[:len(values)] = values
            write_voltage_population(f, pname, data, ids, dt)


def read_spike_files(result, seconds: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """jNeuroML / NEURON ID_TIME spike files -> {netbabel population: (ids, times in ms)}."""
    spikes = {}
    for pname, relative in result.spike_files.items():
        path = result.directory / relative
        if not path.exists():
            raise NetbabelError(f"the simulation wrote no spike file for population {pname!r}", str(path))
        data = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 2))
        ids = data[:, 0].astype(np.int64) if len(data) else np.zeros(0, np.int64)
        times = data[:, 1] * (1000.0 if seconds else 1.0) if len(data) else np.zeros(0)
        spikes[pname] = (ids, np.round(times, 9))
    return spikes
