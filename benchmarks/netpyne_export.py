"""NetPyNE export of the Potjans-Diesmann microcircuit: build and simulation times, against NetPyNE and NEST.

Rows (all in fresh processes, same machine, same run):
- `netbabel frozen`: the exported NetPyNE model with explicit connLists and VecStim inputs
  (netbabel.instantiate); build = sim.initialize .. connectCells, as timed by run.py;
- `netbabel native`: the native export (this model's fixed_total_number rule with normal
  weights has no NetPyNE equivalent, so its edges are netbabel-drawn connLists as well;
  the background is NetStims);
- `netpyne rules`: the same netParams with every projection replaced by NetPyNE's own
  rule (`convergence` = mean in-degree, weights and delays as `normal(...)` strings):
  what a NetPyNE user would write;
- `nest`: the netbabel NEST export in frozen mode (the same edges and input spikes as
  `netbabel frozen`), run for a short and the full duration; build = the short run
  (Python start included), simulation time from the difference.
Times are CPU seconds of the simulating process (robust on a shared machine; wall
seconds in brackets). NEST's build includes its Python start (it is timed from outside).
Simulation time is reported per biological second. netbabel's NMODL neurons advance by
one self-event per neuron and step (for NEST's update order), which is the price of
spike-for-spike agreement.

Usage: python benchmarks/netpyne_export.py [--scale 0.05] [--duration 200] [--skip-nest]

Measured here (2026-11-26, 2 shared cores under heavy load, scale 0.05, 100 ms, 3,855 neurons;
CPU seconds, wall in brackets):

    run                                   build CPU s    sim CPU s / bio s   spikes  build vs rules  sim vs NEST
    netbabel frozen (connList)          96.48 (409.2)         24.61 (61.8)      801           0.87x         2.3x
    netbabel native                    100.36 (295.1)        28.94 (173.2)      802           0.90x         2.7x
    netpyne rules (convergence)        110.91 (305.9)         24.13 (51.1)      801           1.00x         2.3x
    nest (netbabel export)                 3.45 (7.2)         10.71 (29.3)      801           0.03x         1.0x

(NetPyNE's build is its Python connection loop; the NEST row is the frozen NEST export and
gives the same 801 spikes as the frozen NetPyNE row.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "reference_models" / "potjans_diesmann2014" / "potjans_diesmann2014.json"


def export(mode: str, scale: float, duration: float, out: Path) -> Path:
    from netbabel.backends.netpyne import export_and_compile
    from netbabel.description import load

    d = load(MODEL, overrides=[f"parameters.scale={scale}", f"simulation.duration={duration}"])
    return export_and_compile(d, out, argparse.Namespace(mode=mode))


def netpyne_rules(native_dir: Path, out: Path, scale: float, duration: float) -> None:
    """A copy of the native export whose projections are NetPyNE convergence rules."""
    from netbabel.converters.netpyne import SPIKE_OFFSET
    from netbabel.description import load

    d = load(MODEL, overrides=[f"parameters.scale={scale}", f"simulation.duration={duration}"])
    shutil.copytree(native_dir, out)
    net = json.loads((out / "netParams.json").read_text())
    dt = d.value(d.simulation.dt)
    for i, p in enumerate(d.projections):
        name = d.projection_name(i)
        w, dl = p.weight, p.delay
        mean_w, sd_w = d.value(w.mean), d.value(w.sd)
        mean_d, sd_d = d.value(dl.mean), d.value(dl.sd)
        clip = "min(0, {})" if mean_w < 0 else "max(0, {})"
        net["connParams"][name] = {
            "preConds": {"pop": p.source}, "postConds": {"pop": p.target},
            "convergence": d.value(p.rule.n) / d.size(p.target),
            "weight": clip.format(f"normal({mean_w}, {sd_w ** 2})"),
            "delay": f"max({dt}, normal({mean_d}, {sd_d ** 2})) - {SPIKE_OFFSET * dt}"}
    (out / "netParams.json").write_text(json.dumps(net))


def run_netpyne(model: Path, mechanisms: Path, work: Path) -> dict:
    timing = work / f"{model.name}_timing.json"
    start = time.perf_counter()
    subprocess.run([sys.executable, str(model / "run.py"), "--output", str(work / f"{model.name}.h5"),
                    "--mechanisms", str(mechanisms), "--timing", str(timing)],
                   cwd=work, check=True, capture_output=True, text=True)
    data = json.loads(timing.read_text())
    data["wall_s"] = time.perf_counter() - start
    from netbabel.spikereport import read_report

    data["spikes"] = sum(len(t) for _, t in read_report(work / f"{model.name}.h5").values())
    return data


def run_nest(scale: float, duration: float, work: Path) -> dict:
    from netbabel.description import load
    from netbabel.exporters import nest as nest_exporter

    d = load(MODEL, overrides=[f"parameters.scale={scale}", f"simulation.duration={duration}"])
    out = work / "model_nest"
    out.mkdir()
    nest_exporter.write(d, out, argparse.Namespace(mode="frozen"))
    walls, cpus = {}, {}
    short = 10.0
    for t in (short, duration):
        start, cpu0 = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, str(out / nest_exporter.SCRIPT), "--duration", str(t),
                        "--output", str(work / f"nest_{t}.h5")], cwd=work, check=True, capture_output=True)
        walls[t], cpus[t] = time.perf_counter() - start, _children_cpu() - cpu0
    from netbabel.spikereport import read_report

    spikes = sum(len(t) for _, t in read_report(work / f"nest_{duration}.h5").values())
    scale_up = duration / (duration - short)
    return {"build_s": walls[short], "run_s": max(walls[duration] - walls[short], 0.0) * scale_up,
            "build_cpu_s": cpus[short], "run_cpu_s": max(cpus[duration] - cpus[short], 0.0) * scale_up,
            "spikes": spikes}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--duration", type=float, default=200.0, help="biological time in ms")
    ap.add_argument("--skip-nest", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netbabel-bench-netpyne-"))
    try:
        rows = {}
        frozen = work / "frozen"
        native = work / "native"
        t0 = time.perf_counter()
        mech = export("frozen", args.scale, args.duration, frozen)
        export_frozen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        export("native", args.scale, args.duration, native)
        export_native_s = time.perf_counter() - t0
        netpyne_rules(native, work / "rules", args.scale, args.duration)
        rows["netbabel frozen (connList)"] = run_netpyne(frozen, mech, work)
        rows["netbabel native"] = run_netpyne(native, mech, work)
        rows["netpyne rules (convergence)"] = run_netpyne(work / "rules", mech, work)
        if not args.skip_nest:
            rows["nest (netbabel export)"] = run_nest(args.scale, args.duration, work)
        bio = args.duration / 1000.0
        print(f"Potjans-Diesmann microcircuit, scale {args.scale}, {args.duration:g} ms, dt 0.1 ms "
              f"(export: frozen {export_frozen_s:.1f} s incl. instantiate, native {export_native_s:.1f} s)")
        print("times are CPU seconds of the simulating process (wall seconds in brackets; the machine may be shared)")
        print(f"{'run':30} {'build CPU s':>18} {'sim CPU s / bio s':>20} {'spikes':>8} {'build vs rules':>15} "
              f"{'sim vs NEST':>12}")
        ref_build = rows["netpyne rules (convergence)"]["build_cpu_s"]
        nest = rows.get("nest (netbabel export)")
        for name, r in rows.items():
            per_bio, per_bio_wall = r["run_cpu_s"] / bio, r["run_s"] / bio
            vs_nest = f"{r['run_cpu_s'] / nest['run_cpu_s']:.1f}x" if nest and nest["run_cpu_s"] > 0 else "-"
            build = f"{r['build_cpu_s']:.2f} ({r['build_s']:.1f})"
            sim_text = f"{per_bio:.2f} ({per_bio_wall:.1f})"
            print(f"{name:30} {build:>18} {sim_text:>20} {r['spikes']:>8} "
                  f"{r['build_cpu_s'] / ref_build:>14.2f}x {vs_nest:>12}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
