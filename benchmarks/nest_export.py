"""Exported NEST / PyNN scripts against a minimal hand-written NEST script (Potjans-Diesmann microcircuit).

    python benchmarks/nest_export.py [--scale 0.1] [--duration 1000] [--threads 1] [--repeats 3] [--no-pynn]

Runs, in turn, in fresh processes: (a) `model_nest.py` exported by `netbabel convert --to nest`
(native mode), (b) the hand-written NEST script below (same model, same rules, same threads),
(c) `model_pynn.py --simulator nest` (PyNN with NEST rules through PyNN's native path) and
(d) the same with `--standard-connectors` (PyNN's own FixedTotalNumberConnector, cell by cell).
Each prints its build and simulation time; the table gives medians and the ratio to (b), and
the connection build rate (connections per second of build time). Target: (a)/(b) <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "reference_models" / "potjans_diesmann2014" / "potjans_diesmann2014.json"

# -- the hand-written reference: Potjans & Diesmann (2014), as one writes it for NEST 3 ----------------
POPULATIONS = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
N_FULL = [20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948]
K_EXT = [1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100]
CONN_PROBS = [  # target row, source column (Potjans & Diesmann 2014, Table 5)
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443],
]


def handwritten(scale: float, duration: float, threads: int, seed: int) -> None:
    """The microcircuit in plain PyNEST; prints `built in` / `simulated in` like the exported scripts."""
    import nest

    t0 = time.perf_counter()
    dt, tau_m, tau_syn, c_m = 0.1, 10.0, 0.5, 250.0
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.WARNING
    nest.SetKernelStatus({"resolution": dt, "local_num_threads": threads, "rng_seed": seed})
    # PSP of 0.15 mV -> PSC amplitude (pA) for iaf_psc_exp
    sub = 1.0 / (tau_syn - tau_m)
    psc_over_psp = 1.0 / ((tau_m * tau_syn / c_m * sub) * ((tau_m / tau_syn) ** (tau_m * sub) - (tau_m / tau_syn) ** (tau_syn * sub)))
    w_exc = 0.15 * psc_over_psp
    params = {"C_m": c_m, "tau_m": tau_m, "tau_syn_ex": tau_syn, "tau_syn_in": tau_syn, "E_L": -65.0,
              "V_th": -50.0, "V_reset": -65.0, "t_ref": 2.0, "I_e": 0.0}
    pops = []
    for n in N_FULL:
        pop = nest.Create("iaf_psc_exp", round(n * scale), params=params)
        pop.V_m = nest.random.normal(mean=-58.0, std=10.0)
        pops.append(pop)
    for i, target in enumerate(pops):
        for j, source in enumerate(pops):
            p = CONN_PROBS[i][j]
            if p == 0.0:
                continue
            pairs = N_FULL[j] * N_FULL[i]
            n_syn = round(math.log(1.0 - p) / math.log((pairs - 1.0) / pairs) * scale * scale)
            w = (2 * w_exc if (i, j) == (0, 2) else w_exc) if j % 2 == 0 else -4.0 * w_exc
            d = 1.5 if j % 2 == 0 else 0.75
            weight = nest.math.redraw(nest.random.normal(mean=w, std=abs(w) * 0.1),
                                      min=0.0 if w > 0 else -math.inf, max=math.inf if w > 0 else 0.0)
            delay = nest.math.redraw(nest.random.normal(mean=d, std=d * 0.5), min=0.5 * dt, max=math.inf)
            nest.Connect(source, target, {"rule": "fixed_total_number", "N": n_syn},
                         {"synapse_model": "static_synapse", "weight": weight, "delay": delay})
    for pop, k in zip(pops, K_EXT):
        drive = nest.Create("poisson_generator", params={"rate": 8.0 * round(k * scale)})
        nest.Connect(drive, pop, "all_to_all", {"weight": w_exc, "delay": 1.5})
    recorders = []
    for pop in pops:
        recorders.append(nest.Create("spike_recorder"))
        nest.Connect(pop, recorders[-1])
    t1 = time.perf_counter()
    print(f"built in {t1 - t0:.2f} s ({nest.GetKernelStatus('num_connections')} connections)", flush=True)
    nest.Simulate(duration)
    t2 = time.perf_counter()
    print(f"simulated in {t2 - t1:.2f} s", flush=True)
    print(f"spikes {sum(r.n_events for r in recorders)}", flush=True)


# -- harness ----------------------------------------------------------------------------------------
def export(workdir: Path, scale: float, duration: float) -> tuple[Path, Path]:
    sets = ["--set", f"parameters.scale={scale}", "--set", f"simulation.duration={duration}"]
    netbabel = [sys.executable, "-m", "netbabel.cli"]
    for fmt in ("nest", "pynn"):
        subprocess.run([*netbabel, "convert", str(MODEL), "--to", fmt, "-o", str(workdir / fmt), *sets], check=True)
    return workdir / "nest" / "model_nest.py", workdir / "pynn" / "model_pynn.py"


def timed(command: list[str], cwd: Path) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    out = done.stdout
    build = float(re.search(r"built in ([0-9.]+) s", out).group(1))
    sim = float(re.search(r"simulated in ([0-9.]+) s", out).group(1))
    return {"build": build, "sim": sim, "wall": wall}


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYNEST_QUIET"] = "1"
    return env


def count_connections(script: Path, args: list[str]) -> int:
    code = ("import runpy, argparse, sys\n"
            "ns = runpy.run_path(sys.argv[1], run_name='x')\n"
            "sim = ns['import_simulator']('nest')\n"
            "ns['build'](sim, argparse.Namespace(threads=1, seed=1, duration=1.0, standard_connectors=False))\n"
            "import nest; print('N', nest.GetKernelStatus('num_connections'))\n")
    done = subprocess.run([sys.executable, "-c", code, str(script), *args], capture_output=True, text=True, env=_env())
    return int(re.search(r"N (\d+)", done.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--duration", type=float, default=1000.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pynn", action="store_true", help="skip the PyNN rows")
    parser.add_argument("--pynn-standard-scale", type=float, default=0.02,
                        help="scale for the slow PyNN standard-connector row (build only)")
    parser.add_argument("--handwritten", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=55, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.handwritten:
        handwritten(args.scale, args.duration, args.threads, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="nb-bench-nest-") as tmp:
        work = Path(tmp)
        nest_script, pynn_script = export(work, args.scale, args.duration)
        threads = ["--threads", str(args.threads)]
        runs = {
            "hand-written NEST": [sys.executable, __file__, "--handwritten", "--scale", str(args.scale),
                                  "--duration", str(args.duration), *threads],
            "exported NEST (native)": [sys.executable, str(nest_script), "--output", str(work / "a.h5"), *threads],
        }
        if not args.no_pynn:
            runs["exported PyNN on NEST"] = [sys.executable, str(pynn_script), "--simulator", "nest",
                                             "--output", str(work / "b.h5"), *threads]
        results: dict[str, list[dict]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so that drifts of the machine hit every row alike
            for name, command in runs.items():
                results[name].append(timed(command, work))
        n_conn = count_connections(pynn_script, [])
        table = [("run", "build s", "sim s", "wall s", "wall / hand", "build conn/s")]
        ref = statistics.median(r["wall"] for r in results["hand-written NEST"])
        for name, rs in results.items():
            build = statistics.median(r["build"] for r in rs)
            sim = statistics.median(r["sim"] for r in rs)
            wall = statistics.median(r["wall"] for r in rs)
            table.append((name, f"{build:.2f}", f"{sim:.2f}", f"{wall:.2f}", f"{wall / ref:.3f}", f"{n_conn / build:.3g}"))
        if not args.no_pynn:
            slow_dir = work / "slow"
            sets = ["--set", f"parameters.scale={args.pynn_standard_scale}", "--set", "simulation.duration=10"]
            subprocess.run([sys.executable, "-m", "netbabel.cli", "convert", str(MODEL), "--to", "pynn",
                            "-o", str(slow_dir), *sets], check=True)
            slow_script = slow_dir / "model_pynn.py"
            n_slow = count_connections(slow_script, [])
            for label, extra in (("PyNN standard connectors", ["--standard-connectors"]), ("PyNN NEST rules", [])):
                r = timed([sys.executable, str(slow_script), "--simulator", "nest", "--output", str(work / "c.h5"),
                           *extra], work)
                table.append((f"{label} (scale {args.pynn_standard_scale}, 10 ms)", f"{r['build']:.2f}", "", "", "",
                              f"{n_slow / r['build']:.3g}"))
    print(f"Potjans-Diesmann microcircuit, scale {args.scale}, {args.duration:g} ms, {args.threads} thread(s), "
          f"{n_conn} connections, median of {args.repeats}")
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    print(json.dumps({"scale": args.scale, "connections": n_conn}))


if __name__ == "__main__":
    main()
