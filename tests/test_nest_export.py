"""NEST exporter and backend with the real NEST 3.10 (each simulation in its own subprocess)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main as netbabel
from netbabel.converters.nest import NO_NEST_MODEL
from netbabel.description.catalogue import MODELS, NEURON_MODELS
from netbabel.spikereport import read_report

ROOT = Path(__file__).resolve().parents[1]
BRUNEL = ROOT / "reference_models" / "brunel2000" / "brunel2000.json"
SMALL_BRUNEL = ["--set", "parameters.order=40", "--set", "simulation.duration=150"]

pytest.importorskip("nest")


def shifted_params(model: str) -> dict:
    """Every numeric parameter of a catalogue model moved off its default (keeping it valid)."""
    out = {}
    for name, p in MODELS[model].params.items():
        if isinstance(p.default, bool):
            out[name] = not p.default
        elif isinstance(p.default, (int, float)) and math.isfinite(p.default):
            out[name] = round(p.default + 1.2, 6)
    return out


def catalogue_description() -> dict:
    cells, pops = {}, {}
    for model in [m for m in NEURON_MODELS if m not in NO_NEST_MODEL] + ["poisson_generator"]:
        cells[model] = {"model": model, "params": shifted_params(model)}
        pops[model] = {"cell_type": model, "size": 2}
    cells["spike_generator"] = {"model": "spike_generator", "params": {"spike_times": [1.0, 2.5]}}
    pops["spike_generator"] = {"cell_type": "spike_generator", "size": 2}
    return {"netbabel": "1", "name": "catalogue", "cell_types": cells, "populations": pops,
            "simulation": {"duration": 1.0, "dt": 0.1, "seed": 3}}


READ_BACK = """
import json, sys, runpy, argparse
ns = runpy.run_path(sys.argv[1], run_name="netbabel_test")
args = argparse.Namespace(threads=1, seed=1, duration=1.0)
nodes = ns["build"](args)
import nest
wanted = json.loads(sys.argv[2])
out = {}
for pop, names in wanted.items():
    node = nodes[pop][0]
    if node.get("model") == "parrot_neuron":  # poisson sources: read the generator
        node = nest.GetConnections(target=node)[0].source
        node = nest.NodeCollection([node])
    out[pop] = {name: node.get(name) for name in names}
print("RESULT" + json.dumps(out, default=lambda a: a.tolist()))
"""


def run_python(code: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_catalogue_parameter_arrives_in_nest(tmp_path):
    data = catalogue_description()
    (tmp_path / "m.json").write_text(json.dumps(data))
    assert netbabel(["convert", str(tmp_path / "m.json"), "--to", "nest", "-o", str(tmp_path / "out")]) == 0
    wanted = {pop: list(data["cell_types"][pop]["params"]) for pop in data["populations"]}
    out = run_python(READ_BACK, str(tmp_path / "out" / "model_nest.py"), json.dumps(wanted), cwd=tmp_path)
    got = json.loads(out.split("RESULT", 1)[1])
    checked = 0
    for pop, params in wanted.items():
        for name in params:
            if name == "spike_times":
                continue
            expected = data["cell_types"][pop]["params"][name]
            assert got[pop][name] == pytest.approx(expected, rel=1e-12), (pop, name)
            checked += 1
    assert checked > 90
    # spike sources are relayed by parrot neurons one step later: the generator holds times - dt
    assert got["spike_generator"]["spike_times"] == pytest.approx([0.9, 2.4])


def test_script_by_hand_equals_netbabel_simulate(tmp_path):
    assert netbabel(["convert", str(BRUNEL), "--to", "nest", "-o", str(tmp_path / "script"), *SMALL_BRUNEL]) == 0
    subprocess.run([sys.executable, "model_nest.py", "--output", "by_hand.h5"], cwd=tmp_path / "script",
                   check=True, capture_output=True, timeout=300)
    assert netbabel(["simulate", str(BRUNEL), "--backend", "nest", *SMALL_BRUNEL,
                     "-o", str(tmp_path / "simulated.h5")]) == 0
    by_hand = read_report(tmp_path / "script" / "by_hand.h5")
    simulated = read_report(tmp_path / "simulated.h5")
    assert set(by_hand) == {"E", "I"} == set(simulated)
    for pop in by_hand:
        assert len(by_hand[pop][1]) > 100
        np.testing.assert_array_equal(by_hand[pop][0], simulated[pop][0])
        np.testing.assert_array_equal(by_hand[pop][1], simulated[pop][1])
        assert simulated[pop][0].max() < (160 if pop == "E" else 40)
        assert simulated[pop][1].max() <= 150.0
    # the script's own report is SONATA as libsonata reads it (the sorting attribute is the uint8 enum)
    import libsonata

    reader = libsonata.SpikeReader(str(tmp_path / "script" / "by_hand.h5"))
    assert reader["E"].sorting == "by_time"
    assert len(reader["E"].get()) == len(by_hand["E"][1])


def test_seed_changes_native_network(tmp_path):
    for seed in (1, 2):
        assert netbabel(["simulate", str(BRUNEL), "--backend", "nest", *SMALL_BRUNEL, "--seed", str(seed),
                         "-o", str(tmp_path / f"s{seed}.h5")]) == 0
    a, b = read_report(tmp_path / "s1.h5"), read_report(tmp_path / "s2.h5")
    assert not np.array_equal(a["E"][1], b["E"][1])


def test_current_step_and_v_recording(tmp_path):
    """A 0.5 nA step into silent iaf_psc_exp cells: V_m rises as (I/g_L)(1 - exp(-t/tau_m)), then spikes."""
    model = {"netbabel": "1", "name": "step", "cell_types": {"c": {"model": "iaf_psc_exp", "params": {}}},
             "populations": {"P": {"cell_type": "c", "size": 3}},
             "simulation": {"duration": 100.0, "dt": 0.1, "seed": 1,
                            "record": {"v": [{"population": "P", "ids": [2, 0]}]}}}  # NEST wants them sorted
    (tmp_path / "m.json").write_text(json.dumps(model))
    assert netbabel(["simulate", str(tmp_path / "m.json"), "--backend", "nest", "--current-step", "0.3,20,80",
                     "--record-v", "P:2", "-o", str(tmp_path / "s.h5")]) == 0
    import h5py

    with h5py.File(tmp_path / "s_v.h5") as f:
        v = f["report/P/data"][()]
        assert list(f["report/P/mapping/node_ids"][()]) == [0, 2]
    t = np.arange(1, len(v) + 1) * 0.1  # NEST samples V_m at dt, 2 dt, ...
    assert len(v) >= 990
    assert np.allclose(v[t < 20.05], -70.0)
    # 0.3 nA into 250 pF, tau_m 10 ms: R = 40 MOhm, steady state 12 mV above rest (below threshold 15 mV)
    late = v[np.argmin(abs(t - 79.0))]
    assert late == pytest.approx(-70.0 + 12.0 * (1 - math.exp(-(79.0 - 20.0 - 0.1) / 10.0)), abs=0.05)
    spikes = read_report(tmp_path / "s.h5")
    assert len(spikes["P"][1]) == 0


def multicompartment_model(tmp_path: Path) -> Path:
    model = {"netbabel": "1", "name": "mc",
             "cell_types": {"pyr": {"model": "multicompartment",
                                    "sections": [{"name": "soma", "L": 20.0, "diam": 20.0}]}},
             "populations": {"P": {"cell_type": "pyr", "size": 2}}}
    path = tmp_path / "mc.json"
    path.write_text(json.dumps(model))
    return path


def test_multicompartment_refused_with_exit_2(tmp_path, capsys):
    path = multicompartment_model(tmp_path)
    assert netbabel(["convert", str(path), "--to", "nest", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'P'" in err and "multicompartment" in err and "NEST" in err
    assert not (tmp_path / "out").exists()
    assert netbabel(["simulate", str(path), "--backend", "nest", "-o", str(tmp_path / "s.h5")]) == 2
    assert not (tmp_path / "s.h5").exists()


def test_distributions_become_nest_parameters(tmp_path):
    """tiny.json: a normal weight with redraw bounds; every drawn weight lies inside the bounds."""
    tiny = ROOT / "tests" / "data" / "tiny.json"
    assert netbabel(["convert", str(tiny), "--to", "nest", "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "model_nest.py").read_text()
    assert "nest.math.redraw(nest.random.normal(mean=-160.0, std=10.0), min=-1000.0, max=0.0)" in text
    code = """
import runpy, argparse, sys, json
ns = runpy.run_path(sys.argv[1], run_name="t")
nodes = ns["build"](argparse.Namespace(threads=1, seed=5, duration=1.0))
import nest
w = nest.GetConnections(nodes["B"], nodes["A"]).get("weight")
print("RESULT" + json.dumps(w))
"""
    weights = np.array(json.loads(run_python(code, str(tmp_path / "out" / "model_nest.py"), cwd=tmp_path).split("RESULT")[1]))
    assert len(weights) > 20 and (weights <= 0).all() and (weights >= -1000).all()
    assert weights.mean() == pytest.approx(-160.0, abs=10.0)


def test_offgrid_spike_times_go_to_the_end_of_their_step():
    """As NEST's spike_generator with allow_offgrid_times (and bmtk): round up, tic/2 tolerance on the grid."""
    from netbabel.exporters.nest import grid_step

    assert [grid_step(t, 0.1) for t in (0.1, 1.0, 1.0004, 1.0006, 1.03, 1.0999, 2.5)] == [1, 10, 10, 11, 11, 11, 25]
    assert [grid_step(t, 0.025) for t in (0.01, 0.025, 0.0254, 0.026, 1.0)] == [1, 1, 1, 2, 40]
