"""SONATA circuits simulated: netbabel's NEST backend against bmtk PointNet on the circuit netbabel exported."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.cli import main

_spec = importlib.util.spec_from_file_location("make_circuits", Path(__file__).parent / "data/sonata/make_circuits.py")
circuits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(circuits)

BMTK_RUNNER = """
import sys
from bmtk.simulator import pointnet
conf = pointnet.Config.from_json(sys.argv[1])
conf.build_env()
net = pointnet.PointNetwork.from_config(conf)
pointnet.PointSimulator.from_config(conf, net).run()
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _by_sonata_id(report: Path, model: Path) -> dict[str, np.ndarray]:
    """netbabel's report (per netbabel population) as sorted (SONATA node id, time) rows per SONATA population."""
    from netbabel.description import load
    from netbabel.spikereport import read_report

    d = load(model)
    out: dict[str, list] = {}
    for pop, (ids, times) in read_report(report).items():
        s = d.populations[pop].annotations["sonata"]
        with h5py.File(s["nodes_file"]) as f:
            types = f["nodes"][s["population"]]["node_type_id"][()]
        sonata_ids = np.flatnonzero(np.isin(types, s["node_type_ids"]))[ids]
        out.setdefault(s["population"], []).append(np.stack([sonata_ids, np.round(times, 6)], axis=1))
    return {k: _sorted(np.concatenate(v)) for k, v in out.items()}


def _sorted(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def test_bmtk_pointnet_and_netbabel_nest_give_identical_spikes(tmp_path):
    pytest.importorskip("bmtk", reason="bmtk is not installed (pip install bmtk)")
    cfg = circuits.point_circuit(tmp_path / "c", tstop=300.0)
    out = tmp_path / "exported"
    assert main(["convert", str(cfg), "-o", str(out), "--to", "sonata"]) == 0
    # bmtk resolves "$BASE_DIR": "." against the working directory: run it from the circuit folder
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", BMTK_RUNNER, "simulation_config.json"], cwd=out, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with h5py.File(out / "output/spikes.h5") as f:
        g = f["spikes/internal"]
        bmtk = _sorted(np.stack([g["node_ids"][()].astype(float), np.round(g["timestamps"][()], 6)], axis=1))
    # netbabel reads the exported SONATA circuit back and runs it in NEST
    assert main(["convert", str(out), "-o", str(tmp_path / "model.json"), "--to", "netbabel"]) == 0
    assert main(["simulate", str(tmp_path / "model.json"), "--backend", "nest", "-o", str(tmp_path / "nb.h5")]) == 0
    ours = _by_sonata_id(tmp_path / "nb.h5", tmp_path / "model.json")["internal"]
    assert bmtk.shape[0] > 500  # the network is active
    np.testing.assert_array_equal(ours, bmtk)


def test_original_and_exported_circuits_simulate_identically(tmp_path):
    cfg = circuits.point_circuit(tmp_path / "c", tstop=200.0)
    assert main(["convert", str(cfg), "-o", str(tmp_path / "out"), "--to", "sonata"]) == 0
    reports = {}
    for name, src in (("original", cfg), ("exported", tmp_path / "out")):
        model = tmp_path / f"{name}.json"
        assert main(["convert", str(src), "-o", str(model), "--to", "netbabel"]) == 0
        assert main(["simulate", str(model), "--backend", "nest", "-o", str(tmp_path / f"{name}.h5")]) == 0
        reports[name] = _by_sonata_id(tmp_path / f"{name}.h5", model)
    assert reports["original"]["internal"].shape[0] > 200
    np.testing.assert_array_equal(reports["original"]["internal"], reports["exported"]["internal"])
