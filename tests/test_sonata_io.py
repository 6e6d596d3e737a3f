"""SONATA import/export: round trips checked with libsonata element by element, both file styles, bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.cli import main

_spec = importlib.util.spec_from_file_location("make_circuits", Path(__file__).parent / "data/sonata/make_circuits.py")
circuits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(circuits)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _convert(src: Path, out: Path, to: str) -> None:
    assert main(["convert", str(src), "-o", str(out), "--to", to]) == 0


def _read_csv(path: Path) -> dict[int, dict]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return {int(r[0]): dict(zip(lines[0], r)) for r in lines[1:]}


def test_import_point_circuit_splits_by_node_type_and_keeps_weights(tmp_path):
    from netbabel.description import load

    cfg = circuits.point_circuit(tmp_path / "c")
    _convert(cfg, tmp_path / "m.json", "netbabel")
    d = load(tmp_path / "m.json")
    assert {p: d.size(p) for p in d.populations} == {"internal_Exc": 160, "internal_Inh": 40, "external": 100}
    assert d.cell_types["internal_Exc"].model == "iaf_psc_alpha"
    assert d.cell_types["internal_Inh"].params["tau_m"] == 8.0
    assert d.simulation.duration == 500.0
    # every edge is in exactly one projection, with weight = syn_weight * nsyns (bmtk's rule)
    with h5py.File(tmp_path / "c/network/internal_edges.h5") as f:
        g = f["edges/internal_to_internal"]
        nsyns = g["0/nsyns"][()]
        etype = g["edge_type_id"][()]
    expected = np.where(etype == 300, 60.0, -150.0) * nsyns
    got = np.full(expected.size, np.nan)
    total = 0
    for p in d.projections:
        with h5py.File(d.resolve_path(p.rule.file)) as f:
            g = f["edges"][p.rule.population]
            n = g["source_node_id"].shape[0]
            total += n
            if "sonata_edge_id" in g and g.attrs["sonata_population"] == "internal_to_internal":
                got[g["sonata_edge_id"][()]] = g["0/syn_weight"][()]
                assert np.all(g["0/delay"][()] == (1.5 if etype[g["sonata_edge_id"][0]] == 300 else 1.0))
    assert total == 4000 + 1000
    np.testing.assert_array_equal(got, expected)
    spikes = d.cell_types["external"].params["spike_times"]
    assert len(spikes) == 100 and sum(map(len, spikes)) > 500


@pytest.mark.parametrize("style", ["modern", "allen"])
def test_roundtrip_keeps_every_node_edge_and_attribute(tmp_path, style):
    import libsonata

    cfg = circuits.point_circuit(tmp_path / "c", style=style)
    _convert(cfg, tmp_path / "m.json", "netbabel")
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    out = tmp_path / "out/network"
    circuit = libsonata.CircuitConfig.from_file(str(tmp_path / "out/circuit_config.json"))
    assert circuit.node_populations == {"internal", "external"}
    assert circuit.edge_populations == {"internal_to_internal", "external_to_internal"}
    for pop in ("internal", "external"):
        new = circuit.node_population(pop)
        with h5py.File(tmp_path / f"c/network/{pop}_nodes.h5") as f:
            g = f[f"nodes/{pop}"]
            assert new.size == g["node_type_id"].shape[0]
            np.testing.assert_array_equal(_h5(out / f"{pop}_nodes.h5", f"nodes/{pop}/node_type_id"), g["node_type_id"][()])
            for name in g["0"]:
                np.testing.assert_array_equal(new.get_attribute(name, new.select_all()), g["0"][name][()])
    for epop, stem in (("internal_to_internal", "internal"), ("external_to_internal", "external")):
        new = circuit.edge_population(epop)
        sel = new.select_all()
        with h5py.File(tmp_path / f"c/network/{stem}_edges.h5") as f:
            g = f[f"edges/{epop}"]
            np.testing.assert_array_equal(new.source_nodes(sel), g["source_node_id"][()])
            np.testing.assert_array_equal(new.target_nodes(sel), g["target_node_id"][()])
            np.testing.assert_array_equal(_h5(out / f"{stem}_edges.h5", f"edges/{epop}/edge_type_id"), g["edge_type_id"][()])
            assert set(new.attribute_names) == set(g["0"])
            for name in g["0"]:
                np.testing.assert_array_equal(new.get_attribute(name, sel), g["0"][name][()])
    # types tables: the original columns, model parameters equal after the trip
    for tid, row in _read_csv(tmp_path / "c/network/internal_node_types.csv").items():
        new_row = _read_csv(out / "internal_node_types.csv")[tid]
        assert {k: new_row[k] for k in ("pop_name", "ei", "model_type")} == {k: row[k] for k in ("pop_name", "ei", "model_type")}
        assert new_row["model_template"].removeprefix("nest:") == row["model_template"].removeprefix("nest:")
        old = json.loads((tmp_path / "c/components/point_neuron_models" / row["dynamics_params"]).read_text())
        new_params = json.loads((tmp_path / "out/components/point_neuron_models" / new_row["dynamics_params"]).read_text())
        assert new_params == old
    for tid, row in _read_csv(tmp_path / "c/network/internal_edge_types.csv").items():
        assert _read_csv(out / "internal_edge_types.csv")[tid] == row
    # the input spikes, by SONATA node id
    with h5py.File(tmp_path / "out/inputs/external_spikes.h5") as f:
        n_out = f["spikes/external/node_ids"].shape[0]
    with h5py.File(tmp_path / "c/inputs/external_spikes.h5") as f:
        n_in = (f["spikes/timestamps"] if style == "allen" else f["spikes/external/timestamps"]).shape[0]
    assert n_out == n_in


def _h5(path: Path, name: str) -> np.ndarray:
    with h5py.File(path) as f:
        return f[name][()]


def test_allen_style_is_read_although_libsonata_rejects_it(tmp_path):
    import libsonata

    cfg = circuits.point_circuit(tmp_path / "c", style="allen")
    edges = str(tmp_path / "c/network/internal_edges.h5")
    with pytest.raises((libsonata.SonataError, RuntimeError)):  # no node_population attribute
        libsonata.EdgeStorage(edges).open_population("internal_to_internal").source
    _convert(cfg, tmp_path / "m.json", "netbabel")
    data = json.loads((tmp_path / "m.json").read_text())
    assert sum(len(t) for t in data["cell_types"]["external"]["params"]["spike_times"]) > 500


def test_rule_based_model_exports_through_instantiate(tmp_path):
    import libsonata

    tiny = Path(__file__).parent / "data/tiny.json"
    _convert(tiny, tmp_path / "out", "sonata")
    circuit = libsonata.CircuitConfig.from_file(str(tmp_path / "out/circuit_config.json"))
    assert {"A", "B"} <= circuit.node_populations
    pop = libsonata.EdgeStorage(str(tmp_path / "out/network/edges.h5")).open_population("A_to_B")
    assert pop.size == 5 * 4  # fixed indegree 4 onto 5 cells
    assert np.all(pop.get_attribute("syn_weight", pop.select_all()) == 80.0)
    # and it comes back
    _convert(tmp_path / "out", tmp_path / "back.json", "netbabel")
    back = json.loads((tmp_path / "back.json").read_text())
    assert back["populations"]["A"]["size"] == 20 and back["populations"]["B"]["size"] == 5


def test_biophysical_cells_from_swc_and_allen_params(tmp_path):
    from netbabel.description import load

    cfg = circuits.biophysical_circuit(tmp_path / "c")
    _convert(cfg, tmp_path / "m.json", "netbabel")
    d = load(tmp_path / "m.json")
    cell = d.cell_types["bio"]
    names = [s.name for s in cell.sections]
    assert names == ["soma", "dend[0]", "dend[1]", "dend[2]", "dend[3]", "axon[0]", "axon[1]"]
    soma = cell.sections[0]
    assert soma.mechanisms["hh"]["gnabar"] == 0.12 and soma.ions["na"]["ena"] == 50.0
    assert cell.sections[1].cm == 2.0 and cell.sections[1].mechanisms["pas"] == {"e": -65.0, "g": 0.0001}
    assert cell.sections[1].nseg == 3  # bmtk: 1 + 2 int(L / 2 dL), L = 72 um
    site = cell.synapses[d.synapse_types[d.projections[0].synapse_type].site]
    assert site.mechanism == "Exp2Syn" and site.params == {"tau1": 0.5, "tau2": 3.0, "e": 0.0}
    assert d.simulation.temperature == 6.3 and d.simulation.dt == 0.025
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    assert (tmp_path / "out/components/morphologies/cell.swc").read_text() == circuits.SWC
    import libsonata

    nodes = libsonata.NodeStorage(str(tmp_path / "out/network/bio_nodes.h5")).open_population("bio")
    with h5py.File(tmp_path / "c/network/bio_nodes.h5") as f:
        for name in ("x", "y", "z", "rotation_angle_yaxis"):
            np.testing.assert_array_equal(nodes.get_attribute(name, nodes.select_all()), f[f"nodes/bio/0/{name}"][()])
    edges = libsonata.EdgeStorage(str(tmp_path / "out/network/lgn_bio_edges.h5")).open_population("lgn_to_bio")
    with h5py.File(tmp_path / "c/network/lgn_bio_edges.h5") as f:
        for name in ("syn_weight", "sec_id", "sec_x"):
            np.testing.assert_array_equal(edges.get_attribute(name, edges.select_all()),
                                          f[f"edges/lgn_to_bio/0/{name}"][()])
    row = _read_csv(tmp_path / "out/network/bio_node_types.csv")[10]
    assert row["model_processing"] == "aibs_perisomatic" and row["morphology"] == "cell.swc"
    # edited sections cannot silently go out as the original files
    cell.sections[0].mechanisms["hh"]["gnabar"] = 0.2
    from netbabel.description import save

    save(d, tmp_path / "edited.json")
    assert main(["convert", str(tmp_path / "edited.json"), "-o", str(tmp_path / "out2"), "--to", "sonata"]) == 2


# -- bad input: exit 2, naming the file, the population and the field ----------------------

def _edit(path: Path, fn) -> None:
    with h5py.File(path, "a") as f:
        fn(f)


def _bad(tmp_path, capsys, breaker) -> str:
    cfg = circuits.point_circuit(tmp_path / "c")
    breaker(tmp_path / "c")
    assert main(["convert", str(cfg), "-o", str(tmp_path / "m.json"), "--to", "netbabel"]) == 2
    assert not (tmp_path / "m.json").exists()
    return capsys.readouterr().err


def test_missing_population(tmp_path, capsys):
    def brk(c):
        _edit(c / "network/internal_edges.h5",
              lambda f: f["edges/internal_to_internal/source_node_id"].attrs.__setitem__("node_population", "v1"))
    err = _bad(tmp_path, capsys, brk)
    assert "internal_edges.h5" in err and "internal_to_internal" in err and "source_node_id" in err and "'v1'" in err


def test_mismatched_index_datasets(tmp_path, capsys):
    def brk(c):
        def f_(f):
            g = f["edges/internal_to_internal"]
            data = g["edge_type_id"][()][:-5]
            del g["edge_type_id"]
            g.create_dataset("edge_type_id", data=data)
        _edit(c / "network/internal_edges.h5", f_)
    err = _bad(tmp_path, capsys, brk)
    assert "internal_edges.h5" in err and "internal_to_internal" in err and "/edge_type_id" in err
    assert "mismatched index datasets" in err


def test_node_ids_out_of_range(tmp_path, capsys):
    def brk(c):
        _edit(c / "network/external_edges.h5",
              lambda f: f["edges/external_to_internal/target_node_id"].__setitem__(7, 999))
    err = _bad(tmp_path, capsys, brk)
    assert "external_edges.h5" in err and "/edges/external_to_internal/target_node_id" in err
    assert "node id 999 out of range" in err and "'internal'" in err


def test_unknown_model_type(tmp_path, capsys):
    def brk(c):
        p = c / "network/internal_node_types.csv"
        p.write_text(p.read_text().replace("101 point_process", "101 glif_thing"))
    err = _bad(tmp_path, capsys, brk)
    assert "internal_node_types.csv" in err and "model_type" in err and "'internal'" in err and "glif_thing" in err


def test_csv_with_missing_column(tmp_path, capsys):
    def brk(c):
        p = c / "network/internal_node_types.csv"
        rows = [ln.split() for ln in p.read_text().splitlines()]
        p.write_text("\n".join(" ".join(r[:1] + r[2:]) for r in rows) + "\n")  # drop model_type
    err = _bad(tmp_path, capsys, brk)
    assert "internal_node_types.csv" in err and "missing column 'model_type'" in err and "'internal'" in err


def test_public_300_pointneurons_example_round_trip(tmp_path):
    """The Allen/bmtk example shipped with NEST (bmtk-style `node_id_to_range` index names, node_id datasets,
    /spikes/gids input, a node sets file it does not ship, edge types without delay)."""
    import shutil

    import libsonata
    import nest

    example = Path(nest.__file__).parent / "doc/examples/pynest/sonata_example/300_pointneurons"
    if not (example / "network/internal_internal_edges.h5").exists():
        pytest.skip("the public 300_pointneurons SONATA example is not shipped with this NEST installation")
    src = tmp_path / "p300"
    shutil.copytree(example, src, ignore=shutil.ignore_patterns("output"))
    _convert(src, tmp_path / "m.json", "netbabel")
    d = json.loads((tmp_path / "m.json").read_text())
    assert {k: v["size"] for k, v in d["populations"].items()} == {
        "internal_PV2": 30, "internal_Scnn1a": 80, "internal_Rorb": 80, "internal_Nr5a1": 80,
        "internal_PV1": 30, "external": 100}
    assert d["cell_types"]["internal_Scnn1a"]["params"]["C_m"] == pytest.approx(
        json.loads((src / "components/cell_models/472363762_point.json").read_text())["C_m"])
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    out = tmp_path / "out/network"
    for epop, stem in (("internal_to_internal", "internal_internal"), ("external_to_internal", "external_internal")):
        new = libsonata.EdgeStorage(str(out / f"{stem}_edges.h5")).open_population(epop)
        sel = new.select_all()
        with h5py.File(src / f"network/{stem}_edges.h5") as f:
            g = f[f"edges/{epop}"]
            np.testing.assert_array_equal(new.source_nodes(sel), g["source_node_id"][()])
            np.testing.assert_array_equal(new.target_nodes(sel), g["target_node_id"][()])
            np.testing.assert_array_equal(new.get_attribute("syn_weight", sel), g["0/syn_weight"][()])
    nodes = libsonata.NodeStorage(str(out / "internal_nodes.h5")).open_population("internal")
    with h5py.File(src / "network/internal_nodes.h5") as f:
        for name in ("x", "y", "z", "rotation_angle_yaxis"):
            np.testing.assert_array_equal(nodes.get_attribute(name, nodes.select_all()), f[f"nodes/internal/0/{name}"][()])
    rows = _read_csv(out / "internal_internal_edge_types.csv")  # edge type 100 exists in both original tables
    assert rows[100]["target_query"] == "ei=='e'" and rows[100]["delay"] == "2.0"
    assert "delay" not in _read_csv(out / "external_internal_edge_types.csv")[100]


def test_edge_types_csv_without_its_id_column(tmp_path, capsys):
    def brk(c):
        p = c / "network/external_edge_types.csv"
        p.write_text(p.read_text().replace("edge_type_id", "type_id"))
    err = _bad(tmp_path, capsys, brk)
    assert "external_edge_types.csv" in err and "'external_to_internal'" in err and "edge_type_id" in err


def test_csv_spikes_and_current_clamp(tmp_path):
    """bmtk's CSV spike files and a current clamp (pA onto point neurons, as bmtk PointNet reads it)."""
    from netbabel.description import load

    cfg = circuits.point_circuit(tmp_path / "c")
    with h5py.File(tmp_path / "c/inputs/external_spikes.h5") as f:
        ids, times = f["spikes/external/node_ids"][()], f["spikes/external/timestamps"][()]
    lines = ["timestamps population node_ids"] + [f"{t} external {i}" for t, i in zip(times, ids)]
    (tmp_path / "c/inputs/spikes.csv").write_text("\n".join(lines) + "\n")
    sim = json.loads(cfg.read_text())
    sim["inputs"]["ext_spikes"].update(module="csv", input_file="$INPUT_DIR/spikes.csv")
    sim["inputs"]["clamp"] = {"input_type": "current_clamp", "module": "IClamp", "node_set": "internal",
                              "amp": 150.0, "delay": 20.0, "duration": 50.0}
    cfg.write_text(json.dumps(sim))
    _convert(cfg, tmp_path / "m.json", "netbabel")
    d = load(tmp_path / "m.json")
    trains = d.cell_types["external"].params["spike_times"]
    assert sum(map(len, trains)) == times.size and trains[int(ids[0])][0] == pytest.approx(float(times[0]))
    clamps = {i.target: i for i in d.inputs}
    assert set(clamps) == {"internal_Exc", "internal_Inh"}
    assert clamps["internal_Exc"].type == "dc" and clamps["internal_Exc"].amplitude == 150.0
    assert (clamps["internal_Exc"].start, clamps["internal_Exc"].stop) == (20.0, 70.0)


@pytest.mark.parametrize("times, amplitudes", [
    ([20.0, 150.0, 300.0], [400.0, 600.0, 0.0]),  # contiguous steps: used to come back as [20, 150, 150, 300]
    ([20.0, 150.0], [400.0, -250.0]),  # the last step lasts until the end of the simulation
    ([20.1, 60.3, 150.7, 300.0], [400.0, 0.0, 100.0, 0.0]),  # a gap; times that are no multiples of a power of 2
])
def test_step_current_round_trip_is_exact(tmp_path, times, amplitudes):
    from netbabel.description import load

    cfg = circuits.point_circuit(tmp_path / "c")
    _convert(cfg, tmp_path / "m.json", "netbabel")
    model = json.loads((tmp_path / "m.json").read_text())
    model["inputs"] = [{"name": "in_step", "type": "step_current", "target": "internal_Exc",
                        "times": times, "amplitudes": amplitudes}]
    (tmp_path / "m.json").write_text(json.dumps(model))
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    clamps = [c for c in json.loads((tmp_path / "out/simulation_config.json").read_text())["inputs"].values()
              if c["input_type"] == "current_clamp"]
    # pA onto point neurons, as bmtk PointNet reads it; no pulse starts where the previous one of its clamp stops
    assert sorted(a for c in clamps for a in c["amp"]) == sorted(a for a in amplitudes if a != 0.0)
    for c in clamps:
        assert all(d + du < next_d for d, du, next_d in zip(c["delay"], c["duration"], c["delay"][1:]))
    _convert(tmp_path / "out", tmp_path / "again.json", "netbabel")
    (back,) = load(tmp_path / "again.json").inputs
    assert (back.type, back.target, back.times, back.amplitudes) == ("step_current", "internal_Exc", times, amplitudes)


def test_current_clamp_pulses_become_one_step_current(tmp_path):
    """Overlapping pulses add up (one IClamp each in bmtk BioNet), contiguous equal ones merge: no time twice."""
    from netbabel.description import load

    cfg = circuits.point_circuit(tmp_path / "c")
    sim = json.loads(cfg.read_text())
    sim["inputs"]["clamp"] = {"input_type": "current_clamp", "module": "IClamp", "node_set": "internal",
                              "amp": [100.0, 50.0, 200.0, 200.0], "delay": [20.0, 50.0, 80.0, 120.0],
                              "duration": [60.0, 30.0, 40.0, 10.0]}
    cfg.write_text(json.dumps(sim))
    _convert(cfg, tmp_path / "m.json", "netbabel")
    steps = [i for i in load(tmp_path / "m.json").inputs if i.target == "internal_Exc"]
    assert len(steps) == 1 and steps[0].type == "step_current"
    assert steps[0].times == [20.0, 50.0, 80.0, 130.0]
    assert steps[0].amplitudes == [100.0, 150.0, 200.0, 0.0]


BMTK_POINTNET = """
import sys
from bmtk.simulator import pointnet
conf = pointnet.Config.from_json(sys.argv[1])
conf.build_env()
pointnet.PointSimulator.from_config(conf, pointnet.PointNetwork.from_config(conf)).run()
"""


def test_exported_step_current_runs_in_bmtk_pointnet_as_in_nest(tmp_path):
    """Contiguous steps are written as two clamps (bmtk 1.2 PointNet would set one time twice)."""
    pytest.importorskip("bmtk", reason="bmtk is not installed (pip install bmtk)")
    import os
    import subprocess
    import sys

    from netbabel.spikereport import read_report

    # the reference circuit built with bmtk; the step current targets one of its two node types (a node set)
    reference = Path(__file__).resolve().parents[1] / "reference_models/sonata_pointnet/simulation_config.json"
    assert main(["convert", str(reference), "-o", str(tmp_path / "m.json"), "--sonata-workdir", str(tmp_path / "w")]) == 0
    model = json.loads((tmp_path / "m.json").read_text())
    model["simulation"]["duration"] = 300.0
    model["inputs"] = [{"name": "in_step", "type": "step_current", "target": "cortex_Exc",
                        "times": [20.0, 100.0, 200.0], "amplitudes": [-300.0, 250.0, 0.0]}]
    (tmp_path / "m.json").write_text(json.dumps(model))
    out = tmp_path / "out"
    _convert(tmp_path / "m.json", out, "sonata")
    run = subprocess.run([sys.executable, "-c", BMTK_POINTNET, "simulation_config.json"], cwd=out, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    with h5py.File(out / "output/spikes.h5") as f:
        ids, times = f["spikes/cortex/node_ids"][()], f["spikes/cortex/timestamps"][()]
    bmtk = sorted(zip(ids.tolist(), np.round(times, 6).tolist()))
    exc = times[ids < 200]
    assert (exc < 100.0).sum() < ((exc >= 100.0) & (exc < 200.0)).sum() / 2  # the steps act
    # bmtk PointNet connects its step_current_generator with a delay of dt and keeps the times: a step is in
    # the neuron one step after its SONATA delay (netbabel's NEST export: from the delay on, as NEURON's IClamp)
    model["inputs"][0]["times"] = [t + model["simulation"].get("dt", 0.1) for t in model["inputs"][0]["times"]]
    (tmp_path / "m.json").write_text(json.dumps(model))
    assert main(["simulate", str(tmp_path / "m.json"), "--backend", "nest", "-o", str(tmp_path / "nest.h5")]) == 0
    ours = sorted((int(i) + (200 if pop == "cortex_Inh" else 0), round(float(t), 6))
                  for pop, (pids, ptimes) in read_report(tmp_path / "nest.h5").items() if pop != "thalamus"
                  for i, t in zip(pids, ptimes))
    assert ours == bmtk


def test_export_without_edges_writes_no_edges_file(tmp_path):
    """A circuit with no projections and only current inputs has no edges file or edge types table."""
    doc = json.loads((Path(__file__).parent / "data/tiny.json").read_text())
    doc["projections"] = []
    doc["inputs"] = [i for i in doc["inputs"] if i["type"] == "dc"]
    (tmp_path / "m.json").write_text(json.dumps(doc))
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    network = tmp_path / "out/network"
    assert not list(network.glob("*edge*")), sorted(p.name for p in network.iterdir())
    circuit = json.loads((tmp_path / "out/circuit_config.json").read_text())
    assert circuit["networks"]["edges"] == []
    import libsonata

    config = libsonata.CircuitConfig.from_file(str(tmp_path / "out/circuit_config.json"))
    assert config.node_populations == {"A", "B"}
    assert config.edge_populations == set()


def test_export_evaluates_parameter_expressions(tmp_path):
    """Cell parameters given as expressions (Brunel's `tau_m`, `theta`) arrive in the dynamics params as numbers."""
    model = Path(__file__).parents[1] / "reference_models/brunel2000/brunel2000.json"
    assert main(["convert", str(model), "--set", "parameters.order=10", "--set", "parameters.tau_m=17.5",
                 "-o", str(tmp_path / "out"), "--to", "sonata"]) == 0
    params = [json.loads(p.read_text()) for p in (tmp_path / "out/components/point_neuron_models").glob("*.json")]
    assert params and all(p["tau_m"] == 17.5 and p["V_th"] == 20.0 for p in params)


def test_population_v_init_round_trips(tmp_path):
    """v_init (a distribution, a number) survives SONATA: per node as dynamics_params/V_m (netbabel's draws,
    which bmtk hands to NEST) and as the netbabel_v_init column, read back into the same description."""
    from netbabel.description import load
    from netbabel.instantiate import initial_potentials

    doc = json.loads((Path(__file__).parent / "data/tiny.json").read_text())
    doc["populations"]["A"]["v_init"] = {"distribution": "normal", "mean": "-65 - 2", "sd": 4.0}
    doc["populations"]["B"]["v_init"] = -68.5
    (tmp_path / "m.json").write_text(json.dumps(doc))
    _convert(tmp_path / "m.json", tmp_path / "out", "sonata")
    original = load(tmp_path / "m.json")
    with h5py.File(tmp_path / "out/network/nodes.h5") as f:
        np.testing.assert_array_equal(f["nodes/A/0/dynamics_params/V_m"][()], initial_potentials(original, "A"))
        np.testing.assert_array_equal(f["nodes/B/0/dynamics_params/V_m"][()], np.full(5, -68.5))
    _convert(tmp_path / "out/simulation_config.json", tmp_path / "back.json", "netbabel")
    back = load(tmp_path / "back.json")
    assert back.populations["A"].v_init.distribution == "normal"
    assert (back.populations["A"].v_init.mean, back.populations["A"].v_init.sd) == (-67.0, 4.0)
    assert back.populations["B"].v_init == -68.5
    np.testing.assert_array_equal(initial_potentials(back, "A"), initial_potentials(original, "A"))
