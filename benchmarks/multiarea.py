"""Benchmark: import the full-scale multi-area model and export it as a NEST script (rule-based).

    python benchmarks/multiarea.py [--data DIR] [--upstream CLONE [--upstream-path DIR]] [--repeat N]
                                   [--simulate BACKEND,... [--duration MS]]

netbabel: `load_connectome` + `build_description` + the NEST exporter (native mode: rules, no
synapse is instantiated) + the JSON description, in a fresh subprocess (wall time and peak RSS).
Reference: the upstream `MultiAreaModel({})` instantiation (default parameters, full scale) in a
configured upstream clone (config.py written, dicthash and nested_dict importable, e.g. through
--upstream-path), also in a fresh subprocess on the same machine. numpy 2 removed np.Inf, np.NINF and
np.in1d, which the upstream code uses: the benchmark restores these three aliases before importing it.
Without --upstream the figure measured by the reference data's author (global_meta.json) is shown.

--simulate nest,netpyne also converts V1 + V2 at N_scaling = K_scaling = 0.01 (hom_poisson_stat),
simulates it with each backend (`netbabel simulate`, default 200 ms) and prints build + run times
and the per-population rates after 50 ms next to the upstream NEST run (sim_V1V2/rates.csv, 200-1000 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NETBABEL_RUN = r"""
import json, resource, sys, time, argparse
from pathlib import Path
t0 = time.perf_counter()
from netbabel.importers.multiarea import load_connectome, build_description
from netbabel.exporters import nest as nest_exporter
from netbabel.description import dumps
t_import = time.perf_counter()
con = load_connectome(sys.argv[1])
t_load = time.perf_counter()
d = build_description(con)
t_build = time.perf_counter()
out = Path(sys.argv[2])
nest_exporter.write(d, out / "model_nest", argparse.Namespace(mode="native"))
t_nest = time.perf_counter()
(out / "mam.json").write_text(dumps(d))
t_json = time.perf_counter()
size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
print(json.dumps({"python_imports": t_import - t0, "load_connectome": t_load - t_import,
                  "build_description": t_build - t_load, "nest_script": t_nest - t_build,
                  "json": t_json - t_nest, "total": t_json - t0, "bytes_written": size,
                  "projections": len(d.projections), "populations": len(d.populations),
                  "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "rss_kB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

UPSTREAM_RUN = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
import numpy as np
for name, value in (("Inf", np.inf), ("NINF", -np.inf), ("in1d", np.isin)):
    if not hasattr(np, name):
        setattr(np, name, value)
sys.path.insert(0, os.getcwd())
from multiarea_model import MultiAreaModel
t_import = time.perf_counter()
M = MultiAreaModel({})
t_model = time.perf_counter()
print(json.dumps({"python_imports": t_import - t0, "instantiate": t_model - t_import, "total": t_model - t0,
                  "label": M.label, "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "rss_kB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def default_data() -> Path:
    env = os.environ.get("NETBABEL_MULTIAREA_DATA")
    return (Path(env) if env else REPO.parent / "shared" / "data" / "multiarea").resolve()


def run_json(code: str, args: list[str], cwd: Path | None = None, extra_path: str | None = None) -> dict:
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data() / "upstream",
                        help="upstream clone or folder with the three files (default: ../shared/data/multiarea/upstream)")
    parser.add_argument("--upstream", type=Path, help="configured upstream clone to time MultiAreaModel({}) in")
    parser.add_argument("--upstream-path", help="extra PYTHONPATH for the upstream run (dicthash, nested_dict)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (the fastest is reported)")
    parser.add_argument("--simulate", metavar="BACKENDS", help="also simulate V1+V2 at scale 0.01, e.g. nest,netpyne")
    parser.add_argument("--duration", type=float, default=200.0, help="simulated ms for --simulate")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"no multi-area data at {args.data} (see reference_models/multiarea/README.md)")

    ours = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(run_json(NETBABEL_RUN, [str(args.data), tmp]))
    nb = best(ours)
    print(f"netbabel: {nb['populations']} populations, {nb['projections']} projections, "
          f"{nb['bytes_written'] / 1e6:.1f} MB written (NEST script + JSON description)")
    print(f"  phases (s): imports {nb['python_imports']:.2f}, connectome {nb['load_connectome']:.2f}, "
          f"description {nb['build_description']:.2f}, NEST script {nb['nest_script']:.2f}, JSON {nb['json']:.2f}")

    rows = [("netbabel import + NEST export (full scale)", nb["total"], nb["cpu"], nb["rss_kB"] / 1024)]
    if args.upstream:
        theirs = [run_json(UPSTREAM_RUN, [], cwd=args.upstream, extra_path=args.upstream_path)
                  for _ in range(args.repeat)]
        up = best(theirs)
        print(f"upstream: label {up['label']}, imports {up['python_imports']:.2f} s (NEST included)")
        rows.append(("upstream MultiAreaModel({}) instantiation", up["total"], up["cpu"], up["rss_kB"] / 1024))
    else:
        meta_file = args.data.parent / "global_meta.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            rows.append(("upstream instantiation (global_meta.json, not rerun)",
                         meta["time_instantiate_fullscale_s"], float("nan"), float("nan")))
    print()
    print(f"{'run':<56}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS (MB)':>15}{'wall vs netbabel':>18}")
    for name, wall, cpu, rss in rows:
        print(f"{name:<56}{wall:>10.2f}{cpu:>10.2f}{rss:>15.0f}{wall / rows[0][1]:>17.2f}x")
    print("(wall includes Python start and imports; on a shared machine CPU time is the steadier figure)")
    verdict = lambda t: "met" if t < 5 and nb["rss_kB"] < 500 * 1024 else "NOT met"  # noqa: E731
    print(f"\ntarget < 5 s and < 500 MB: wall {verdict(nb['total'])}, CPU {verdict(nb['cpu'])}")
    if args.simulate:
        simulate_v1v2(args.data, args.simulate.split(","), args.duration)
    return 0


def simulate_v1v2(data: Path, backends: list[str], duration: float, start: float = 50.0) -> None:
    """V1 + V2 at scale 0.01 in each backend: wall time and per-population rates in [start, duration)."""
    import csv
    import time

    import numpy as np

    from netbabel.description import load
    from netbabel.spikereport import read_report

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "v1v2.json"
        subprocess.run([sys.executable, "-m", "netbabel.cli", "convert", f"multiarea:{data}", "-o", str(model),
                        "--n-scaling", "0.01", "--k-scaling", "0.01", "--areas", "V1,V2"], check=True)
        d = load(model)
        rates, walls = {}, {}
        for backend in list(backends):
            out = Path(tmp) / f"{backend}.h5"
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "netbabel.cli", "simulate", str(model), "--backend", backend,
                                   "--duration", str(duration), "-o", str(out)], capture_output=True, text=True)
            walls[backend] = time.perf_counter() - t0
            if done.returncode != 0:
                print(f"{backend}: simulation failed:\n{done.stderr[-2000:]}")
                backends = [b for b in backends if b != backend]
                continue
            report = read_report(out)
            rates[backend] = {name: np.count_nonzero(np.asarray(t) >= start) / d.size(name) / ((duration - start) * 1e-3)
                              for name, (_, t) in report.items()}
    reference = {}
    rates_file = data.parent / "sim_V1V2" / "rates.csv"
    if rates_file.is_file():
        with rates_file.open(newline="") as f:
            reference = {f"{r['area']}_{r['pop']}": float(r["rate_200_1000ms_Hz"]) for r in csv.DictReader(f)
                         if r["run"] == "scale0.01_metastable"}
    names = sorted(d.populations)
    if not backends:
        return
    print(f"\nV1 + V2 at scale 0.01, {duration:.0f} ms; rates (spikes/s) in [{start:.0f}, {duration:.0f}) ms")
    print(f"{'population':<12}" + "".join(f"{b:>12}" for b in backends) + f"{'upstream':>12}")
    for name in names:
        print(f"{name:<12}" + "".join(f"{rates[b].get(name, 0.0):>12.2f}" for b in backends)
              + f"{reference.get(name, float('nan')):>12.2f}")
    print(f"{'wall (s)':<12}" + "".join(f"{walls[b]:>12.1f}" for b in backends))
    first = np.array([rates[backends[0]].get(n, 0.0) for n in names])
    for b in backends[1:]:
        other = np.array([rates[b].get(n, 0.0) for n in names])
        rel = np.abs(other - first) / np.maximum(first, 1e-9)
        print(f"{b} vs {backends[0]}: rate correlation {np.corrcoef(first, other)[0, 1]:.3f}, "
              f"mean |relative difference| {rel.mean():.3f}, max {rel.max():.3f}")


if __name__ == "__main__":
    sys.exit(main())
