"""Export to a standalone PyNN 0.13 script: `model_pynn.py` (+ `model_pynn.json` for long value lists).

`python model_pynn.py --simulator nest|neuron [--output spikes.h5]`, also under `mpirun -np N`.
Cells are PyNN standard cells in PyNN units (nF, nA, uS, mV, ms). On NEST the script uses
spike_precision="on_grid" (PyNN's default "off_grid" swaps in NEST's precise-spike models) and
hands connection rules straight to nest.Connect through a small Connector (PyNN's own native
path, `Projection._connect`): PyNN's FixedNumberPreConnector draws and connects cell by cell in
Python and is ~50x slower. On NEURON the standard PyNN connectors are used.

Modes: `native` (rules) and `frozen` (explicit edges and input spike trains from instantiate).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from netbabel import __version__
from netbabel.converters import nest as nconv
from netbabel.converters import pynn as pconv
from netbabel.description.model import Description
from netbabel.errors import UnsupportedFeature

SCRIPT = "model_pynn.py"
DATA = "model_pynn.json"
SIMULATORS = ("nest", "neuron")


def write(description: Description, out: Path, options: argparse.Namespace) -> None:
    """Write model_pynn.py (and its data files) into the directory `out`."""
    out.mkdir(parents=True, exist_ok=True)
    mode = getattr(options, "mode", "native") or "native"
    if mode == "frozen":
        from netbabel.description import io
        from netbabel.instantiate import instantiate_to_directory

        instantiate_to_directory(description, out)
        description = io.load(out / "model.json")
    PyNNScript(description, out, mode).write()


def unsupported_on(description: Description, simulator: str) -> list[str]:
    """Reasons the exported script cannot run on `simulator` (empty: it can)."""
    reasons = []
    for pop in description.populations:
        if nconv.is_source(description, pop):
            continue
        try:
            pconv.cell(description, pop, simulator)
        except UnsupportedFeature as exc:
            reasons.append(str(exc))
    return reasons


class PyNNScript:
    """Builds the text of model_pynn.py."""

    def __init__(self, d: Description, out: Path, mode: str):
        self.d, self.out, self.mode = d, out, mode
        self.dt = d.value(d.simulation.dt)
        self.data: dict[str, Any] = {}
        self.nest_only: list[str] = []

    def write(self) -> None:
        body = [*self.populations(), *self.projections(), *self.inputs()]
        py = nconv.py
        text = HEADER.format(name=self.d.name, version=__version__, mode=self.mode, script=SCRIPT,
                             dt=py(self.dt), duration=py(self.d.value(self.d.simulation.duration)),
                             seed=int(self.d.simulation.seed), threads=int(self.d.simulation.threads),
                             min_delay=py(self.min_delay()), max_delay=py(self.max_delay()),
                             nest_only=py(self.nest_only))
        text += "\n\ndef build(sim, args):\n    \"\"\"Create the network; returns {population: Population}.\"\"\"\n"
        text += SETUP
        text += "".join("    " + line + "\n" if line else "\n" for line in body)
        text += "    return populations\n\n"
        text += self.recording()
        text += FOOTER
        (self.out / SCRIPT).write_text(text)
        if self.data:
            (self.out / DATA).write_text(json.dumps(self.data, indent=1))

    def min_delay(self) -> float:
        """The smallest fixed delay of the model (dt when a delay is random or explicit)."""
        delays = []
        for p in self.d.projections:
            q = nconv.delay(self.d, p.delay, "delay")
            delays.append(self.dt if isinstance(q, nconv.RandomValue) or p.rule.type == "explicit" else q)
        for inp in self.d.inputs:
            if inp.type in ("poisson", "spike_train"):
                q = nconv.delay(self.d, inp.delay, "delay")
                delays.append(self.dt if isinstance(q, nconv.RandomValue) else q)
        return max(self.dt, min(delays, default=self.dt))

    def max_delay(self) -> float:
        """The largest delay the model can have: PyNN hands it to the simulator (its default, 10 ms, would make
        NEST refuse longer delays, as in the multi-area model)."""
        delays = [self.min_delay()]
        for index, p in enumerate(self.d.projections):
            bound = delay_upper_bound(nconv.delay(self.d, p.delay, "delay"))
            delays.append(explicit_max_delay(self.d, index, bound) if p.rule.type == "explicit" else bound)
        for inp in self.d.inputs:
            if inp.type in ("poisson", "spike_train"):
                delays.append(delay_upper_bound(nconv.delay(self.d, inp.delay, "delay")))
        return max(delays)

    # -- populations ---------------------------------------------------------
    def populations(self) -> list[str]:
        d, py = self.d, nconv.py
        lines = ["populations = {}"]
        if self.needs_data():
            lines.insert(0, f"data = json.loads((HERE / {DATA!r}).read_text())")
        for name, pop in d.populations.items():
            n = d.size(name)
            model = nconv.check_point_model(d, name, "PyNN")
            lines.append("")
            if nconv.is_source(d, name):
                cls, params = pconv.source_cell(d, name)
                lines.append(f"# population {name}: {n} x {cls} ({model})")
                if cls == "SpikeSourceArray":
                    trains = [nconv.grid_times(t, self.dt).tolist() for t in nconv.spike_times_for_source(d, name)]
                    self.data[f"spike_times/{name}"] = trains  # off-grid times at the end of their step
                    params_text = f"spike_times=[sim.Sequence(t) for t in data['spike_times/{name}']]"
                else:
                    params_text = ", ".join(f"{k}={py(v)}" for k, v in params.items())
                lines.append(f"populations[{name!r}] = sim.Population({n}, sim.{cls}({params_text}), label={name!r})")
                continue
            cls, params, initial = pconv.cell(d, name)
            if not pconv.CELLS[model].neuron:
                self.nest_only.append(f"population {name!r}: {model} ({cls}) has no NEURON implementation in PyNN")
            lines.append(f"# population {name}: {n} x {cls} ({model}, cell type {pop.cell_type})")
            lines.append(f"populations[{name!r}] = sim.Population({n}, sim.{cls}(**{py(params)}), label={name!r})")
            initial_text = {k: py(v) for k, v in initial.items()}
            v_text = self.initial_v(name)
            if v_text is not None:
                initial_text["v"] = v_text
            if "w" in initial_text:
                lines.append("# PyNN 0.13 on NEST passes initial values to NEST without unit factors: w must be in pA")
                initial_text["w"] = f"{initial_text['w']} * (1000.0 if ON_NEST else 1.0)"
            lines.append(f"populations[{name!r}].initialize("
                         + ", ".join(f"{k}={v}" for k, v in initial_text.items()) + ")")
        return lines

    def needs_data(self) -> bool:
        d = self.d
        return any(nconv.cell_model(d, p) == "spike_generator" for p in d.populations) or (
            self.mode == "frozen" and any(d.populations[p].v_init is not None for p in d.populations))

    def initial_v(self, name: str) -> str | None:
        if self.d.populations[name].v_init is None:
            return None
        if self.mode == "frozen":
            from netbabel.instantiate import initial_potentials

            v = initial_potentials(self.d, name)
            if v is not None:
                self.data[f"v_init/{name}"] = [float(x) for x in v]
                return f"np.array(data['v_init/{name}'])"
        v = nconv.initial_v(self.d, name)
        return random_source(v) if isinstance(v, nconv.RandomValue) else nconv.py(v)

    # -- projections -----------------------------------------------------------
    def projections(self) -> list[str]:
        d, py = self.d, nconv.py
        lines = ["projections = {}"]
        for i, p in enumerate(d.projections):
            name = d.projection_name(i)
            what = f"projection {name!r}"
            nconv.check_point_model(d, p.target, "PyNN")
            pynn_weight, receptor = self.weight(p.target, p.synapse_type, p.weight, what)
            delay = nconv.delay(d, p.delay, what)
            lines.append("")
            lines.append(f"# projection {name}: {p.source} -> {p.target}, {p.rule.type}, {receptor}")
            pre, post = f"populations[{p.source!r}]", f"populations[{p.target!r}]"
            if p.rule.type == "explicit":
                sign = nconv.weight_sign(d, p.target, p.synapse_type, p.weight, what)
                f = pconv.weight_factor(d, p.target)
                lines.append(f"connector = explicit_connector(sim, {self.copy_file(p.rule.file)!r}, "
                             f"{p.rule.population or name!r}, pynn_factor={py(f)}, nest_sign={py(sign)})")
                synapse = "sim.StaticSynapse()"
            else:
                rule = nconv.connection_rule(d, i)
                nest_weight = nconv.nest_source(nconv.projection_weight(d, i))
                nest_delay = nconv.nest_source(delay, minimum=self.dt)
                lines.append("if FAST_NEST:  # NEST's own rule, through PyNN's native path")
                lines.append(f"    connector = NESTRule({py(rule)},")
                lines.append(f"                         weight=lambda: {nest_weight}, delay=lambda: {nest_delay})")
                lines.append("else:")
                lines.append(f"    connector = {pynn_connector(d, i)}")
                synapse = f"sim.StaticSynapse(weight={value_source(pynn_weight)}, delay={value_source(delay, self.dt)})"
            lines.append(f"projections[{name!r}] = sim.Projection({pre}, {post}, connector, {synapse},")
            lines.append(f"                                   receptor_type={receptor!r}, label={name!r})")
        return lines

    def weight(self, target: str, synapse_type: str | None, weight: Any, what: str) -> tuple[nconv.Value, str]:
        """(weight in PyNN units, receptor) with PyNN's sign rules checked."""
        raw = nconv.quantity(self.d, weight if weight is not None else 0.0, what)
        nconv.weight_sign(self.d, target, synapse_type, weight if weight is not None else 0.0, what)
        receptor = pconv.receptor(self.d, target, synapse_type, raw, what)
        pconv.check_weight_sign(self.d, target, receptor, raw, what)
        return pconv.scale(raw, pconv.weight_factor(self.d, target)), receptor

    def copy_file(self, relative: str) -> str:
        import shutil

        source = self.d.resolve_path(relative)
        target = self.out / Path(relative).name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        return target.name

    def spike_train_file(self, relative: str, population: str) -> str:
        """The spike file a spike_train input reads: a copy, or when some times are off the dt grid, a file of
        that population with them at the end of their step (`grid_times`, NEST's rule)."""
        import h5py
        import numpy as np

        from netbabel.spikereport import write_report

        with h5py.File(self.d.resolve_path(relative), "r") as f:
            group = f["spikes"][population]
            ids, times = group["node_ids"][()], group["timestamps"][()]
        on_grid = nconv.grid_times(times, self.dt)
        if np.allclose(on_grid, times, rtol=0.0, atol=1e-9):
            return self.copy_file(relative)
        name = f"{Path(relative).stem}_{population}_on_grid.h5"
        write_report(self.out / name, {population: (ids, on_grid)})
        return name

    # -- inputs ------------------------------------------------------------------
    def inputs(self) -> list[str]:
        d, py = self.d, nconv.py
        lines: list[str] = []
        for i, inp in enumerate(d.inputs):
            nconv.check_point_model(d, inp.target, "PyNN")
            nconv.check_input(d, i)
            name = d.input_name(i)
            what = f"input {name!r}"
            target = f"populations[{inp.target!r}]"
            lines.append("")
            lines.append(f"# input {name}: {inp.type} onto {inp.target}")
            start = d.value(inp.start) if inp.start is not None else None
            stop = d.value(inp.stop) if inp.stop is not None else None
            if inp.type in ("dc", "step_current"):
                f = pconv.CURRENT_FACTOR
                if inp.type == "dc":
                    args = {"amplitude": d.value(inp.amplitude) * f}
                    if start is not None:
                        args["start"] = start
                    if stop is not None:
                        args["stop"] = stop
                    lines.append(f"sim.DCSource({', '.join(f'{k}={py(v)}' for k, v in args.items())}).inject_into({target})")
                else:
                    times = [d.value(t) for t in inp.times or []]
                    amps = [d.value(a) * f for a in inp.amplitudes or []]
                    lines.append(f"sim.StepCurrentSource(times={py(times)}, amplitudes={py(amps)}).inject_into({target})")
                continue
            weight, receptor = self.weight(inp.target, inp.synapse_type, inp.weight, what)
            delay = nconv.delay(d, inp.delay, what)
            if isinstance(weight, nconv.RandomValue) or isinstance(delay, nconv.RandomValue):
                raise UnsupportedFeature(f"{what}: random weights or delays of inputs are not exported to PyNN yet")
            nest_weight = nconv.input_weight(d, i)
            nest_syn = f"{{'weight': {py(nest_weight)}, 'delay': {py(max(delay, self.dt))}}}"
            if inp.type == "poisson":
                k = int(round(d.value(inp.indegree if inp.indegree is not None else 1)))
                rate = d.value(inp.rate) * k
                window = {"start": start or 0.0}
                if stop is not None:
                    window["duration"] = stop - (start or 0.0)
                nest_window = {k2: v for k2, v in (("start", start), ("stop", stop)) if v is not None}
                lines.append(f"# {k} independent trains of {d.value(inp.rate)} Hz per cell = one train of {rate} Hz")
                lines.append(f"poisson_input(sim, {target}, rate={py(rate)}, window={py(window)}, "
                             f"nest_window={py(nest_window)}, weight={py(weight)}, delay={py(max(delay, self.dt))},")
                lines.append(f"              receptor={receptor!r}, nest_synapse={nest_syn}, label={name!r})")
            elif inp.type == "spike_train":
                spike_file = self.spike_train_file(inp.file, inp.population or name)
                lines.append(f"spike_train_input(sim, {target}, {spike_file!r}, {inp.population or name!r}, "
                             f"weight={py(weight)}, delay={py(max(delay, self.dt))},")
                lines.append(f"                  receptor={receptor!r}, nest_synapse={nest_syn}, label={name!r})")
            else:
                raise UnsupportedFeature(f"{what}: input type {inp.type!r} is not supported by PyNN")
        return lines

    def recording(self) -> str:
        pops, v = nconv.recorded(self.d)
        return RECORDING.format(spikes=nconv.py(pops), v=nconv.py(v))


def value_source(v: nconv.Value, minimum: float | None = None) -> str:
    """A number, or a PyNN RandomDistribution drawn from the script's numpy RNG (bounded below by `minimum`)."""
    if isinstance(v, nconv.RandomValue):
        if minimum is not None and v.distribution != "uniform" and (v.low is None or v.low < minimum):
            # PyNN refuses delays below min_delay: its draws are bounded at dt where NEST rounds to the grid
            from dataclasses import replace

            v = replace(v, low=minimum, bounds=v.bounds or "redraw")
        return random_source(v)
    return nconv.py(float(v) if minimum is None else max(float(v), minimum))


def random_source(v: nconv.RandomValue) -> str:
    name, params = pconv.pynn_distribution(v)
    return f"sim.RandomDistribution({name!r}, rng=rng, " + ", ".join(f"{k}={nconv.py(x)}" for k, x in params.items()) + ")"


def pynn_connector(d: Description, index: int) -> str:
    """Source text of the standard PyNN connector of a projection's rule."""
    p = d.projections[index]
    rule = nconv.connection_rule(d, index)
    self_ok = f"allow_self_connections={bool(p.autapses)}"
    kind = p.rule.type
    if kind == "all_to_all":
        if not p.multapses:
            pass
        return f"sim.AllToAllConnector({self_ok})"
    if kind == "one_to_one":
        return "sim.OneToOneConnector()"
    if kind == "pairwise_bernoulli":
        return f"sim.FixedProbabilityConnector({rule['p']!r}, {self_ok}, rng=rng)"
    if kind == "fixed_indegree":
        return f"sim.FixedNumberPreConnector({rule['indegree']}, with_replacement={bool(p.multapses)}, {self_ok}, rng=rng)"
    if kind == "fixed_outdegree":
        return f"sim.FixedNumberPostConnector({rule['outdegree']}, with_replacement={bool(p.multapses)}, {self_ok}, rng=rng)"
    if kind == "fixed_total_number":
        return f"sim.FixedTotalNumberConnector({rule['N']}, with_replacement={bool(p.multapses)}, {self_ok}, rng=rng)"
    raise UnsupportedFeature(f"projection {d.projection_name(index)!r}: rule {kind!r} has no PyNN connector")



def delay_upper_bound(q: nconv.Value) -> float:
    """The largest value a delay can take (an unbounded normal or lognormal: 8 standard deviations)."""
    if not isinstance(q, nconv.RandomValue):
        return float(q)
    if q.high is not None:
        return float(q.high)
    if q.distribution == "uniform":
        return float(q.b)
    if q.distribution == "lognormal":
        return float(math.exp(q.a + 8.0 * q.b))
    return float(q.a + 8.0 * q.b)


def explicit_max_delay(d: Description, index: int, fallback: float) -> float:
    """The largest delay in an explicit projection's edges file (`fallback` when the file has no delays)."""
    import h5py

    from netbabel.instantiate.rules import explicit_population

    path, name = explicit_population(d, index)
    with h5py.File(path, "r") as f:
        delays = f.get(f"edges/{name}/0/delay")
        if delays is None or delays.shape[0] == 0:
            return fallback
        return float(np.max(delays[()]))

HEADER = '''#!/usr/bin/env python
"""{name}: exported by netbabel {version} for PyNN 0.13 ({mode} mode).

Run:  python {script} [--simulator nest|neuron] [--output spikes.h5] [--threads N] [--seed S]
      mpirun -np N python {script} --simulator neuron
Writes a SONATA spike report (/spikes/<population>/timestamps in ms, node_ids =
index within the population) and, for recorded cells, voltages.h5 (SONATA membrane
report). PyNN units: ms, mV, nF, nA, uS; weights nA (current), uS (conductance),
mV (delta synapses). Current-based inhibitory weights are negative, as PyNN requires.
"""

import argparse
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
DT = {dt}  # ms
DURATION = {duration}  # ms
SEED = {seed}
THREADS = {threads}
MIN_DELAY = {min_delay}  # ms, the smallest delay in the model
MAX_DELAY = {max_delay}  # ms, the largest delay the model can have
NEST_ONLY = {nest_only}  # reasons this model cannot run on NEURON
ON_NEST = False
FAST_NEST = False  # NEST rules through PyNN's native path (off with --standard-connectors)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", choices=["nest", "neuron"], default="nest")
    parser.add_argument("--output", default="spikes.h5", help="SONATA spike report to write")
    parser.add_argument("--voltages", default="voltages.h5", help="membrane report (if V_m is recorded)")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per process (NEST)")
    parser.add_argument("--duration", type=float, default=DURATION, help="simulated time in ms")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of NEST's and numpy's generators")
    parser.add_argument("--standard-connectors", action="store_true",
                        help="on NEST, use PyNN's standard connectors (slow) instead of NEST's rules")
    return parser.parse_args()


def import_simulator(name):
    """pyNN.nest or pyNN.neuron, without their import-time noise."""
    global ON_NEST, nest
    if name == "nest":
        os.environ.setdefault("PYNEST_QUIET", "1")  # no NEST banner
        # pyNN.nest tries to compile an optional extension (a stochastic Tsodyks-Markram synapse)
        # and warns when it cannot: nothing this model uses is lost
        warnings.filterwarnings("ignore", message=".*nest-config.*")
        warnings.filterwarnings("ignore", message=".*[Bb]ackward compatibility.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import pyNN.nest as sim
        import nest
        ON_NEST = True
        # PyNN tries to set the synaptic currents' initial values, which NEST keeps to itself, and logs it
        logging.getLogger("PyNN").setLevel(logging.ERROR)
        if not hasattr(sim.IF_curr_delta, "variable_map"):
            # PyNN 0.13 leaves out IF_curr_delta's map of 'v' to NEST's V_m: recording v fails without it
            sim.IF_curr_delta.variable_map = {{"v": "V_m"}}
            sim.IF_curr_delta.scale_factors = {{"v": 1}}
    else:
        if NEST_ONLY:
            sys.exit("error: this model cannot run on PyNN's NEURON backend:\\n  " + "\\n  ".join(NEST_ONLY))
        import pyNN.neuron as sim
    return sim


class NESTRule:
    """A PyNN connector that hands a NEST rule dictionary to nest.Connect (PyNN's native path).

    Weights and delays are in NEST's units (pA / nS / mV, ms) and signs (inhibition negative)."""

    def __init__(self, conn_spec, weight, delay):
        self.conn_spec, self.weight, self.delay = conn_spec, weight, delay

    def connect(self, projection):
        # what PyNN's Projection._connect does, without its GetConnections over every labelled
        # connection made so far (quadratic in the number of projections)
        syn_spec = {{"synapse_model": projection.nest_synapse_model, "synapse_label": projection.nest_synapse_label,
                    "weight": self.weight(), "delay": self.delay()}}
        nest.Connect(projection.pre.node_collection, projection.post.node_collection, dict(self.conn_spec), syn_spec)
        projection._simulator.state.stale_connection_cache = True
        # where PyNN looks for this projection's connections: the source ids (a contiguous range;
        # NodeCollection.tolist() would ask NEST for every node's status)
        pre = projection.pre.node_collection
        projection._sources.update(range(pre[0].global_id, pre[-1].global_id + 1))


def _register_connector(sim):
    """Make NESTRule a pyNN Connector subclass (Projection checks the type)."""
    global NESTRule
    from pyNN.connectors import Connector

    if not issubclass(NESTRule, Connector):
        NESTRule = type("NESTRule", (NESTRule, Connector), {{}})


def read_edges(filename, edge_population):
    with h5py.File(HERE / filename, "r") as f:
        group = f["edges"][edge_population]
        return (group["source_node_id"][()], group["target_node_id"][()],
                group["0"]["syn_weight"][()], np.maximum(group["0"]["delay"][()], DT))


class NESTEdges:
    """Explicit edges connected in one nest.Connect call (one_to_one over arrays)."""

    def __init__(self, filename, edge_population, sign):
        self.filename, self.edge_population, self.sign = filename, edge_population, sign

    def connect(self, projection):
        import nest

        pre, post, weight, delay = read_edges(self.filename, self.edge_population)
        if not len(pre):
            return
        sources = np.asarray(projection.pre.node_collection.tolist())[pre]
        targets = np.asarray(projection.post.node_collection.tolist())[post]
        nest.Connect(sources, targets, "one_to_one",
                     {{"synapse_model": projection.nest_synapse_model, "synapse_label": projection.nest_synapse_label,
                      "weight": self.sign * weight, "delay": delay}})
        projection._simulator.state.stale_connection_cache = True
        projection._sources.update(int(s) for s in np.unique(sources))


def explicit_connector(sim, filename, edge_population, pynn_factor, nest_sign):
    """Explicit edges: one nest.Connect on NEST, a FromListConnector (PyNN units) on NEURON."""
    if ON_NEST:
        from pyNN.connectors import Connector

        cls = type("NESTEdges", (NESTEdges, Connector), {{}})
        return cls(filename, edge_population, nest_sign)
    pre, post, weight, delay = read_edges(filename, edge_population)
    table = np.column_stack([pre, post, weight * pynn_factor, delay])
    return sim.FromListConnector(table, column_names=["weight", "delay"])


def poisson_input(sim, target, rate, window, nest_window, weight, delay, receptor, nest_synapse, label):
    """Independent Poisson trains, one per target cell."""
    if ON_NEST:  # one poisson_generator draws an independent train for each target
        import nest

        generator = nest.Create("poisson_generator", params={{"rate": rate, **nest_window}})
        nest.Connect(generator, target.node_collection, "all_to_all", {{"synapse_model": "static_synapse", **nest_synapse}})
        return
    sources = sim.Population(target.size, sim.SpikeSourcePoisson(rate=rate, **window), label=label)
    sim.Projection(sources, target, sim.OneToOneConnector(), sim.StaticSynapse(weight=weight, delay=delay),
                   receptor_type=receptor, label=label)


def spike_train_input(sim, target, filename, spike_population, weight, delay, receptor, nest_synapse, label):
    """One spike source per target cell, from a SONATA spike file (node_ids = target index)."""
    with h5py.File(HERE / filename, "r") as f:
        ids = f["spikes"][spike_population]["node_ids"][()]
        times = f["spikes"][spike_population]["timestamps"][()]
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    bounds = np.searchsorted(ids, np.arange(target.size + 1))
    trains = [times[bounds[i]:bounds[i + 1]] for i in range(target.size)]
    if ON_NEST:  # spike generators straight into the cells, as the NEST export does
        import nest

        generators = nest.Create("spike_generator", target.size, params=[{{"spike_times": t.tolist()}} for t in trains])
        nest.Connect(generators, target.node_collection, "one_to_one", {{"synapse_model": "static_synapse", **nest_synapse}})
        return
    # NEURON's VecStim stops at a repeated time: the k-th spike of a cell at one time goes to layer k
    first_of_group = np.r_[True, (ids[1:] != ids[:-1]) | (times[1:] != times[:-1])]
    group_start = np.maximum.accumulate(np.where(first_of_group, np.arange(len(ids)), 0))
    layer = np.arange(len(ids)) - group_start
    for k in range(int(layer.max()) + 1 if len(ids) else 0):
        in_layer = layer == k
        bounds = np.searchsorted(ids[in_layer], np.arange(target.size + 1))
        layer_times = times[in_layer]
        trains = [sim.Sequence(layer_times[bounds[i]:bounds[i + 1]]) for i in range(target.size)]
        sources = sim.Population(target.size, sim.SpikeSourceArray(spike_times=trains), label=f"{{label}}_{{k}}")
        sim.Projection(sources, target, sim.OneToOneConnector(), sim.StaticSynapse(weight=weight, delay=delay),
                       receptor_type=receptor, label=f"{{label}}_{{k}}")
'''

SETUP = '''    global FAST_NEST
    FAST_NEST = ON_NEST and not getattr(args, "standard_connectors", False)
    extra = {"threads": args.threads, "rng_seed": args.seed, "spike_precision": "on_grid"} if ON_NEST else {}
    sim.setup(timestep=DT, min_delay=MIN_DELAY, max_delay=MAX_DELAY, **extra)
    _register_connector(sim)
    rng = sim.NumpyRNG(seed=args.seed)  # PyNN-side draws (NEURON connectors, initial values)
'''

RECORDING = '''RECORDED = {spikes}


def record(populations):
    """Spikes of every recorded population, V_m of chosen cells."""
    for name in RECORDED:
        populations[name].record("spikes")
    voltages = {v}
    for name, ids in voltages.items():
        populations[name][ids].record("v", sampling_interval=DT)
    return voltages

'''

FOOTER = '''
def simulate(sim, duration):
    """Run in chunks, printing `progress: DONE/TOTAL ms` on rank 0."""
    steps = int(round(duration / DT))
    chunk = max(1, steps // 20)
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        sim.run(n * DT)
        done += n
        if sim.rank() == 0:
            print(f"progress: {done * DT:.1f}/{duration:.1f} ms", flush=True)


def write_spike_report(path, spikes):
    """SONATA spikes: /spikes/<population>/timestamps (ms), node_ids; sorted by time."""
    tmp = Path(str(path) + ".partial")
    with h5py.File(tmp, "w") as f:
        root = f.create_group("spikes")
        root.attrs["magic"] = np.uint32(0x0A7A)
        for name, (ids, times) in spikes.items():
            order = np.lexsort((ids, times))
            group = root.create_group(name)
            group.attrs.create("sorting", 2, dtype=h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1"))
            group.create_dataset("timestamps", data=np.asarray(times, dtype=np.float64)[order]).attrs["units"] = "ms"
            group.create_dataset("node_ids", data=np.asarray(ids, dtype=np.uint64)[order])
    os.replace(tmp, path)


def write_voltage_report(path, voltages):
    """SONATA membrane report: /report/<population>/data (time x cell), mapping/node_ids, mapping/time."""
    tmp = Path(str(path) + ".partial")
    with h5py.File(tmp, "w") as f:
        for name, (ids, times, data) in voltages.items():
            group = f.create_group(f"report/{name}")
            group.create_dataset("data", data=data).attrs["units"] = "mV"
            group.create_dataset("mapping/node_ids", data=np.asarray(ids, dtype=np.uint64))
            group.create_dataset("mapping/element_ids", data=np.zeros(len(ids), dtype=np.uint32))
            group.create_dataset("mapping/index_pointers", data=np.arange(len(ids) + 1, dtype=np.uint64))
            step = times[1] - times[0] if len(times) > 1 else DT
            group["mapping"].create_dataset("time", data=np.array([times[0], times[-1] + step / 2, step]))
            group["mapping/time"].attrs["units"] = "ms"
    os.replace(tmp, path)


def collect_spikes(population, duration, rank):
    """(node_ids, times) of a population, gathered on rank 0 (None elsewhere), up to `duration`."""
    segment = population.get_data("spikes", gather=True).segments[0]  # collective: every rank calls it
    if rank != 0:
        return None
    ids, times = [], []
    for train in segment.spiketrains:
        t = np.asarray(train.rescale("ms").magnitude, dtype=float)
        t = t[t <= duration + 1e-9]
        ids.append(np.full(len(t), int(train.annotations["source_index"])))
        times.append(t)
    if not ids:
        return np.array([], dtype=int), np.array([])
    return np.concatenate(ids), np.concatenate(times)


def collect_voltages(population, ids, duration, rank):
    """(ids, times, data[time, cell]) of recorded cells, on rank 0 (None elsewhere)."""
    segment = population.get_data("v", gather=True).segments[0]  # collective: every rank calls it
    if rank != 0:
        return None
    signal = segment.analogsignals[0]
    times = np.asarray(signal.times.rescale("ms").magnitude, dtype=float)
    keep = (times > 0) & (times <= duration + 1e-9)
    channel_ids = list(signal.array_annotations.get("channel_index", ids))
    order = [channel_ids.index(i) for i in ids]
    return ids, times[keep], np.asarray(signal.magnitude)[keep][:, order]


def main():
    args = parse_args()
    sim = import_simulator(args.simulator)
    t0 = time.perf_counter()
    populations = build(sim, args)
    voltages = record(populations)
    t1 = time.perf_counter()
    rank = sim.rank()
    if rank == 0:
        print(f"built in {t1 - t0:.2f} s", flush=True)
    simulate(sim, args.duration)
    t2 = time.perf_counter()
    if rank == 0:
        print(f"simulated in {t2 - t1:.2f} s", flush=True)
    spikes = {name: collect_spikes(pop, args.duration, rank) for name, pop in populations.items()
              if name in RECORDED}
    v_data = {name: collect_voltages(populations[name], ids, args.duration, rank) for name, ids in voltages.items()}
    if rank == 0:
        write_spike_report(args.output, spikes)
        if v_data:
            write_voltage_report(args.voltages, v_data)
        print(f"wrote {args.output} ({sum(len(t) for _, t in spikes.values())} spikes)", flush=True)
    sim.end()


if __name__ == "__main__":
    main()
'''
