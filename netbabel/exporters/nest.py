"""Export to a standalone NEST 3.10 script: `model_nest.py` (+ `model_nest.json` for long value lists).

`python model_nest.py [--output spikes.h5] [--threads N]` or `mpirun -np N python model_nest.py`
builds the network with NEST's own routines, simulates it and writes a SONATA spike report
(and `voltages.h5`, a SONATA membrane report, when the description records V_m).

Modes: `native` writes the rules as NEST rule dictionaries and `nest.random` parameters;
`frozen` first instantiates the model (netbabel.instantiate) and loads its explicit edges
(`edges.h5`) and input spike trains (`inputs.h5`) as they are.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from netbabel import __version__
from netbabel.converters import nest as conv
from netbabel.description.model import Description
from netbabel.errors import UnsupportedFeature
from netbabel.spikereport import embed_voltage_writer

SCRIPT = "model_nest.py"
DATA = "model_nest.json"
grid_step = conv.grid_step  # off-grid spike-source times to the end of their step (NEST's rule, every export)


def write(description: Description, out: Path, options: argparse.Namespace) -> None:
    """Write model_nest.py (and its data files) into the directory `out`."""
    out.mkdir(parents=True, exist_ok=True)
    mode = getattr(options, "mode", "native") or "native"
    if mode == "frozen":
        description = freeze(description, out)
    ScriptWriter(description, out, mode).write()


def freeze(description: Description, out: Path) -> Description:
    """Instantiate into `out` (edges.h5, inputs.h5, model.json) and return the explicit description."""
    from netbabel.description import io
    from netbabel.instantiate import instantiate_to_directory

    instantiate_to_directory(description, out)
    return io.load(out / "model.json")


class ScriptWriter:
    """Builds the text of model_nest.py from a description."""

    def __init__(self, d: Description, out: Path, mode: str):
        self.d, self.out, self.mode = d, out, mode
        self.dt = d.value(d.simulation.dt)
        self.data: dict[str, Any] = {}
        self.files: set[str] = set()

    # -- whole script ------------------------------------------------------
    def write(self) -> None:
        body = [*self.populations(), *self.projections(), *self.inputs()]
        text = HEADER.format(name=self.d.name, version=__version__, mode=self.mode,
                             dt=conv.py(self.dt), duration=conv.py(self.d.value(self.d.simulation.duration)),
                             seed=int(self.d.simulation.seed), threads=int(self.d.simulation.threads),
                             script=SCRIPT)
        text += "\n\ndef build(args):\n    \"\"\"Create the network; returns {population: nodes}.\"\"\"\n"
        text += KERNEL
        text += "".join("    " + line + "\n" if line else "\n" for line in body)
        text += "    return nodes\n\n"
        text += self.recording()
        text += FOOTER
        (self.out / SCRIPT).write_text(embed_voltage_writer(text))
        if self.data:
            (self.out / DATA).write_text(json.dumps(self.data, indent=1))

    # -- parts -------------------------------------------------------------
    def populations(self) -> list[str]:
        d = self.d
        lines = ["nodes = {}"]
        if self.data_needed():
            lines.insert(0, f"data = json.loads((HERE / {DATA!r}).read_text())")
        for name, pop in d.populations.items():
            model = conv.check_point_model(d, name, "NEST")
            n = d.size(name)
            lines.append("")
            lines.append(f"# population {name}: {n} x {model} (cell type {pop.cell_type})")
            if model == "poisson_generator":
                lines += self.poisson_source(name, n)
            elif model == "spike_generator":
                lines += self.spike_source(name, n)
            else:
                params = conv.neuron_parameters(d, name)
                lines.append(f"nodes[{name!r}] = nest.Create({model!r}, {n}, params={conv.py(params)})")
                lines += self.initial_potential(name, model)
        return lines

    def data_needed(self) -> bool:
        return any(conv.cell_model(self.d, p) == "spike_generator" for p in self.d.populations) \
            or self.mode == "frozen" and any(self._frozen_v(p) is not None for p in self.d.populations)

    def poisson_source(self, name: str, n: int) -> list[str]:
        params = conv.neuron_parameters(self.d, name)
        return [f"generator = nest.Create('poisson_generator', params={conv.py(params)})",
                f"nodes[{name!r}] = nest.Create('parrot_neuron', {n})",
                "nest.Connect(generator, nodes[%r], 'all_to_all', {'delay': DT})  # one independent train per parrot" % name]

    def spike_source(self, name: str, n: int) -> list[str]:
        """Parrot-relayed spike_generators; off-grid times go to the end of their step (`grid_step`)."""
        trains = conv.spike_times_for_source(self.d, name)
        shifted = []
        for i, train in enumerate(trains):
            steps = sorted(grid_step(t, self.dt) for t in train)
            if steps and steps[0] < 2:
                raise UnsupportedFeature(f"population {name!r} cell {i}: spike at {train[0]} ms; a spike source "
                                         f"relayed by parrot neurons can emit from 2 dt = {2 * self.dt} ms on")
            shifted.append([round((s - 1) * self.dt, 10) for s in steps])
        self.data[f"spike_times/{name}"] = shifted
        return ["# the parrots re-emit each spike one step (DT) after the generator: times are shifted by -DT",
                f"generators = nest.Create('spike_generator', {n}, "
                f"params=[{{'spike_times': t}} for t in data['spike_times/{name}']])",
                f"nodes[{name!r}] = nest.Create('parrot_neuron', {n})",
                "nest.Connect(generators, nodes[%r], 'one_to_one', {'delay': DT})" % name]

    def initial_potential(self, name: str, model: str) -> list[str]:
        if self.mode == "frozen":
            v = self._frozen_v(name)
            if v is not None:
                self.data[f"v_init/{name}"] = [float(x) for x in v]
                return [f"nodes[{name!r}].V_m = data['v_init/{name}']"]
        v = conv.initial_v(self.d, name)
        if v is None:
            return []
        return [f"nodes[{name!r}].V_m = {conv.nest_source(v)}"]

    def _frozen_v(self, name: str):
        if self.d.populations[name].v_init is None or conv.is_source(self.d, name):
            return None
        from netbabel.instantiate import initial_potentials

        return initial_potentials(self.d, name)

    def projections(self) -> list[str]:
        lines: list[str] = []
        for i, p in enumerate(self.d.projections):
            name = self.d.projection_name(i)
            conv.check_point_model(self.d, p.target, "NEST")
            what = f"projection {name!r}"
            sign = conv.weight_sign(self.d, p.target, p.synapse_type, p.weight, what)
            lines.append("")
            lines.append(f"# projection {name}: {p.source} -> {p.target}, {p.rule.type}")
            if p.rule.type == "explicit":
                lines.append(f"connect_explicit(nodes[{p.source!r}], nodes[{p.target!r}], "
                             f"{self.copy_file(p.rule.file)!r}, {p.rule.population or name!r}, sign={conv.py(sign)})")
                continue
            weight = conv.nest_source(conv.projection_weight(self.d, i))
            delay = conv.nest_source(conv.delay(self.d, p.delay, what), minimum=self.dt)
            rule = conv.connection_rule(self.d, i)
            lines.append(f"nest.Connect(nodes[{p.source!r}], nodes[{p.target!r}], {conv.py(rule)},")
            lines.append(f"             {{'synapse_model': 'static_synapse', 'weight': {weight}, 'delay': {delay}}})")
        return lines

    def copy_file(self, relative: str) -> str:
        """Copy a data file the description refers to next to the script; its new name."""
        source = self.d.resolve_path(relative)
        target = self.out / Path(relative).name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        return target.name

    def inputs(self) -> list[str]:
        lines: list[str] = []
        for i, inp in enumerate(self.d.inputs):
            conv.check_point_model(self.d, inp.target, "NEST")
            conv.check_input(self.d, i)
            name = self.d.input_name(i)
            what = f"input {name!r}"
            target = f"nodes[{inp.target!r}]"
            lines.append("")
            lines.append(f"# input {name}: {inp.type} onto {inp.target}")
            window = {}
            if inp.start is not None:
                window["start"] = self.d.value(inp.start)
            if inp.stop is not None:
                window["stop"] = self.d.value(inp.stop)
            if inp.type == "poisson":
                k = int(round(self.d.value(inp.indegree if inp.indegree is not None else 1)))
                rate = self.d.value(inp.rate)
                weight_v = conv.input_weight(self.d, i)
                delay_v = conv.delay(self.d, inp.delay, what)
                syn = (f"{{'synapse_model': 'static_synapse', 'weight': {conv.nest_source(weight_v)}, "
                       f"'delay': {conv.nest_source(delay_v, minimum=self.dt)}}}")
                random_syn = isinstance(weight_v, conv.RandomValue) or isinstance(delay_v, conv.RandomValue)
                if random_syn and k > 1:
                    lines.append(f"# {k} trains of {rate} Hz per cell, each with its own random weight/delay")
                    lines.append(f"generator = nest.Create('poisson_generator', {k}, params={conv.py({'rate': rate, **window})})")
                else:
                    lines.append(f"# {k} independent trains of {rate} Hz per cell = one train of {k} x {rate} Hz")
                    lines.append(f"generator = nest.Create('poisson_generator', params={conv.py({'rate': k * rate, **window})})")
                lines.append(f"nest.Connect(generator, {target}, 'all_to_all', {syn})")
            elif inp.type == "dc":
                params = {"amplitude": self.d.value(inp.amplitude)}
                params.update({k: conv.generator_time(v, self.dt, 0.0) for k, v in window.items()})
                lines.append("# generator times one step early, delay DT: the current is in the neuron from start on")
                lines.append(f"nest.Connect(nest.Create('dc_generator', params={conv.py(params)}), {target}, "
                             "syn_spec={'delay': DT})")
            elif inp.type == "step_current":
                params = {"amplitude_times": [conv.generator_time(self.d.value(t), self.dt, self.dt)
                                              for t in inp.times or []],
                          "amplitude_values": [self.d.value(a) for a in inp.amplitudes or []]}
                lines.append("# generator times one step early, delay DT: each amplitude is in the neuron from its time on")
                lines.append(f"nest.Connect(nest.Create('step_current_generator', params={conv.py(params)}), {target}, "
                             "syn_spec={'delay': DT})")
            elif inp.type == "spike_train":
                weight = conv.input_weight(self.d, i)
                delay_v = conv.delay(self.d, inp.delay, what)
                if isinstance(weight, conv.RandomValue) or isinstance(delay_v, conv.RandomValue):
                    raise UnsupportedFeature(f"{what}: a spike_train input needs a fixed weight and delay")
                lines.append(f"connect_spike_trains({target}, {self.copy_file(inp.file)!r}, "
                             f"{inp.population or name!r}, weight={conv.py(weight)}, delay={conv.py(max(delay_v, self.dt))})")
            else:
                raise UnsupportedFeature(f"{what}: input type {inp.type!r} is not supported by NEST")
        return lines

    def recording(self) -> str:
        pops, v = conv.recorded(self.d)
        return RECORDING.format(spikes=conv.py(pops), v=conv.py(v))


HEADER = '''#!/usr/bin/env python
"""{name}: exported by netbabel {version} for NEST 3.10 ({mode} mode).

Run:  python {script} [--output spikes.h5] [--threads N] [--duration MS] [--seed S]
      mpirun -np N python {script}          (needs NEST built with MPI and mpi4py)
Writes a SONATA spike report (/spikes/<population>/timestamps in ms, node_ids =
index within the population) and, for recorded cells, a SONATA membrane report
(voltages.h5: /report/<population>/data, mapping/node_ids, mapping/time).
Units are NEST's: ms, mV, pA, pF, nS, Hz.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import h5py
import numpy as np

import nest

HERE = Path(__file__).resolve().parent
DT = {dt}  # ms
DURATION = {duration}  # ms
SEED = {seed}
THREADS = {threads}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="spikes.h5", help="SONATA spike report to write")
    parser.add_argument("--voltages", default="voltages.h5", help="membrane report (if V_m is recorded)")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per MPI process")
    parser.add_argument("--duration", type=float, default=DURATION, help="simulated time in ms")
    parser.add_argument("--seed", type=int, default=SEED, help="NEST rng_seed")
    return parser.parse_args()


def connect_explicit(sources, targets, filename, edge_population, sign=1.0):
    """Connect the edges of a SONATA edge file one by one (weights times `sign`: NEST's inhibition)."""
    with h5py.File(HERE / filename, "r") as f:
        group = f["edges"][edge_population]
        pre = group["source_node_id"][()]
        post = group["target_node_id"][()]
        weight = sign * group["0"]["syn_weight"][()]
        delay = np.maximum(group["0"]["delay"][()], DT)
    if len(pre):
        nest.Connect(np.asarray(sources.tolist())[pre], np.asarray(targets.tolist())[post], "one_to_one",
                     {{"synapse_model": "static_synapse", "weight": weight, "delay": delay}})


def connect_spike_trains(targets, filename, spike_population, weight, delay):
    """One spike_generator per target cell, loaded from a SONATA spike file (node_ids = target index)."""
    with h5py.File(HERE / filename, "r") as f:
        group = f["spikes"][spike_population]
        ids = group["node_ids"][()]
        times = group["timestamps"][()]
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    bounds = np.searchsorted(ids, np.arange(len(targets) + 1))
    # off-grid times go to the end of their step (NEST's rule, as in the PyNN and NetPyNE exports)
    trains = [{{"spike_times": times[bounds[i]:bounds[i + 1]].tolist(), "allow_offgrid_times": True}}
              for i in range(len(targets))]
    generators = nest.Create("spike_generator", len(targets), params=trains)
    nest.Connect(generators, targets, "one_to_one",
                 {{"synapse_model": "static_synapse", "weight": weight, "delay": delay}})
'''

KERNEL = '''    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.WARNING
    # threads first: NEST needs local_num_threads before any node exists
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": args.threads, "rng_seed": args.seed})
'''

RECORDING = '''def record(nodes):
    """Spike recorders per population and multimeters (V_m every DT) on chosen cells."""
    spike_recorders = {{}}
    for name in {spikes}:
        spike_recorders[name] = nest.Create("spike_recorder")
        nest.Connect(nodes[name], spike_recorders[name])
    multimeters = {{}}
    for name, ids in {v}.items():
        multimeters[name] = (ids, nest.Create("multimeter", params={{"record_from": ["V_m"], "interval": DT}}))
        nest.Connect(multimeters[name][1], nodes[name][ids])
    return spike_recorders, multimeters

'''

FOOTER = '''
def simulate(duration, rank):
    """Simulate in chunks, printing `progress: DONE/TOTAL ms` on rank 0."""
    steps = int(round(duration / DT))
    chunk = max(1, steps // 20)
    nest.Prepare()
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        nest.Run(n * DT)
        done += n
        if rank == 0:
            print(f"progress: {done * DT:.1f}/{duration:.1f} ms", flush=True)
    nest.Cleanup()


def gather(local):
    """All ranks' lists of arrays, concatenated on rank 0 (None elsewhere)."""
    if nest.NumProcesses() == 1:
        return [np.concatenate(parts) if parts else np.array([]) for parts in zip(*[local])]
    from mpi4py import MPI

    everything = MPI.COMM_WORLD.gather(local, root=0)
    if everything is None:
        return None
    return [np.concatenate(parts) for parts in zip(*everything)]


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


def write_voltage_report(path, voltages, duration):
    """SONATA membrane report: /report/<population>/data (time x cell), mapping/node_ids, mapping/time."""
    tmp = Path(str(path) + ".partial")
    with h5py.File(tmp, "w") as f:
        for name, (ids, senders, times, values) in voltages.items():
            steps = np.rint(times / DT).astype(np.int64) - 1
            n_steps = int(steps.max()) + 1 if len(steps) else 0  # NEST samples at DT, 2 DT, ... (not at 0)
            data = np.full((n_steps, len(ids)), np.nan)
            column = {{gid: i for i, gid in enumerate(ids)}}
            data[steps, [column[s] for s in senders]] = values
            write_voltage_population(f, name, data, ids, DT)
    os.replace(tmp, path)


# <write_voltage_population>


def main():
    args = parse_args()
    t0 = time.perf_counter()
    nodes = build(args)
    spike_recorders, multimeters = record(nodes)
    rank = nest.Rank()
    t1 = time.perf_counter()
    connections = nest.GetKernelStatus("num_connections")  # collective under MPI: every rank asks
    if rank == 0:
        print(f"built in {{t1 - t0:.2f}} s ({{connections}} connections)", flush=True)
    simulate(args.duration, rank)
    t2 = time.perf_counter()
    if rank == 0:
        print(f"simulated in {{t2 - t1:.2f}} s", flush=True)
    spikes = {{}}
    for name, recorder in spike_recorders.items():
        events = recorder.get("events")
        first = nodes[name][0].global_id
        local = [np.asarray(events["senders"], dtype=np.int64) - first, np.asarray(events["times"], dtype=float)]
        merged = gather(local)
        if merged is not None:
            spikes[name] = (merged[0], merged[1])
    voltages = {{}}
    for name, (ids, multimeter) in multimeters.items():
        events = multimeter.get("events")
        first = nodes[name][0].global_id
        local = [np.asarray(events["senders"], dtype=np.int64) - first, np.asarray(events["times"], dtype=float),
                 np.asarray(events["V_m"], dtype=float)]
        merged = gather(local)
        if merged is not None:
            voltages[name] = (ids, merged[0], merged[1], merged[2])
    if rank == 0:
        write_spike_report(args.output, spikes)
        if voltages:
            write_voltage_report(args.voltages, voltages, args.duration)
        total = sum(len(t) for _, t in spikes.values())
        print(f"wrote {{args.output}} ({{total}} spikes)", flush=True)


if __name__ == "__main__":
    main()
'''.replace("{{", "{").replace("}}", "}")
