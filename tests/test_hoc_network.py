"""A small network of imported hoc cells (reference_models/hoc_network) simulated through NetPyNE.

NetPyNE (cellParams, synMechParams and synapse sites from netbabel.converters.multicompartment)
and a network wired by hand in NEURON from the same description give identical spikes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.description import load

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "reference_models" / "hoc_network" / "hoc_network.json"
RUNNER = Path(__file__).parent / "data" / "hoc" / "network.py"


def simulate(tmp_path: Path, mode: str) -> dict:
    out = tmp_path / f"{mode}.json"
    env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
    proc = subprocess.run([sys.executable, str(RUNNER), mode, str(MODEL), str(out)], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def neuron_run(tmp_path_factory) -> dict:
    return simulate(tmp_path_factory.mktemp("hoc_network_neuron"), "neuron")


def test_reference_model_is_valid_and_self_contained():
    d = load(MODEL)
    assert {ct.model for ct in d.cell_types.values()} == {"multicompartment"}
    assert d.cell_types["Pyramidal5"].mod_files == ["mod/nbih.mod"]
    assert all(d.resolve_path(m).is_file() for ct in d.cell_types.values() for m in ct.mod_files or [])
    for ct in d.cell_types.values():
        assert (MODEL.parent / ct.source["file"]).is_file()


def test_netpyne_network_matches_neuron_wiring(tmp_path, neuron_run):
    netpyne_run = simulate(tmp_path, "netpyne")
    for pop in ("BS", "PYR"):
        a, b = neuron_run["spikes"][pop], netpyne_run["spikes"][pop]
        assert len(a) >= 10, (pop, len(a))  # both populations are active
        assert {i for i, _ in a} == set(range(4 if pop == "BS" else 3))
        assert [i for i, _ in a] == [i for i, _ in b]
        assert np.max(np.abs(np.array([t for _, t in a]) - np.array([t for _, t in b]))) <= 1e-9
    va, vb = np.asarray(neuron_run["v"]), np.asarray(netpyne_run["v"])
    n = min(len(va), len(vb))
    assert n >= 16000 and np.max(np.abs(va[:n] - vb[:n])) <= 1e-6


NO_BACKEND = importlib.util.find_spec("netbabel.backends.netpyne") is None
NEEDS_BACKEND = pytest.mark.skipif(NO_BACKEND, reason="the NetPyNE backend (netbabel.backends.netpyne) is not in this checkout")


@NEEDS_BACKEND
def test_netbabel_simulate_netpyne_backend(tmp_path, neuron_run):
    from netbabel.spikereport import read_report

    out = tmp_path / "spikes.h5"
    proc = subprocess.run([sys.executable, "-m", "netbabel.cli", "simulate", str(MODEL), "--backend", "netpyne",
                           "-o", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = read_report(out)
    for pop in ("BS", "PYR"):
        ids, times = report[pop]
        expected = sorted(neuron_run["spikes"][pop], key=lambda s: (s[0], s[1]))
        got = sorted(zip((int(i) for i in ids), (float(t) for t in times)))
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert np.max(np.abs(np.array([t for _, t in got]) - np.array([t for _, t in expected]))) <= 1e-6


@NEEDS_BACKEND
def test_imported_cell_simulates_with_current_step(tmp_path):
    """`netbabel convert cell.hoc ... -o cell.json` then `netbabel simulate cell.json --backend netpyne
    --current-step 0.5,100,600`: the spikes are those of the original template under the same clamp."""
    from netbabel.spikereport import read_report

    data = Path(__file__).parent / "data" / "hoc"
    cell = tmp_path / "cell.json"
    run = [sys.executable, "-m", "netbabel.cli"]
    proc = subprocess.run([*run, "convert", str(data / "hh_single.hoc"), "--template", "HHCell", "-o", str(cell)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "spikes.h5"
    proc = subprocess.run([*run, "simulate", str(cell), "--backend", "netpyne", "--current-step", "0.5,100,600",
                           "--duration", "700", "-o", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids, times = read_report(out)["HHCell"]
    spec = {"mode": "template", "file": str(data / "hh_single.hoc"), "template": "HHCell", "args": [],
            "stim": ["soma", 0.5, 0.5, 100.0, 500.0], "record": [["soma", 0.5]], "dt": 0.025, "tstop": 700.0}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(data / "trace.py"), "spec.json", "trace.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, NEURON_MODULE_OPTIONS="-nogui"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = np.asarray(json.loads((tmp_path / "trace.json").read_text())["traces"][0])
    crossings = np.flatnonzero((v[1:] >= 10.0) & (v[:-1] < 10.0)) * 0.025  # threshold 10 mV, step before the crossing
    assert len(times) == len(crossings) >= 3  # 0.5 nA drives this small HH soma into depolarisation block
    assert set(ids.tolist()) == {0}
    assert np.max(np.abs(np.sort(times) - crossings)) <= 0.025 + 1e-9
