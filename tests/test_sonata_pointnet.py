"""The SONATA point-neuron reference circuit (reference_models/sonata_pointnet, built with bmtk's
NetworkBuilder): netbabel's import simulated with NEST against bmtk PointNet on the same files, and
netbabel's SONATA export of the import read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.cli import main

REFERENCE = Path(__file__).resolve().parents[1] / "reference_models" / "sonata_pointnet"
EXPECTED_RATES = {"cortex_Exc": 11.2, "cortex_Inh": 8.7}  # Hz, README.md

BMTK_RUNNER = """
import sys
from bmtk.simulator import pointnet
conf = pointnet.Config.from_json(sys.argv[1])
conf.build_env()
net = pointnet.PointNetwork.from_config(conf)
pointnet.PointSimulator.from_config(conf, net).run()
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the reference circuit (bmtk writes output/ beside its config) and its netbabel import."""
    root = tmp_path_factory.mktemp("sonata_pointnet")
    circuit = root / "circuit"
    shutil.copytree(REFERENCE, circuit, ignore=shutil.ignore_patterns("output", "build.py", "README.md"))
    model = root / "model.json"
    assert main(["convert", str(circuit / "simulation_config.json"), "-o", str(model),
                 "--sonata-workdir", str(root / "derived")]) == 0
    return circuit, model


def _rows(ids: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(node id, time) rows sorted by node, then time."""
    rows = np.stack([np.asarray(ids, np.float64), np.round(np.asarray(times, np.float64), 6)], axis=1)
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def _by_sonata_id(report: Path, model: Path, population: str) -> np.ndarray:
    """netbabel's report (per netbabel population) as (SONATA node id, time) rows of one SONATA population."""
    from netbabel.description import load
    from netbabel.spikereport import read_report

    d = load(model)
    parts = []
    for pop, (ids, times) in read_report(report).items():
        s = d.populations[pop].annotations["sonata"]
        if s["population"] != population:
            continue
        with h5py.File(s["nodes_file"]) as f:
            types = f["nodes"][population]["node_type_id"][()]
        parts.append((np.flatnonzero(np.isin(types, s["node_type_ids"]))[ids], times))
    return _rows(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def test_netbabel_nest_and_bmtk_pointnet_give_identical_spikes(imported, tmp_path):
    pytest.importorskip("bmtk", reason="bmtk is not installed (pip install bmtk)")
    circuit, model = imported
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", BMTK_RUNNER, "simulation_config.json"], cwd=circuit, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with h5py.File(circuit / "output/spikes.h5") as f:
        bmtk = _rows(f["spikes/cortex/node_ids"][()], f["spikes/cortex/timestamps"][()])

    report = tmp_path / "nest.h5"
    assert main(["simulate", str(model), "--backend", "nest", "-o", str(report)]) == 0
    ours = _by_sonata_id(report, model, "cortex")
    # same NEST models and parameters, same edges (weight = syn_weight * nsyns, delays from the types
    # table), same input spikes (bmtk: precise spike_generators; netbabel: parrots one step later)
    np.testing.assert_array_equal(ours, bmtk)

    from netbabel.spikereport import read_report
    for pop, (ids, _t) in read_report(report).items():
        if pop in EXPECTED_RATES:
            n = 200 if pop == "cortex_Exc" else 50
            assert ids.size / n == pytest.approx(EXPECTED_RATES[pop], abs=0.1), pop


def _normalised(path: Path, roots: dict[str, str]) -> dict:
    """The description without metadata and name, its absolute paths replaced by placeholders."""
    text = json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k not in ("metadata", "name")})
    for root, placeholder in roots.items():
        text = text.replace(root, placeholder)
    return json.loads(text)


def _datasets(path: Path, group: str) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path) as f:
        f[group].visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_sonata_export_of_the_import_reimports_identically(imported, tmp_path):
    from netbabel.description import load

    circuit, model = imported
    out = tmp_path / "exported"
    assert main(["convert", str(model), "-o", str(out), "--to", "sonata"]) == 0
    again = tmp_path / "again.json"
    assert main(["convert", str(out), "-o", str(again), "--sonata-workdir", str(tmp_path / "derived")]) == 0

    first = _normalised(model, {str(circuit): "SONATA", str(model.parent / "derived"): "WORK"})
    second = _normalised(again, {str(out): "SONATA", str(tmp_path / "derived"): "WORK"})
    assert second == first
    assert sum(map(len, first["cell_types"]["thalamus"]["params"]["spike_times"])) > 1500

    # the files the two descriptions reference hold the same edges and positions
    a, b = load(model), load(again)
    for p, q in zip(a.projections, b.projections):
        ea = _datasets(a.resolve_path(p.rule.file), f"edges/{p.rule.population}")
        eb = _datasets(b.resolve_path(q.rule.file), f"edges/{q.rule.population}")
        assert ea.keys() == eb.keys() and {"source_node_id", "target_node_id", "0/syn_weight", "0/delay"} <= ea.keys()
        for name in ea:
            np.testing.assert_array_equal(eb[name], ea[name], err_msg=f"{p.name}: {name}")
    for name, pop in a.populations.items():
        if pop.positions is not None:
            pa, pb = a.resolve_path(pop.positions.file), b.resolve_path(b.populations[name].positions.file)
            np.testing.assert_array_equal(_datasets(pb, "/")["positions"], _datasets(pa, "/")["positions"])

    # and the exported SONATA files are the original ones, dataset by dataset
    for stem, group in (("cortex_nodes", "nodes/cortex"), ("thalamus_nodes", "nodes/thalamus"),
                        ("cortex_cortex_edges", "edges/cortex_to_cortex"),
                        ("thalamus_cortex_edges", "edges/thalamus_to_cortex")):
        original = _datasets(circuit / "network" / f"{stem}.h5", group)
        exported = _datasets(out / "network" / f"{stem}.h5", group)
        assert set(original) <= set(exported), stem
        for name in original:
            np.testing.assert_array_equal(exported[name], original[name], err_msg=f"{stem}: {name}")
