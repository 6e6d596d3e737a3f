"""`netbabel convert --to netpyne`: files, NetPyNE structures, refusals, runs against NEST, MPI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main
from netbabel.description import io
from netbabel.spikereport import read_report

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.json"


def spikes_as_set(report: dict) -> set[tuple[str, int, int]]:
    return {(pop, int(i), int(round(t * 10))) for pop, (ids, times) in report.items() for i, t in zip(ids, times)}


def test_convert_frozen_writes_netpyne_folder(tmp_path: Path) -> None:
    out = tmp_path / "tiny_netpyne"
    assert main(["convert", str(TINY), "--to", "netpyne", "--mode", "frozen", "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"netParams.json", "simConfig.json", "netbabel_run.json", "run.py", "mod"} <= names
    assert {"nb_iaf_psc_exp.mod", "vecstim.mod"} <= {p.name for p in (out / "mod").iterdir()}
    net = json.loads((out / "netParams.json").read_text())
    cfg = json.loads((out / "simConfig.json").read_text())
    assert net["popParams"]["A"]["cellModel"] == "nb_iaf_psc_exp"
    assert net["popParams"]["A"]["numCells"] == 20
    assert net["popParams"]["A"]["params"]["tau_m"] == 10.0
    # frozen: explicit lists, Poisson drive replayed by VecStims, one per target cell
    a_to_b = net["connParams"]["A_to_B"]
    assert len(a_to_b["connList"]) == 5 * 4 and len(a_to_b["weight"]) == 20
    assert all(abs(d - (1.0 - 0.49 * 0.1)) < 1e-9 for d in a_to_b["delay"])  # emitted 0.49 dt late
    drive = net["popParams"]["drive"]
    assert drive["cellModel"] == "VecStim" and len(drive["spkTimes"]) == 20
    assert net["connParams"]["drive"]["delay"] == pytest.approx(1.0)
    # the DC input: two current-change events (weight index 1) at start and stop
    changes = sorted((k, v) for k, v in net["connParams"].items() if k.startswith("bias#"))
    assert [c["weight"] for _, c in changes] == [200.0, -200.0]
    assert all(c["weightIndex"] == 1 for _, c in changes)
    assert cfg["dt"] == 0.1 and cfg["cvode_active"] is False
    assert "nrnivmodl" in (out / "run.py").read_text()


def test_native_mode_uses_netpyne_rules(tmp_path: Path) -> None:
    out = tmp_path / "native"
    assert main(["convert", str(TINY), "--to", "netpyne", "-o", str(out)]) == 0
    net = json.loads((out / "netParams.json").read_text())
    assert net["connParams"]["A_to_B"]["convergence"] == 4
    assert net["popParams"]["drive"]["cellModel"] == "NetStim"
    assert net["popParams"]["drive"]["rate"] == 8000.0
    # B_to_A has a bounded normal weight: drawn by netbabel into a list
    assert "connList" in net["connParams"]["B_to_A"]


def test_unsupported_synapse_is_refused_without_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = json.loads(TINY.read_text())
    data["synapse_types"]["exc"]["model"] = "tsodyks"
    model = tmp_path / "stp.json"
    model.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["convert", str(model), "--to", "netpyne", "-o", str(out)]) == 2
    assert "synapse model 'tsodyks' is not exported to NetPyNE" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_frozen_tiny_netpyne_equals_nest(tmp_path: Path) -> None:
    pytest.importorskip("nest")
    pytest.importorskip("netpyne")
    from netbabel.backends import nest as nest_backend
    from netbabel.backends import netpyne as netpyne_backend

    data = json.loads(TINY.read_text())  # plus V_m of B (dc input) and a step current onto B
    data["simulation"]["record"]["v"].append({"population": "B", "ids": [0, 1]})
    data["inputs"].append({"name": "steps", "type": "step_current", "target": "B", "times": [20.0, 30.5, 120.0],
                           "amplitudes": [50.0, -20.0, 10.0]})
    model = tmp_path / "tiny_v.json"
    model.write_text(json.dumps(data))
    d = io.load(model)
    options = argparse.Namespace(mode="frozen", processes=1, workdir=None)
    nest_backend.run(d, tmp_path / "nest.h5", options)
    netpyne_backend.run(d, tmp_path / "netpyne.h5", options)
    a, b = read_report(tmp_path / "nest.h5"), read_report(tmp_path / "netpyne.h5")
    assert set(a) == set(b) == {"A", "B"}
    assert len(a["A"][1]) > 100
    assert spikes_as_set(a) == spikes_as_set(b)
    for pop in a:
        assert np.allclose(np.sort(a[pop][1]), np.sort(b[pop][1]), atol=1e-9, rtol=0)
    # V_m of A 0, 1 (synaptic input) and B 0, 1 (dc and step currents): same SONATA membrane layout
    import h5py

    for pop in ("A", "B"):
        with h5py.File(tmp_path / "nest_v.h5", "r") as fa, h5py.File(tmp_path / "netpyne_v.h5", "r") as fb:
            va, vb = fa[f"report/{pop}/data"][()], fb[f"report/{pop}/data"][()]
            assert list(fb[f"report/{pop}/mapping/node_ids"][()]) == [0, 1]
        n = min(len(va), len(vb))
        assert n > 1000
        assert np.max(np.abs(va[:n] - vb[:n])) < 1e-9, pop


@pytest.mark.mpi
@pytest.mark.slow
def test_run_py_under_mpirun_equals_one_process(tmp_path: Path) -> None:
    pytest.importorskip("netpyne")
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.fail("mpirun is missing: install Open MPI (apt-get install -y openmpi-bin libopenmpi-dev) "
                    "to test the exported run.py under MPI")
    from netbabel.backends.common import mpi_environment
    from netbabel.backends.netpyne import export_and_compile

    d = io.load(TINY)
    model = tmp_path / "model"
    mechanisms = export_and_compile(d, model, argparse.Namespace(mode="frozen"))
    env = {**os.environ, **mpi_environment(), "PYTHONUNBUFFERED": "1"}
    reports = {}
    for n in (1, 2):
        report = tmp_path / f"spikes_{n}.h5"
        command = [sys.executable, str(model / "run.py"), "--output", str(report), "--mechanisms", str(mechanisms)]
        if n > 1:
            command = [mpirun, "--oversubscribe", "-np", str(n)] + command
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        reports[n] = read_report(report)
    assert len(reports[1]["A"][1]) > 100
    assert spikes_as_set(reports[1]) == spikes_as_set(reports[2])


@pytest.mark.parametrize("start", [None, 0.1, 0.3])
def test_dc_from_the_start_has_nest_onset(tmp_path: Path, start: float | None) -> None:
    """A dc from 0 (as the van Albada compensation current) or from below 2 dt: NetPyNE's spikes equal NEST's."""
    dc = {"name": "bias", "type": "dc", "target": "P", "amplitude": 500.0}
    if start is not None:
        dc["start"] = start
    model = {"netbabel": "1", "name": "dc0", "cell_types": {"c": {"model": "iaf_psc_exp", "params": {}}},
             "populations": {"P": {"cell_type": "c", "size": 1}}, "inputs": [dc],
             "simulation": {"duration": 100.0, "dt": 0.1, "seed": 1}}
    (tmp_path / "m.json").write_text(json.dumps(model))
    spikes = {}
    for backend in ("nest", "netpyne"):
        assert main(["simulate", str(tmp_path / "m.json"), "--backend", backend, "-o", str(tmp_path / f"{backend}.h5")]) == 0
        spikes[backend] = read_report(tmp_path / f"{backend}.h5")["P"][1]
    assert len(spikes["nest"]) >= 5
    np.testing.assert_allclose(spikes["netpyne"], spikes["nest"], atol=1e-9)
