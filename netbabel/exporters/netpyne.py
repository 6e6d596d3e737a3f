"""Description -> a NetPyNE 1.1 model folder: netParams.json, simConfig.json, mod/, run.py.

`python run.py` (or `mpirun -np N python run.py`) compiles the .mod files with nrnivmodl on
first use (into build/, guarded by a file lock), loads the two JSON files with NetPyNE, runs
the simulation and writes a SONATA spike report (population names of the description,
node ids = index within the population) with h5py. It needs neuron, netpyne, h5py, numpy,
not netbabel.

Point neurons are netbabel's NMODL artificial cells (NEST's update order on the dt grid,
see netbabel/nmodl and converters/netpyne.py). Modes:
- native: NetPyNE's own rules (all_to_all -> fullConn, pairwise_bernoulli -> probability,
  fixed_indegree -> convergence, fixed_outdegree -> divergence) when weight and delay are
  numbers; other rules and random weights/delays fall back to netbabel's drawn edges
  (connList). Poisson inputs and poisson_generator populations are NetStims.
- frozen: every projection is an explicit connList drawn by netbabel.instantiate, every
  Poisson input a VecStim population replaying netbabel's trains (same edges and spikes as
  the NEST export in frozen mode).
Known NetPyNE 1.1 behaviour handled here: point cells drop self-connections, so frozen
autapses are listed in netbabel_run.json and connected by run.py; NetStims given through
stimSourceParams are ignored by artificial cells, so inputs are populations wired with
connParams; injected currents onto point cells are events on NetCon weight index 1.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from netbabel.converters import netpyne as conv
from netbabel.converters.nest import grid_times
from netbabel.description.model import Description, Distribution
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import embed_voltage_writer

SCRIPT = "run.py"
NATIVE_RULES = {"all_to_all", "pairwise_bernoulli", "fixed_indegree", "fixed_outdegree"}


def write(description: Description, out: Path, options: argparse.Namespace | None = None) -> None:
    """Write the NetPyNE model folder into `out` (a directory)."""
    mode = getattr(options, "mode", "native") or "native"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    builder = Builder(description, mode)
    builder.build()
    _dump(out / "netParams.json", builder.net)
    _dump(out / "simConfig.json", builder.sim_config())
    _dump(out / "netbabel_run.json", builder.run_info)
    mod_out = out / "mod"
    mod_out.mkdir(exist_ok=True)
    for path in builder.mod_files():
        shutil.copyfile(path, mod_out / path.name)
    (out / SCRIPT).write_text(embed_voltage_writer(RUN_SCRIPT))


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


class Builder:
    """Collects netParams (NetPyNE) and run_info (what run.py needs beyond NetPyNE)."""

    def __init__(self, d: Description, mode: str):
        if mode not in ("native", "frozen"):
            raise NetbabelError(f"unknown mode {mode!r} (native or frozen)")
        self.d = d
        self.mode = mode
        self.dt = float(d.value(d.simulation.dt))
        self.duration = float(d.value(d.simulation.duration))
        self.net: dict[str, Any] = {"popParams": {}, "cellParams": {}, "synMechParams": {}, "connParams": {},
                                    "stimSourceParams": {}, "stimTargetParams": {}}
        self.run_info: dict[str, Any] = {"dt": self.dt, "duration": self.duration, "seed": d.simulation.seed,
                                         "spike_offset": conv.SPIKE_OFFSET, "populations": {}, "v_init": {},
                                         "autapses": [], "record_v": {}, "min_cell_delay": None}
        self.extra_mod_dirs: list[Path] = []
        self.sites: dict[str, dict[str, dict]] = {}

    # -- the whole model ---------------------------------------------------------
    def build(self) -> None:
        for name in self.d.populations:
            self.population(name)
        for i in range(len(self.d.projections)):
            self.projection(i)
        for i in range(len(self.d.inputs)):
            self.input(i)
        for rec in self.d.simulation.record.v:
            if conv.population_kind(self.d, rec.population) != "neuron":
                raise UnsupportedFeature(f"recording V_m of {rec.population!r}: only point neurons are recorded")
            self.run_info["record_v"][rec.population] = [int(i) for i in rec.ids]

    def sim_config(self) -> dict[str, Any]:
        seed = int(self.d.simulation.seed)
        temperature = self.d.simulation.temperature
        v_init = self.d.simulation.v_init
        return {
            "duration": self.duration + self.dt,  # the spikes of the last step are emitted dt later
            "dt": self.dt,
            "cvode_active": False,
            "seeds": {"conn": seed, "stim": seed, "loc": seed, "cell": seed},
            "hParams": {"celsius": float(self.d.value(temperature)) if temperature is not None else 6.3,
                        "v_init": float(self.d.value(v_init)) if v_init is not None else -65.0},
            "createNEURONObj": True,
            # NEURON objects only (faster builds) for point cells; NetPyNE's compartmental cells need the
            # Python structures to place their synapses
            "createPyStruct": bool(self.net["cellParams"]),
            "allowSelfConns": True,
            "recordCellsSpikes": -1,
            "recordStim": False,
            "recordTraces": {},
            "savePickle": False,
            "saveJson": False,
            "timing": True,
            "verbose": False,
            "printPopAvgRates": False,
            "gatherOnlySimData": True,
            "analysis": {},
        }

    def mod_files(self) -> list[Path]:
        from netbabel.nmodl import mod_files

        files = {p.name: p for p in mod_files()}
        for folder in self.extra_mod_dirs:
            for p in sorted(folder.glob("*.mod")):
                files.setdefault(p.name, p)
        return [files[k] for k in sorted(files)]

    # -- populations ---------------------------------------------------------------
    def population(self, name: str) -> None:
        d = self.d
        n = d.size(name)
        kind = conv.population_kind(d, name)
        info = {"kind": kind, "size": n, "report": True}
        if kind == "neuron":
            self.net["popParams"][name] = {"cellModel": conv.mechanism(d, name), "numCells": n,
                                           "params": conv.neuron_parameters(d, name)}
            v = self._initial_potentials(name)
            if v is not None:
                self.run_info["v_init"][name] = v
        elif kind == "multicompartment":
            self.multicompartment(name, n)
        elif kind == "poisson":
            self.net["popParams"][name] = self._poisson_pop(name, n)
        else:
            self.net["popParams"][name] = {"cellModel": "VecStim", "numCells": n,
                                           "spkTimes": self._source_trains(name, n)}
        self.run_info["populations"][name] = info

    def _initial_potentials(self, name: str) -> list[float] | None:
        if not isinstance(self.d.populations[name].v_init, Distribution):
            return None
        from netbabel.instantiate import initial_potentials

        values = initial_potentials(self.d, name)
        return None if values is None else [float(x) for x in values]

    def _poisson_pop(self, name: str, n: int) -> dict[str, Any]:
        ct = self.d.cell_types[self.d.populations[name].cell_type]
        get = lambda key, default: float(self.d.value(ct.params.get(key, default)))  # noqa: E731
        rate, origin = get("rate", 0.0), get("origin", 0.0)
        start, stop = origin + get("start", 0.0), origin + get("stop", math.inf)
        return self._poisson_source(n, rate, start, stop)

    def _poisson_source(self, n: int, rate: float, start: float, stop: float) -> dict[str, Any]:
        if math.isfinite(stop):
            return {"cellModel": "VecStim", "numCells": n,
                    "spikePattern": {"type": "poisson", "start": start, "stop": stop, "frequency": rate}}
        return {"cellModel": "NetStim", "numCells": n, "rate": rate, "noise": 1.0, "start": start, "number": 1e9}

    def _source_trains(self, name: str, n: int) -> list[list[float]]:
        ct = self.d.cell_types[self.d.populations[name].cell_type]
        spike_file = ct.params.get("spike_file")
        if spike_file:
            from netbabel.spikereport import read_report

            report = read_report(self.d.resolve_path(spike_file))
            ids, times = report.get(name) or next(iter(report.values()))
            return _trains(ids, times, n, self.dt)
        times = ct.params.get("spike_times", [])
        if times and isinstance(times[0], list):
            if len(times) != n:
                raise UnsupportedFeature(f"population {name!r}: {len(times)} spike trains for {n} cells")
            return [sorted(grid_times([self.d.value(t) for t in train], self.dt).tolist()) for train in times]
        shared = sorted(grid_times([self.d.value(t) for t in times], self.dt).tolist())
        return [list(shared) for _ in range(n)]

    def multicompartment(self, name: str, n: int) -> None:
        try:
            from netbabel.converters import multicompartment as mc
        except ImportError:  # pragma: no cover - the converter ships with netbabel
            raise UnsupportedFeature("multicompartment cells need netbabel.converters.multicompartment") from None
        label = self.d.populations[name].cell_type
        ct = self.d.cell_types[label]
        if label not in self.net["cellParams"]:
            self.net["cellParams"][label] = mc.netpyne_cell_params(ct, self.d)
            prefix = f"{label}__"
            self.net["synMechParams"].update(mc.netpyne_syn_mech_params(ct, self.d, label_prefix=prefix))
            self.sites[label] = mc.netpyne_synapse_sites(ct, label_prefix=prefix)
            for rel in ct.mod_files or []:
                path = self.d.resolve_path(rel)
                self.extra_mod_dirs.append(path if path.is_dir() else path.parent)
        self.net["popParams"][name] = {"cellType": label, "numCells": n}

    # -- connections ---------------------------------------------------------------
    def _from_netbabel_cell(self, population: str) -> bool:
        return conv.population_kind(self.d, population) == "neuron"

    def _target_keys(self, target: str, synapse_type: str | None, what: str) -> dict[str, Any]:
        """synMech/sec/loc for a multicompartment target; nothing for point cells."""
        if conv.population_kind(self.d, target) != "multicompartment":
            return {}
        label = self.d.populations[target].cell_type
        sites = self.sites[label]
        site = self.d.synapse_types[synapse_type].site if synapse_type else None
        if site is None:
            if len(sites) != 1:
                raise UnsupportedFeature(f"{what}: name the synapse site of {label!r} in the synapse type "
                                         f"(sites: {', '.join(sites) or 'none'})")
            site = next(iter(sites))
        if site not in sites:
            raise UnsupportedFeature(f"{what}: cell type {label!r} has no synapse site {site!r}")
        return dict(sites[site])

    def projection(self, index: int) -> None:
        d = self.d
        p = d.projections[index]
        name = d.projection_name(index)
        what = f"projection {name!r}"
        plain = None if isinstance(p.weight, Distribution) else float(d.value(p.weight))
        factor = conv.weight_factor(d, p.target, p.synapse_type, plain, what)
        rule: dict[str, Any] = {"preConds": {"pop": p.source}, "postConds": {"pop": p.target},
                                **self._target_keys(p.target, p.synapse_type, what)}
        from_cell = self._from_netbabel_cell(p.source)
        native = self._native_rule(index)
        if native is not None:
            rule.update(native)
            rule["weight"] = factor * float(d.value(p.weight))
            rule["delay"] = conv.netcon_delay(float(d.value(p.delay)), self.dt, from_cell)
            self._note_delay([rule["delay"]], from_cell)
            self.net["connParams"][name] = rule
            return
        sources, targets, weights, delays = self._edges(index)
        weights = factor * weights
        if p.source == p.target and conv.population_kind(d, p.target) == "neuron":
            self_conn = sources == targets
            if self_conn.any():
                self.run_info["autapses"].append({
                    "population": p.source, "cells": sources[self_conn].tolist(),
                    "weights": weights[self_conn].tolist(),
                    "delays": [conv.netcon_delay(x, self.dt, from_cell) for x in delays[self_conn]]})
                keep = ~self_conn
                sources, targets, weights, delays = sources[keep], targets[keep], weights[keep], delays[keep]
        rule["connList"] = np.stack([sources, targets], axis=1).tolist()
        rule["weight"] = weights.tolist()
        rule["delay"] = [conv.netcon_delay(x, self.dt, from_cell) for x in delays]
        self._note_delay(rule["delay"], from_cell)
        if self.run_info["autapses"] and self.run_info["autapses"][-1]["population"] == p.source:
            self._note_delay(self.run_info["autapses"][-1]["delays"], from_cell)
        self.net["connParams"][name] = rule

    def _note_delay(self, delays: list[float], from_cell: bool) -> None:
        """Track the shortest NetCon delay from netbabel cells (MPI needs it to be at least dt)."""
        if from_cell and len(delays):
            low = float(min(delays))
            current = self.run_info["min_cell_delay"]
            self.run_info["min_cell_delay"] = low if current is None else min(current, low)

    def _native_rule(self, index: int) -> dict[str, Any] | None:
        """NetPyNE's rule keys for a projection, or None when it must be drawn by netbabel."""
        d = self.d
        p = d.projections[index]
        if self.mode == "frozen" or p.rule.type not in NATIVE_RULES:
            return None
        if isinstance(p.weight, Distribution) or isinstance(p.delay, Distribution):
            return None
        rule = p.rule
        if rule.type == "all_to_all":
            return {"connFunc": "fullConn"}
        if rule.type == "fixed_indegree":
            return {"convergence": int(round(d.value(rule.indegree)))}
        if rule.type == "fixed_outdegree":
            return {"divergence": int(round(d.value(rule.outdegree)))}
        try:
            return {"probability": float(d.value(rule.p))}
        except Exception:  # noqa: BLE001 - a distance-dependent expression: drawn by netbabel
            return None

    def _edges(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All edges of a projection (source, target, weight, delay), drawn by netbabel or read from a file."""
        p = self.d.projections[index]
        if p.rule.type == "explicit":
            import h5py

            path = self.d.resolve_path(p.rule.file)
            with h5py.File(path, "r") as f:
                g = f["edges"][p.rule.population or self.d.projection_name(index)]
                src = g["source_node_id"][()].astype(np.int64)
                tgt = g["target_node_id"][()].astype(np.int64)
                group = g["0"] if "0" in g else {}
                w = group["syn_weight"][()] if "syn_weight" in group else np.full(src.size, float(self.d.value(p.weight)))
                dl = group["delay"][()] if "delay" in group else np.full(src.size, float(self.d.value(p.delay)))
            return src, tgt, np.asarray(w, dtype=float), np.asarray(dl, dtype=float)
        from netbabel.instantiate import iter_edges

        parts = [(b.sources, b.targets, b.weights, b.delays) for b in iter_edges(self.d, index)]
        if not parts:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty.astype(np.int64), empty, empty
        return tuple(np.concatenate(x) for x in zip(*parts))  # type: ignore[return-value]

    # -- inputs ----------------------------------------------------------------------
    def _input_pop_name(self, base: str) -> str:
        name = base
        while name in self.net["popParams"]:
            name += "_"
        return name

    def input(self, index: int) -> None:
        d = self.d
        inp = d.inputs[index]
        name = d.input_name(index)
        what = f"input {name!r}"
        n = d.size(inp.target)
        kind = conv.population_kind(d, inp.target)
        if kind in ("poisson", "spikes"):
            raise UnsupportedFeature(f"{what}: the target {inp.target!r} is a spike source")
        if inp.type in ("dc", "step_current"):
            return self.current_input(index, name, n, kind)
        if isinstance(inp.weight, Distribution) or isinstance(inp.delay, Distribution):
            raise UnsupportedFeature(f"{what}: a random weight or delay on a {inp.type} input is not exported "
                                     "to NetPyNE (give numbers)")
        weight = float(d.value(inp.weight if inp.weight is not None else 0.0))
        delay = conv.netcon_delay(float(d.value(inp.delay if inp.delay is not None else self.dt)), self.dt, False)
        weight *= conv.weight_factor(d, inp.target, inp.synapse_type, weight, what)
        pop = self._input_pop_name(name)
        if inp.type == "poisson" and self.mode == "native":
            k = int(round(d.value(inp.indegree if inp.indegree is not None else 1)))
            start = float(d.value(inp.start)) if inp.start is not None else 0.0
            stop = float(d.value(inp.stop)) if inp.stop is not None else math.inf
            self.net["popParams"][pop] = self._poisson_source(n, k * float(d.value(inp.rate)), start, stop)
        elif inp.type == "poisson":
            from netbabel.instantiate import iter_spikes

            parts = list(iter_spikes(d, index))
            ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
            times = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
            self.net["popParams"][pop] = {"cellModel": "VecStim", "numCells": n,
                                          "spkTimes": _trains(ids, times, n, self.dt)}
        elif inp.type == "spike_train":
            from netbabel.spikereport import read_report

            report = read_report(d.resolve_path(inp.file))
            key = inp.population or next(iter(report), None)
            if key not in report:
                raise NetbabelError(f"no spike population {key!r} in the file", inp.file, f"/inputs/{index}/population")
            ids, times = report[key]
            self.net["popParams"][pop] = {"cellModel": "VecStim", "numCells": n,
                                          "spkTimes": _trains(ids, times, n, self.dt)}
        else:
            raise UnsupportedFeature(f"{what}: input type {inp.type!r} is not supported by the NetPyNE export")
        self.run_info["populations"][pop] = {"kind": "input", "size": n, "report": False}
        self.net["connParams"][name] = {"preConds": {"pop": pop}, "postConds": {"pop": inp.target},
                                        "connList": [[i, i] for i in range(n)], "weight": weight, "delay": delay,
                                        **self._target_keys(inp.target, inp.synapse_type, what)}

    def current_input(self, index: int, name: str, n: int, kind: str) -> None:
        d = self.d
        inp = d.inputs[index]
        changes = conv.current_changes(d, index)
        if kind == "multicompartment":
            section = inp.section
            if section is None:
                det = d.cell_types[d.populations[inp.target].cell_type].spike_detection
                section = det.section if det else "soma"
            level = 0.0
            for j, (t, delta) in enumerate(changes):
                level += delta
                stop = changes[j + 1][0] if j + 1 < len(changes) else self.duration + self.dt
                if level == 0.0 or stop <= t:
                    continue
                label = f"{name}#{j}"
                self.net["stimSourceParams"][label] = {"type": "IClamp", "del": t, "dur": stop - t,
                                                       "amp": conv.iclamp_nA(level)}
                self.net["stimTargetParams"][label] = {"source": label, "conds": {"pop": inp.target},
                                                       "sec": section, "loc": float(inp.x if inp.x is not None else 0.5)}
            return
        for j, (t, delta) in enumerate(changes):
            pop = self._input_pop_name(f"{name}#{j}")
            t = conv.device_event_time(_on_grid(t, self.dt), self.dt)
            self.net["popParams"][pop] = {"cellModel": "VecStim", "numCells": 1, "spkTimes": [t]}
            self.run_info["populations"][pop] = {"kind": "input", "size": 1, "report": False}
            self.net["connParams"][pop] = {"preConds": {"pop": pop}, "postConds": {"pop": inp.target},
                                           "connFunc": "fullConn", "weight": float(delta), "weightIndex": 1,
                                           "delay": round(conv.DEVICE_DELAY_STEPS * self.dt, 12)}


def _on_grid(t: float, dt: float) -> float:
    return round(round(t / dt) * dt, 10)


def _trains(ids: np.ndarray, times: np.ndarray, n: int, dt: float) -> list[list[float]]:
    """Per-cell sorted spike times (ms) from SONATA-style (node_ids, timestamps), off-grid times at the end
    of their step (`grid_times`, NEST's rule)."""
    ids = np.asarray(ids, dtype=np.int64)
    times = grid_times(times, dt)
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    bounds = np.searchsorted(ids, np.arange(n + 1))
    return [times[bounds[i]:bounds[i + 1]].tolist() for i in range(n)]


RUN_SCRIPT = r'''#!/usr/bin/env python
"""Run this NetPyNE model (written by netbabel) and write a SONATA spike report.

    python run.py [--output spikes.h5] [--mechanisms DIR]
    mpirun -np 4 python run.py

Needs neuron, netpyne, numpy and h5py. The .mod files in mod/ are compiled with nrnivmodl
on first use (into build/); --mechanisms names a folder where nrnivmodl already ran.
Point neurons are netbabel's NMODL cells: they emit the spike of grid time T at
T + spike_offset * dt, so reported times are rounded back down to the dt grid.
"""

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def find_library(directory):
    for pattern in ("*/libnrnmech.so", "*/.libs/libnrnmech.so", "*/libnrnmech.dylib"):
        found = sorted(Path(directory).glob(pattern))
        if found:
            return found[0]
    return None


def compile_mechanisms():
    """nrnivmodl on mod/*.mod into build/ (once; a lock makes concurrent MPI ranks wait)."""
    build = HERE / "build"
    if find_library(build):
        return build
    with open(HERE / ".build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not find_library(build):
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=HERE))
            for mod in sorted((HERE / "mod").glob("*.mod")):
                shutil.copyfile(mod, tmp / mod.name)
            nrnivmodl = Path(sys.executable).parent / "nrnivmodl"
            command = [str(nrnivmodl) if nrnivmodl.exists() else "nrnivmodl"]
            result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
            if result.returncode != 0 or not find_library(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
                sys.exit("nrnivmodl failed (is a C compiler installed?):\n" + result.stdout[-2000:] + result.stderr[-2000:])
            if build.exists():
                shutil.rmtree(build)
            os.replace(tmp, build)
    return build


def main():
    parser = argparse.ArgumentParser(description="Run the NetPyNE model written by netbabel")
    parser.add_argument("--output", default="spikes.h5", help="SONATA spike report")
    parser.add_argument("--voltages", default=None, help="membrane potentials (HDF5) of recorded cells")
    parser.add_argument("--mechanisms", default=None, help="folder where nrnivmodl already ran")
    parser.add_argument("--timing", default=None, help="write build/run times (JSON) here")
    args = parser.parse_args()

    mpi = any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"))
    from neuron import h
    if mpi:
        h.nrnmpi_init()
    library = find_library(args.mechanisms or compile_mechanisms())
    if library is None:
        sys.exit("no compiled mechanisms found")
    h.nrn_load_dll(str(library))

    from netpyne import sim, specs

    info = json.loads((HERE / "netbabel_run.json").read_text())
    shortest = info.get("min_cell_delay")
    if mpi and shortest is not None and shortest < info["dt"] - 1e-9:
        # netbabel cells emit a spike of grid time T at T + spike_offset * dt, so a one-step delay
        # becomes a NetCon delay below dt, which NEURON's parallel spike exchange cannot use
        sys.exit(f"this model has connections with a delay of one step ({info['dt']} ms) between netbabel "
                 "point neurons: run it in one process (NEURON's MPI spike exchange needs NetCon delays of "
                 "at least dt, and netbabel cells send their spikes 0.49 dt late)")
    net_params = specs.NetParams(json.loads((HERE / "netParams.json").read_text()))
    sim_config = specs.SimConfig(json.loads((HERE / "simConfig.json").read_text()))
    t0, c0 = time.perf_counter(), time.process_time()
    sim.initialize(simConfig=sim_config, netParams=net_params)
    sim.net.createPops()
    sim.net.createCells()
    sim.net.connectCells()
    sim.net.addStims()
    keep = connect_autapses(sim, h, info)
    set_initial_potentials(sim, info)
    voltages = record_voltages(sim, h, info)
    sim.setupRecording()
    h.secondorder = 0
    built, built_cpu = time.perf_counter() - t0, time.process_time() - c0
    t1, c1 = time.perf_counter(), time.process_time()
    sim.runSim()
    ran, ran_cpu = time.perf_counter() - t1, time.process_time() - c1
    spikes = gather_spikes(sim, info)
    traces = gather_voltages(sim, voltages)
    if int(sim.pc.id()) == 0:
        write_report(Path(args.output), spikes)
        if args.voltages and traces:
            write_voltages(Path(args.voltages), traces, info)
        if args.timing:
            Path(args.timing).write_text(json.dumps({"build_s": built, "run_s": ran, "build_cpu_s": built_cpu,
                                                     "run_cpu_s": ran_cpu, "processes": int(sim.pc.nhost())}))
        print(f"netbabel: built in {built:.2f} s, simulated in {ran:.2f} s", flush=True)
    del keep
    sim.pc.barrier()
    if mpi:
        sim.pc.done()
        h.quit()  # finalizes MPI


def population_gids(sim, info):
    """{population: first gid}: NetPyNE numbers cells population by population, in order."""
    first, gid = {}, 0
    for name in sim.net.params.popParams:
        first[name] = gid
        gid += int(info["populations"][name]["size"]) if name in info["populations"] else len(sim.net.pops[name].cellGids)
    return first


def local_cells(sim):
    return {cell.gid: cell for cell in sim.net.cells}


def connect_autapses(sim, h, info):
    """Self-connections (NetPyNE's point cells drop them): NetCons made here."""
    first = population_gids(sim, info)
    cells = local_cells(sim)
    netcons = []
    for block in info["autapses"]:
        base = first[block["population"]]
        for cell, weight, delay in zip(block["cells"], block["weights"], block["delays"]):
            gid = base + int(cell)
            if gid in cells:
                nc = sim.pc.gid_connect(gid, cells[gid].hPointp)
                nc.weight[0] = weight
                nc.delay = delay
                netcons.append(nc)
    return netcons


def set_initial_potentials(sim, info):
    first = population_gids(sim, info)
    cells = local_cells(sim)
    for name, values in info["v_init"].items():
        for i, v in enumerate(values):
            cell = cells.get(first[name] + i)
            if cell is not None:
                cell.hPointp.V_m = v


def record_voltages(sim, h, info):
    first = population_gids(sim, info)
    cells = local_cells(sim)
    out = {}
    for name, ids in info["record_v"].items():
        for i in ids:
            cell = cells.get(first[name] + i)
            if cell is not None:
                if hasattr(cell.hPointp, "lazy"):
                    cell.hPointp.lazy = 0  # per-step updates, so that V_m is current at every step
                vec = h.Vector()
                vec.record(cell.hPointp._ref_V_m, info["dt"])
                out[(name, i)] = vec
    return out


def gather_voltages(sim, voltages):
    """V_m of recorded cells on rank 0: a sample at time t holds V_m(t - dt), so shift by one."""
    local = {f"{k[0]}/{k[1]}": np.array(v)[1:].tolist() for k, v in voltages.items()}
    every = sim.pc.py_gather(local, 0) if int(sim.pc.nhost()) > 1 else [local]
    merged = {}
    if every:
        for part in every:
            merged.update(part)
    return merged


def gather_spikes(sim, info):
    """{population: (node ids, times)} on rank 0, times on NEST's grid, up to the duration."""
    dt, duration, offset = info["dt"], info["duration"], info["spike_offset"]
    times = np.array(sim.simData["spkt"], dtype=float)
    gids = np.array(sim.simData["spkid"], dtype=np.int64)
    if int(sim.pc.nhost()) > 1:
        parts = sim.pc.py_gather((times, gids), 0)
        if parts:
            times = np.concatenate([p[0] for p in parts])
            gids = np.concatenate([p[1] for p in parts])
    first = population_gids(sim, info)
    out = {}
    for name, meta in info["populations"].items():
        if not meta["report"]:
            continue
        lo, hi = first[name], first[name] + int(meta["size"])
        sel = (gids >= lo) & (gids < hi)
        t = times[sel]
        if meta["kind"] == "neuron":
            t = np.floor(t / dt - offset + 0.5) * dt
        keep = t <= duration + 1e-9
        out[name] = (gids[sel][keep] - lo, t[keep])
    return out


def write_report(path, spikes):
    import h5py

    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        root = f.create_group("spikes")
        root.attrs["magic"] = np.uint32(0x0A7A)
        for name, (ids, times) in spikes.items():
            order = np.lexsort((ids, times))
            g = root.create_group(name)
            g.attrs.create("sorting", 2, dtype=h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1"))
            ts = g.create_dataset("timestamps", data=np.asarray(times, dtype=np.float64)[order])
            ts.attrs["units"] = "ms"
            g.create_dataset("node_ids", data=np.asarray(ids, dtype=np.uint64)[order])
    os.replace(tmp, path)


def write_voltages(path, traces, info):
    """SONATA membrane report as the NEST export writes it: /report/<population>/data (time x cell,
    samples at dt, 2 dt, ..., duration), mapping/node_ids, element_ids, index_pointers, time."""
    import h5py

    dt, n_steps = info["dt"], int(round(info["duration"] / info["dt"]))
    by_pop = {}
    for key, values in traces.items():
        name, cell = key.rsplit("/", 1)
        by_pop.setdefault(name, {})[int(cell)] = np.asarray(values, dtype=np.float64)[1:n_steps + 1]
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        for name, cells in sorted(by_pop.items()):
            ids = sorted(cells)
            data = np.full((n_steps, len(ids)), np.nan)
            for column, cell in enumerate(ids):
                trace = cells[cell]
                data[:len(trace), column] = trace
            write_voltage_population(f, name, data, ids, dt)
    os.replace(tmp, path)


# <write_voltage_population>


if __name__ == "__main__":
    main()
'''
