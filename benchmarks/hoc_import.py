"""hoc template import: netbabel against NetPyNE's own importer (`netParams.importCellParams`).

For each test template (tests/data/hoc), in fresh processes:
- import time: wall time of a fresh process that imports the cell (`netbabel convert`, which
  runs the template in its own subprocess; NetPyNE: `python -c` with importCellParams);
- fidelity: the original template and the cell rebuilt by NetPyNE from the imported rule get
  the same current clamp (0.5 nA, 1 nA for the detailed cell, 100-500 ms; 0.15 nA for the
  ball-and-stick); max |V_original - V_rebuilt| over 500 ms at the recorded sites, and spike counts.
Both rebuilt cells run in NetPyNE with the template's celsius and v_init and without shifting
3-D points (somaAtOrigin=False, pt3dRelativeToCellLocation=False): the best case for both;
--soma-at-origin uses NetPyNE's default instead (points moved so the soma is at the origin).
NetPyNE's importer runs the hoc code in its own process (globals the template sets stay set
there); netbabel's never runs it in the importing process.

Usage: python benchmarks/hoc_import.py [--cells hh_single,ball_stick,pyramidal5,detailed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "hoc"
sys.path.insert(0, str(ROOT / "tests"))

ENV = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")

NETPYNE_WORKER = r'''
import json, sys, time
start = time.perf_counter()
spec = json.load(open(sys.argv[1]))
from neuron import h
h.load_file("stdrun.hoc")
if spec["library"]:
    h.nrn_load_dll(spec["library"])
from netpyne import sim, specs
net, cfg = specs.NetParams(), specs.SimConfig()
net.importCellParams("cell", spec["file"], spec["template"], cellArgs=spec["args"],
                     somaAtOrigin=spec.get("soma_at_origin", False))
imported = time.perf_counter() - start
if spec.get("import_only"):
    print(json.dumps({"seconds": imported})); sys.exit()
net.popParams["P"] = {"cellType": "cell", "numCells": 1}
rename = lambda s: s.replace("[", "_").replace("]", "")  # NetPyNE's names for dend[3]: dend_3
assert all(rename(s) in net.cellParams["cell"]["secs"] for s, _ in spec["record"])
sec, x, amp, delay, dur = spec["stim"]
sec = rename(sec)
net.stimSourceParams["clamp"] = {"type": "IClamp", "del": delay, "dur": dur, "amp": amp}
net.stimTargetParams["clamp->P"] = {"source": "clamp", "conds": {"pop": "P"}, "sec": sec, "loc": x}
cfg.duration, cfg.dt, cfg.recordStep = spec["tstop"], spec["dt"], spec["dt"]
cfg.hParams = {"celsius": spec["celsius"], "v_init": spec["v_init"]}
cfg.pt3dRelativeToCellLocation = False
cfg.verbose = False
cfg.recordCells = ["all"]
cfg.recordTraces = {f"v{i}": {"sec": rename(s), "loc": p, "var": "v"} for i, (s, p) in enumerate(spec["record"])}
sim.create(netParams=net, simConfig=cfg, output=False)
sim.simulate()
traces = [list(sim.allSimData[f"v{i}"]["cell_0"]) for i in range(len(spec["record"]))]
json.dump({"traces": traces}, open(sys.argv[2], "w"))
'''


def run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc


def spikes(trace: list[float]) -> int:
    return sum(1 for a, b in zip(trace, trace[1:]) if a < 0 <= b)


def max_difference(a: list[list[float]], b: list[list[float]]) -> float:
    worst = 0.0
    for ta, tb in zip(a, b):
        n = min(len(ta), len(tb))
        worst = max(worst, max(abs(x - y) for x, y in zip(ta[:n], tb[:n])))
    return worst


def bench(name: str, library: str, tmp: Path, soma_at_origin: bool = False) -> dict:
    from test_hoc_import import CELLS  # the templates, stimuli and recording sites of the tests

    from netbabel.importers.hoc import constructor_argument

    file, template, extra, stim, record = CELLS[name]
    stim = list(stim)
    args = [constructor_argument(extra[extra.index("--args") + 1])] if "--args" in extra else []
    out = tmp / f"{name}.json"
    nb_seconds, _ = run([sys.executable, "-m", "netbabel.cli", "convert", str(DATA / file), "--template", template,
                         *extra, "-o", str(out)], tmp)
    spec = {"library": library if "--mod-dir" in extra else None, "file": str(DATA / file), "template": template,
            "args": args, "description": str(out), "population": template, "stim": stim,
            "record": [list(r) for r in record], "dt": 0.025, "tstop": 500.0}
    traces = {}
    for mode in ("template", "netpyne"):
        (tmp / f"{name}_{mode}.spec").write_text(json.dumps({**spec, "mode": mode}))
        run([sys.executable, str(DATA / "trace.py"), f"{name}_{mode}.spec", f"{name}_{mode}.out"], tmp)
        traces[mode] = json.loads((tmp / f"{name}_{mode}.out").read_text())
    worker = tmp / "netpyne_worker.py"
    worker.write_text(NETPYNE_WORKER)
    np_spec = {**spec, "celsius": traces["template"]["celsius"], "v_init": traces["template"]["v_init"],
               "soma_at_origin": soma_at_origin}
    (tmp / f"{name}_np.spec").write_text(json.dumps({**np_spec, "import_only": True}))
    np_seconds, _ = run([sys.executable, str(worker), f"{name}_np.spec", "-"], tmp)
    (tmp / f"{name}_np.spec").write_text(json.dumps(np_spec))
    run([sys.executable, str(worker), f"{name}_np.spec", f"{name}_np.out"], tmp)
    netpyne = json.loads((tmp / f"{name}_np.out").read_text())
    original = traces["template"]["traces"]
    sections = len(json.loads(out.read_text())["cell_types"][template]["sections"])
    return {"cell": name, "sections": sections, "netbabel_s": nb_seconds, "netpyne_s": np_seconds,
            "netbabel_dv": max_difference(original, traces["netpyne"]["traces"]),
            "netpyne_dv": max_difference(original, netpyne["traces"]),
            "spikes": (spikes(original[0]), spikes(traces["netpyne"]["traces"][0]), spikes(netpyne["traces"][0]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="hh_single,ball_stick,pyramidal5,detailed,swc_morphology")
    parser.add_argument("--soma-at-origin", action="store_true",
                        help="NetPyNE's default importCellParams(somaAtOrigin=True): 3-D points moved")
    options = parser.parse_args()
    from netbabel.nmodl import compile_mechanisms, find_library

    library = str(find_library(compile_mechanisms([DATA / "mod"])))
    rows = []
    with tempfile.TemporaryDirectory(prefix="netbabel-bench-hoc-") as tmp:
        for name in options.cells.split(","):
            rows.append(bench(name, library, Path(tmp), options.soma_at_origin))
    print(f"{'cell':<12}{'sections':>9}{'import s netbabel':>19}{'NetPyNE':>9}{'ratio':>7}"
          f"{'max|dV| mV netbabel':>21}{'NetPyNE':>10}{'spikes orig/nb/NetPyNE':>24}")
    for r in rows:
        print(f"{r['cell']:<12}{r['sections']:>9}{r['netbabel_s']:>19.2f}{r['netpyne_s']:>9.2f}"
              f"{r['netbabel_s'] / r['netpyne_s']:>7.2f}{r['netbabel_dv']:>21.3g}{r['netpyne_dv']:>10.3g}"
              f"{'/'.join(map(str, r['spikes'])):>24}")


if __name__ == "__main__":
    main()
