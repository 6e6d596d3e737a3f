"""Explicit instantiation of the Potjans-Diesmann microcircuit: netbabel against NEST and NetPyNE.

Each measurement runs in its own subprocess (peak RSS is that process tree's):

- `netbabel`: `netbabel.instantiate.instantiate_to_directory` of
  reference_models/potjans_diesmann2014 (fixed_total_number, normal weights and delays with
  redraw, the SONATA edges file with both indices, nodes); Poisson inputs are left out
  (duration 0.1 ms) so that the figures are about edges. Scale 0.1 by default, with 1 and 2
  processes; `--full` adds scale 1.0 (about 3e8 edges, 9.6 GB of disk) with
  `--full-processes` (default 1: the writing thread plus one drawing thread already use two
  cores, and worker processes cost extra CPU to ship their blocks).
- `nest.Connect`: the same 55 projections with NEST's own fixed_total_number and
  nest.math.redraw(normal) weights and delays, 1 thread, at scale 0.1 (timed around the
  Connect calls; neurons created before).
- `netpyne`: NetPyNE's rule-based connectivity (`convergence` = the same mean in-degree,
  normal weights/delays as strings) at a small scale (0.01 by default), timed around
  `sim.net.connectCells()`.

Reported: edges, wall time, edges/s (wall), CPU seconds and edges per CPU second (the per-core
rate; on a loaded machine the wall figures are misleading), peak RSS and file size, plus
ratios against NEST and NetPyNE.
Usage: python benchmarks/instantiate.py [--full] [--scale 0.1] [--netpyne-scale 0.01] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "reference_models/potjans_diesmann2014/potjans_diesmann2014.json"

NETBABEL_RUN = """
import json, sys, time, resource
from pathlib import Path
from netbabel.description import load
from netbabel.instantiate import instantiate_to_directory
scale, processes, out = float(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
d = load(sys.argv[4], overrides=[f"parameters.scale={scale}", "simulation.duration=0.1"])
t0, c0 = time.perf_counter(), time.process_time()
instantiate_to_directory(d, out, processes=processes, progress=False)
wall = time.perf_counter() - t0
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
import h5py
with h5py.File(out / "edges.h5") as f:
    edges = sum(g["source_node_id"].shape[0] for g in f["edges"].values())
print(json.dumps({"edges": edges, "wall": wall, "cpu": time.process_time() - c0 + ch.ru_utime + ch.ru_stime,
                  "bytes": sum(p.stat().st_size for p in out.iterdir()), "rss_mb": peak_rss_mb()}))
"""

NEST_RUN = """
import json, sys, time
import numpy as np
import nest
from netbabel.description import load
from netbabel.description.model import Distribution
scale = float(sys.argv[1])
d = load(sys.argv[2], overrides=[f"parameters.scale={scale}"])
nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.local_num_threads = 1
nest.resolution = 0.1
nest.rng_seed = 55
pops = {p: nest.Create("iaf_psc_exp", d.size(p)) for p in d.populations}
def spec(q):
    lo = d.value(q.low) if q.low is not None else -np.inf
    hi = d.value(q.high) if q.high is not None else np.inf
    return nest.math.redraw(nest.random.normal(mean=d.value(q.mean), std=d.value(q.sd)), min=lo, max=hi)
t0, c0 = time.perf_counter(), time.process_time()
for proj in d.projections:
    nest.Connect(pops[proj.source], pops[proj.target],
                 {"rule": "fixed_total_number", "N": int(d.value(proj.rule.n))},
                 {"synapse_model": "static_synapse", "weight": spec(proj.weight), "delay": spec(proj.delay)})
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"edges": nest.num_connections, "wall": wall, "cpu": cpu, "bytes": 0, "rss_mb": peak_rss_mb()}))
"""

NETPYNE_RUN = """
import json, sys, time
from netbabel.description import load
scale = float(sys.argv[1])
d = load(sys.argv[2], overrides=[f"parameters.scale={scale}"])
from netpyne import specs, sim
net = specs.NetParams()
cfg = specs.SimConfig()
cfg.duration, cfg.dt, cfg.verbose, cfg.printRunTime = 0.1, 0.1, False, False
cfg.createNEURONObj = True
net.cellParams["lif"] = {"secs": {"soma": {"geom": {"diam": 10, "L": 10}, "mechs": {"pas": {"g": 1e-4, "e": -65}}}}}
net.synMechParams["exc"] = {"mod": "ExpSyn", "tau": 0.5, "e": 0}
net.synMechParams["inh"] = {"mod": "ExpSyn", "tau": 0.5, "e": -80}
for p in d.populations:
    net.popParams[p] = {"cellType": "lif", "numCells": d.size(p)}
for proj in d.projections:
    w, dl = proj.weight, proj.delay
    net.connParams[proj.name] = {
        "preConds": {"pop": proj.source}, "postConds": {"pop": proj.target},
        "convergence": d.value(proj.rule.n) / d.size(proj.target),
        "synMech": "exc" if proj.source.endswith("E") else "inh",
        "weight": f"max(0, normal({abs(d.value(w.mean)) / 1000}, {d.value(w.sd) / 1000}))",
        "delay": f"max(0.1, normal({d.value(dl.mean)}, {d.value(dl.sd)}))"}
sim.initialize(simConfig=cfg, netParams=net)
sim.net.createPops()
sim.net.createCells()
t0, c0 = time.perf_counter(), time.process_time()
sim.net.connectCells()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
edges = sum(len(c.conns) for c in sim.net.cells)
print(json.dumps({"edges": edges, "wall": wall, "cpu": cpu, "bytes": 0, "rss_mb": peak_rss_mb()}))
"""


PEAK_RSS = """
import resource as _r
def peak_rss_mb():
    return max(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss, _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) / 1024
"""


def measure(code: str, args: list[str], cwd: Path) -> dict:
    """Run `code` in a fresh interpreter; its JSON line (peak RSS: the largest process of its tree)."""
    code = PEAK_RSS + code
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also instantiate the full-scale model (scale 1.0)")
    ap.add_argument("--full-processes", type=int, default=1, help="processes for the full-scale run (default 1)")
    ap.add_argument("--scale", type=float, default=0.1, help="netbabel and NEST scale (default 0.1)")
    ap.add_argument("--netpyne-scale", type=float, default=0.01)
    ap.add_argument("--no-references", action="store_true", help="skip NEST and NetPyNE")
    ap.add_argument("--keep", type=Path, help="keep the instantiated directories here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nb-bench-"))
    rows: list[tuple[str, float, dict]] = []
    try:
        runs = [(args.scale, 1), (args.scale, 2)] + ([(1.0, args.full_processes)] if args.full else [])
        for scale, processes in runs:
            out = (args.keep or work) / f"pd14_scale{scale}_p{processes}"
            r = measure(NETBABEL_RUN, [str(scale), str(processes), str(out), str(MODEL)], work)
            rows.append((f"netbabel instantiate ({processes} proc)", scale, r))
            print(_row(*rows[-1]), flush=True)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        if not args.no_references:
            rows.append(("nest.Connect (1 thread)", args.scale, measure(NEST_RUN, [str(args.scale), str(MODEL)], work)))
            print(_row(*rows[-1]), flush=True)
            rows.append(("netpyne connectCells", args.netpyne_scale,
                         measure(NETPYNE_RUN, [str(args.netpyne_scale), str(MODEL)], work)))
            print(_row(*rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'tool':34} {'scale':>6} {'edges':>12} {'wall s':>8} {'edges/s':>10} {'CPU s':>8} "
          f"{'edges/CPU-s':>12} {'peak RSS MB':>12} {'files MB':>9} {'B/edge':>7}")
    for row in rows:
        print(_row(*row))
    by_name = {name: r for name, _, r in rows}
    nb = rows[0][2]
    for ref in ("nest.Connect (1 thread)", "netpyne connectCells"):
        if ref in by_name:
            r = by_name[ref]
            print(f"netbabel (1 proc) / {ref}: {_rate(nb, 'cpu') / _rate(r, 'cpu'):.1f}x per CPU second, "
                  f"{_rate(nb, 'wall') / _rate(r, 'wall'):.1f}x per wall second")


def _rate(r: dict, key: str) -> float:
    return r["edges"] / max(r[key], 1e-9)


def _row(name: str, scale: float, r: dict) -> str:
    return (f"{name:34} {scale:>6g} {r['edges']:>12,} {r['wall']:>8.2f} {_rate(r, 'wall'):>10.3g} {r['cpu']:>8.2f} "
            f"{_rate(r, 'cpu'):>12.3g} {r['rss_mb']:>12.0f} {r['bytes'] / 1e6:>9.0f} "
            f"{r['bytes'] / max(r['edges'], 1) if r['bytes'] else 0:>7.1f}")


if __name__ == "__main__":
    main()
