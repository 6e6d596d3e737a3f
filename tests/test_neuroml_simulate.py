"""NeuroML2 models simulated in jNeuroML / NEURON (via jNeuroML) / PyLEMS against NEST / NetPyNE.

Tolerances (stated and justified):
- IaF network (conductance-based LIF): jLEMS integrates with forward Euler at dt = 0.01 ms, NEST's
  iaf_cond_exp with an adaptive Runge-Kutta solver and detects threshold crossings at the end of a
  step; each side places a spike on the dt grid, so one spike may differ by up to 2 dt, and the
  Euler error shifts later spikes by a few dt over 200 ms: |dt_spike| <= 0.05 ms (5 steps), same counts.
- Izhikevich cells: both use the 2003 update at dt = 0.01 ms; 5 steps as above. The NEST export puts
  the dc_generator's current into the neuron from the description's `start` on (generator one step
  early, delay dt), as NeuroML2's pulseGenerator does, so no onset shift is needed.
- Ball-and-stick cell in NEURON: jNeuroML's NMODL computes the HH rates exactly while NEURON's built-in
  hh (NetPyNE run) interpolates them from tables; the difference accumulates to ~0.05 ms per spike:
  |dt_spike| <= 0.5 ms over 70 ms, same counts.
- PyLEMS vs jNeuroML: the same LEMS equations and Euler scheme, spikes on the same dt grid; the
  two engines order the updates of an alpha synapse's two states differently within a step:
  |dt_spike| <= 1 dt.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.backends import neuroml as backend
from netbabel.description import io
from netbabel.importers import neuroml as importer
from netbabel.spikereport import read_report

DATA = Path(__file__).parent / "data" / "neuroml"
NETBABEL = str(Path(sys.executable).parent / "netbabel")

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="jNeuroML needs Java")


def import_to_json(source: Path, tmp_path: Path, **simulation) -> Path:
    d = importer.read(str(source), argparse.Namespace(neuroml_workdir=str(tmp_path / "import")))
    for key, value in simulation.items():
        setattr(d.simulation, key, value)
    out = tmp_path / f"{d.name}.json"
    out.write_text(io.dumps(d, "json"))
    return out


def simulate(model: Path, backend_name: str, out: Path, *extra: str) -> dict:
    run = subprocess.run([NETBABEL, "simulate", str(model), "--backend", backend_name, "-o", str(out), *extra],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return read_report(out)


def assert_same_spikes(a: dict, b: dict, tolerance: float, until: float = np.inf) -> None:
    for pop in a:
        ids_a, t_a = a[pop]
        ids_b, t_b = b[pop]
        for cell in np.unique(np.concatenate([ids_a, ids_b])):
            ta = np.sort(t_a[(ids_a == cell) & (t_a < until)])
            tb = np.sort(t_b[(ids_b == cell) & (t_b < until)])
            assert len(ta) == len(tb), (pop, cell, ta, tb)
            if len(ta):
                assert np.max(np.abs(ta - tb)) <= tolerance, (pop, cell, ta, tb)


def test_iaf_network_jneuroml_original_vs_nest_import(tmp_path):
    """The original LEMS file run by jNeuroML == the imported description run by NEST."""
    original = tmp_path / "original"
    shutil.copytree(DATA, original)
    backend.run_jneuroml(original / "LEMS_iaf_network.xml", tmp_path)
    jnml = {}
    for pop in ("Pyr", "Bask"):
        data = np.loadtxt(original / f"{pop}.spikes", ndmin=2)
        jnml[pop] = (data[:, 0].astype(int), data[:, 1] * 1000.0)
    model = import_to_json(DATA / "LEMS_iaf_network.xml", tmp_path)
    nest = simulate(model, "nest", tmp_path / "nest.h5")
    assert len(jnml["Pyr"][0]) > 30 and len(jnml["Bask"][0]) >= 2
    assert_same_spikes(jnml, {p: nest[p] for p in jnml}, tolerance=0.05)
    # the imported model exported again, as NeuroML2 HDF5, and run by jNeuroML: the original's spikes
    d = io.load(model)
    backend.run(d, tmp_path / "h5.h5", argparse.Namespace(backend="neuroml", neuroml_hdf5="always", mode="native",
                                                          workdir=str(tmp_path / "h5work")))
    assert list((tmp_path / "h5work" / "model").glob("*.net.nml.h5"))
    again = read_report(tmp_path / "h5.h5")
    assert_same_spikes(jnml, {p: again[p] for p in jnml}, tolerance=1e-6)


def test_izhikevich_cells_jneuroml_vs_nest(tmp_path):
    model = import_to_json(DATA / "izhikevich_network.net.nml", tmp_path, duration=200.0, dt=0.01)
    jnml = simulate(model, "neuroml", tmp_path / "jnml.h5")
    nest = simulate(model, "nest", tmp_path / "nest.h5")
    assert {p: len(v[0]) for p, v in jnml.items()} == {"RS": 14, "FS": 40, "CH": 24}
    assert_same_spikes(jnml, nest, tolerance=0.05)


def test_multicompartment_neuron_export_vs_netpyne(tmp_path):
    """jNeuroML's NEURON export (patched Poisson NMODL compiled) vs netbabel's NetPyNE model in NEURON."""
    d = importer.read(str(DATA / "mc_cell.net.nml"), argparse.Namespace(neuroml_workdir=str(tmp_path / "imp")))
    d.simulation.duration, d.simulation.dt = 90.0, 0.025
    from netbabel.description.model import Input, SynapseSite, SynapseType
    # a late Poisson input (after the compared window) makes jNeuroML write its Poisson NMODL
    d.cell_types["ballstick"].synapses = {"ampa": SynapseSite("ExpSyn", "dend", 0.5, {"tau": 2.0, "e": 0.0})}
    d.synapse_types["ampa"] = SynapseType(receptor="excitatory", site="ampa")
    d.inputs.append(Input(type="poisson", target="cells", name="late", rate=100.0, indegree=1, weight=0.001,
                          delay=0.025, synapse_type="ampa", start=80.0))
    model = tmp_path / "mc.json"
    model.write_text(io.dumps(d, "json"))
    neuron = simulate(model, "neuroml-neuron", tmp_path / "nrn.h5", "--workdir", str(tmp_path / "work"))
    netpyne = simulate(model, "netpyne", tmp_path / "netpyne.h5")
    assert len(neuron["cells"][0][neuron["cells"][1] < 80]) >= 3
    assert_same_spikes(neuron, netpyne, tolerance=0.5, until=80.0)
    patched = (tmp_path / "work" / "model" / "late_gen.mod").read_text()
    assert "static_cast<Rand*>" in patched and "void* nrn_random_arg" not in patched
    assert '"cells": "pop_cells"' in (tmp_path / "work" / "model" / "netbabel_ids.json").read_text()  # safe hoc id


def test_pylems_single_cell_vs_jneuroml(tmp_path):
    data = {"netbabel": "1", "name": "one_cell",
            "cell_types": {"lif": {"model": "iaf_psc_exp", "params": {"I_e": 500.0, "tau_m": 10.0}}},
            "populations": {"E": {"cell_type": "lif", "size": 1}},
            "simulation": {"duration": 60.0, "dt": 0.05, "seed": 1}}
    model = tmp_path / "one.json"
    import json
    model.write_text(json.dumps(data))
    pylems = simulate(model, "neuroml-pylems", tmp_path / "pylems.h5")
    jnml = simulate(model, "neuroml", tmp_path / "jnml.h5")
    assert len(jnml["E"][0]) == 3
    assert_same_spikes(jnml, pylems, tolerance=0.05 + 1e-9)


def test_pylems_network_vs_jneuroml(tmp_path):
    """A point-neuron network in PyLEMS (patched: input paths, weights, delays, per-cell callbacks, spike
    files): spike trains from netbabel's frozen Poisson input with weights, a delayed all-to-all
    projection onto conductance cells with a DC pulse. Same spikes as jNeuroML within one step (the
    alpha synapse's state order differs slightly between the two engines)."""
    import json
    data = {"netbabel": "1", "name": "net",
            "cell_types": {"lif": {"model": "iaf_psc_exp", "params": {}},
                           "cond": {"model": "iaf_cond_alpha", "params": {}}},
            "synapse_types": {"exc": {"model": "static", "receptor": "excitatory"}},
            "populations": {"A": {"cell_type": "lif", "size": 2}, "B": {"cell_type": "cond", "size": 2}},
            "projections": [{"source": "A", "target": "B", "synapse_type": "exc", "rule": {"type": "all_to_all"},
                             "weight": 30.0, "delay": 1.5}],
            "inputs": [{"name": "drive", "type": "poisson", "target": "A", "rate": 8000.0, "indegree": 1,
                        "weight": 30.0, "delay": 1.0, "synapse_type": "exc"},
                       {"name": "bias", "type": "dc", "target": "B", "amplitude": 300.0, "start": 5.0, "stop": 30.0}],
            "simulation": {"duration": 40.0, "dt": 0.1, "seed": 1, "record": {"spikes": "all"}}}
    model = tmp_path / "net.json"
    model.write_text(json.dumps(data))
    pylems = simulate(model, "neuroml-pylems", tmp_path / "pylems.h5", "--mode", "frozen")
    jnml = simulate(model, "neuroml", tmp_path / "jnml.h5", "--mode", "frozen")
    assert len(jnml["A"][0]) == 4 and len(jnml["B"][0]) == 4
    assert_same_spikes(jnml, pylems, tolerance=0.1 + 1e-9)
    # without the delay (PyLEMS ignored it) B would fire 0.1 ms after A
    assert np.min(pylems["B"][1]) >= np.min(pylems["A"][1]) + 1.5


def test_frozen_round_trip_is_spike_identical_in_nest(tmp_path):
    """tiny.json -> NeuroML2 (frozen: explicit edges, netbabel's Poisson trains) -> description: NEST gives
    the same spikes as for the original in frozen mode (exact: same cells, edges, weights, delays, trains)."""
    tiny = Path(__file__).parent / "data" / "tiny.json"
    out = tmp_path / "nml"
    from netbabel.cli import main
    assert main(["convert", str(tiny), "-o", str(out), "--to", "neuroml", "--mode", "frozen"]) == 0
    model = import_to_json(out / "LEMS_tiny.xml", tmp_path)
    original = simulate(tiny, "nest", tmp_path / "original.h5", "--mode", "frozen")
    again = simulate(model, "nest", tmp_path / "again.h5")
    assert len(original["A"][0]) > 100
    for pop in original:
        order_a = np.lexsort((original[pop][0], original[pop][1]))
        order_b = np.lexsort((again[pop][0], again[pop][1]))
        np.testing.assert_array_equal(original[pop][1][order_a], again[pop][1][order_b])
        np.testing.assert_array_equal(original[pop][0][order_a], again[pop][0][order_b])


def test_v_m_report_against_nest(tmp_path):
    """V_m recording: the neuroml backends write the NEST backend's membrane report (<stem>_v.h5, mV,
    samples at dt, 2 dt, ...). One iaf_psc_exp cell, a 300 pA DC pulse from 20 to 80 ms (below threshold):
    jLEMS (forward Euler) follows NEST's exact integration within 0.03 mV once its one-step later onset is
    accounted for (its pulseGenerator acts from the step after `start`, NEST's from `start`); PyLEMS
    writes the same values as jLEMS."""
    import json
    import h5py
    data = {"netbabel": "1", "name": "vm", "cell_types": {"c": {"model": "iaf_psc_exp", "params": {}}},
            "populations": {"P": {"cell_type": "c", "size": 2}},
            "inputs": [{"name": "step", "type": "dc", "target": "P", "amplitude": 300.0, "start": 20.0, "stop": 80.0}],
            "simulation": {"duration": 100.0, "dt": 0.1, "seed": 1,
                           "record": {"spikes": "all", "v": [{"population": "P", "ids": [1]}]}}}
    model = tmp_path / "vm.json"
    model.write_text(json.dumps(data))
    traces = {}
    for name in ("nest", "neuroml", "neuroml-pylems"):
        simulate(model, name, tmp_path / f"{name}.h5")
        with h5py.File(tmp_path / f"{name}_v.h5") as f:
            assert list(f["report/P/mapping/node_ids"][()]) == [1]
            assert f["report/P/data"].attrs["units"] == "mV"
            traces[name] = f["report/P/data"][()][:, 0]
    nest, jlems = traces["nest"], traces["neuroml"]
    assert len(jlems) == 1000 and len(nest) >= 999  # NEST does not sample at the end time
    assert np.all(jlems[:200] == -70.0) and jlems[199 + 300] > -60.0  # rises by 0.3 nA x 40 MOhm = 12 mV
    np.testing.assert_allclose(jlems[1:790], nest[:789], atol=0.03)  # one step later onset
    np.testing.assert_allclose(traces["neuroml-pylems"], jlems, atol=1e-4)


def test_aeif_cond_exp_jneuroml_vs_nest(tmp_path):
    """aeif_cond_exp -> EIF_cond_exp_isfa_ista under DC at dt 0.01 ms. jNeuroML: NEST's five spikes within
    0.6 ms (forward Euler vs NEST's adaptive RKF45; the error grows by about 0.1 ms per interspike interval);
    with `a` left in nS instead of PyNN.xml's uS, the 1000x adaptation keeps the cell silent. jNeuroML's
    NEURON export of this cell runs away at the first spike: refused (exit 2)."""
    import json
    data = {"netbabel": "1", "name": "aeif", "cell_types": {"c": {"model": "aeif_cond_exp", "params": {}}},
            "populations": {"P": {"cell_type": "c", "size": 1}},
            "inputs": [{"name": "step", "type": "dc", "target": "P", "amplitude": 800.0, "start": 10.0,
                        "stop": 190.0}],
            "simulation": {"duration": 200.0, "dt": 0.01, "seed": 1, "record": {"spikes": "all"}}}
    model = tmp_path / "aeif.json"
    model.write_text(json.dumps(data))
    nest = simulate(model, "nest", tmp_path / "nest.h5")
    jnml = simulate(model, "neuroml", tmp_path / "jnml.h5")
    assert len(nest["P"][1]) == 5
    assert_same_spikes(nest, jnml, tolerance=0.6)
    run = subprocess.run([NETBABEL, "simulate", str(model), "--backend", "neuroml-neuron", "-o",
                          str(tmp_path / "nrn.h5")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "/cell_types/c" in run.stderr and "1e27 mV" in run.stderr


def test_neuron_export_of_zero_refractory_period(tmp_path):
    """jNeuroML's NEURON export refuses tau_refrac = 0 (iaf_psc_exp with t_ref 0): netbabel writes 1.5 dt,
    the shortest period its WATCH-based regime switch ends (second step after a spike). Same spike count as
    NEST, the first spike at NEST's time, each interspike interval at most 2 steps longer."""
    import json
    data = {"netbabel": "1", "name": "tref0",
            "cell_types": {"c": {"model": "iaf_psc_exp", "params": {"t_ref": 0.0, "I_e": 600.0}}},
            "populations": {"P": {"cell_type": "c", "size": 1}},
            "simulation": {"duration": 60.0, "dt": 0.025, "seed": 1, "record": {"spikes": "all"}}}
    model = tmp_path / "tref0.json"
    model.write_text(json.dumps(data))
    nest = simulate(model, "nest", tmp_path / "nest.h5")["P"][1]
    neuron = simulate(model, "neuroml-neuron", tmp_path / "nrn.h5", "--workdir", str(tmp_path / "work"))["P"][1]
    assert 'tau_refrac="0.0375"' in (tmp_path / "work" / "model" / "tref0.net.nml").read_text()
    assert len(nest) == len(neuron) == 6
    assert abs(neuron[0] - nest[0]) <= 0.025 + 1e-9
    assert np.all(np.abs(np.diff(neuron) - np.diff(nest)) <= 2 * 0.025 + 1e-9)
