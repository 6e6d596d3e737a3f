"""NeuroML2 izhikevich2007Cell + expTwoSynapse <-> catalogue izhikevich2007_cond_beta, in jNeuroML and NEURON.

netbabel's NMODL cell (netbabel/nmodl/nb_izhikevich2007_cond_beta.mod) performs jLEMS's forward Euler
step operation for operation; what differs between the engines is when a synaptic event enters:

- DC input: no event timing involved: spike times identical (tolerance 1e-9 ms).
- Spike trains from a spike_generator population (spikeArray), times half a step after the grid so
  that jLEMS's float clock does not decide their step: the same source spikes.
- Connections between cells (a projection's expTwoSynapse on the cell): jLEMS delivers a delayed event
  at the first step whose accumulated float clock t (t += dt) reaches t_spike + delay. That is the
  nominal step or, when the float sum falls a hair short, the next one; NEURON delivers it on the
  nominal step. Each such onset may thus differ by one step, which moves the next spikes by a step or
  two: |dt_spike| <= 2 dt = 0.02 ms, same counts (measured: at most 1 step over 200 ms).
- Network with Poisson inputs (poissonFiringSynapse): jLEMS draws its own Poisson trains, and its input
  wrappers (poissonFiringSynapse, timedSynapticInput) pass the synaptic current to the cell with the
  driving force of the previous step, so spike-by-spike agreement is impossible by construction (see
  docs/neuroml.md). Compared instead: each population's mean rate over the run, the original LEMS file
  in jNeuroML against the imported description in NEURON. Tolerance: 20 % of the rate, from the
  seed-to-seed spread of the rates (measured, 250 ms: jNeuroML seeds 12345, 2, 3: RS 17.9, 17.5,
  18.4 Hz, FS 67.5, 76.0, 68.0 Hz; NetPyNE seeds 1-4: RS 18.8, 18.1, 17.4, 19.1 Hz, FS 76, 75, 74,
  74 Hz): the largest difference between two runs of either engine is 13 % (FS), and no difference
  between the engines stands out from it. Per neuron, the spike counts of the two engines correlate
  (Pearson r >= 0.6 required; measured between engines 0.79-0.94, between seeds of one engine 0.76-0.95).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.backends import neuroml as backend
from netbabel.cli import main
from netbabel.compare.exact import compare_exact
from netbabel.converters import neuroml as conv
from netbabel.description import io
from netbabel.description.catalogue import defaults
from netbabel.errors import UnsupportedFeature
from netbabel.exporters import neuroml as exporter
from netbabel.importers import neuroml as importer
from netbabel.spikereport import read_report

DATA = Path(__file__).parent / "data" / "neuroml"
NETBABEL = str(Path(sys.executable).parent / "netbabel")
FS = {"V_m": -55.0, "C_m": 20.0, "k": 1.0, "V_r": -55.0, "V_t": -40.0, "V_peak": 25.0, "a": 0.2, "b": -2.0,
      "V_reset": -45.0, "d": 0.0}
java = pytest.mark.skipif(shutil.which("java") is None, reason="jNeuroML needs Java")


def read(source: Path, tmp_path: Path):
    return importer.read(str(source), argparse.Namespace(neuroml_workdir=str(tmp_path / "import")))


def simulate(model: Path, backend_name: str, out: Path, *extra: str) -> dict:
    run = subprocess.run([NETBABEL, "simulate", str(model), "--backend", backend_name, "-o", str(out), *extra],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return read_report(out)


def two_cells(tmp_path: Path) -> Path:
    """An RS cell driven by DC excites an FS cell, which inhibits it back (delays 1.3 ms); a third cell
    (D) gets DC and an excitatory and an inhibitory spike train from a spike_generator (S), a fourth (C)
    DC only."""
    rng = np.random.default_rng(3)
    # half a step after the grid: jLEMS's float clock (t += dt) cannot decide the step of a source spike
    times = [round(t + 0.005, 4) for t in sorted(set(np.round(rng.uniform(0, 190, 80), 2).tolist()))]
    data = {"netbabel": "1", "name": "pair07",
            "cell_types": {"rs": {"model": "izhikevich2007_cond_beta", "params": {}},
                           "fs": {"model": "izhikevich2007_cond_beta", "params": FS},
                           "src": {"model": "spike_generator", "params": {"spike_times": times}}},
            "synapse_types": {"ex": {"model": "static", "receptor": "excitatory"},
                              "in": {"model": "static", "receptor": "inhibitory"}},
            "populations": {"E": {"cell_type": "rs", "size": 1}, "I": {"cell_type": "fs", "size": 1},
                            "D": {"cell_type": "rs", "size": 1}, "S": {"cell_type": "src", "size": 1},
                            "C": {"cell_type": "rs", "size": 1}},
            "projections": [
                {"source": "E", "target": "I", "synapse_type": "ex", "rule": {"type": "all_to_all"},
                 "weight": 5.0, "delay": 1.3},
                {"source": "I", "target": "E", "synapse_type": "in", "rule": {"type": "all_to_all"},
                 "weight": 5.0, "delay": 1.3},
                {"source": "S", "target": "D", "synapse_type": "ex", "rule": {"type": "all_to_all"},
                 "weight": 4.0, "delay": 0.7, "name": "S_D_ex"},
                {"source": "S", "target": "D", "synapse_type": "in", "rule": {"type": "all_to_all"},
                 "weight": 2.0, "delay": 2.0, "name": "S_D_in"}],
            "inputs": [{"type": "dc", "target": "E", "amplitude": 300.0, "start": 5.0},
                       {"type": "dc", "target": "D", "amplitude": 250.0, "start": 20.0, "stop": 150.0},
                       {"type": "dc", "target": "C", "amplitude": 250.0, "start": 20.0, "stop": 150.0}],
            "simulation": {"duration": 200.0, "dt": 0.01, "seed": 1}}
    path = tmp_path / "pair07.json"
    path.write_text(json.dumps(data))
    return path


# -- catalogue and converters -------------------------------------------------------------------------------

def test_cell_and_synapse_map_to_neuroml_and_back():
    params = {**defaults("izhikevich2007_cond_beta"), **FS, "tau_rise_in": 2.0}
    nml_type, attrs = conv.cell_to_neuroml("izhikevich2007_cond_beta", params)
    assert nml_type == "izhikevich2007Cell"
    assert attrs == {"v0": "-55.0mV", "C": "20.0pF", "k": "1.0nS_per_mV", "vr": "-55.0mV", "vt": "-40.0mV",
                     "vpeak": "25.0mV", "a": "0.2per_ms", "b": "-2.0nS", "c": "-45.0mV", "d": "0.0pA"}
    units = conv.DIMENSIONAL_CELL_ATTRS["izhikevich2007Cell"]
    back = conv.izhikevich2007_from_neuroml({k: conv.quantity_in(v, units[k]) for k, v in attrs.items()})
    assert back == {k: params[k] for k in back}
    syn_type, syn = conv.synapse_to_neuroml("izhikevich2007_cond_beta", params, "inhibitory")
    assert (syn_type, syn) == ("expTwoSynapse", {"gbase": "1nS", "erev": "-80.0mV", "tau_rise": "2.0ms",
                                                 "tau_decay": "10.0ms"})
    assert conv.weight_to_neuroml("izhikevich2007_cond_beta", 2.5) == 2.5  # nS, gbase 1 nS
    for bad in ({"U_m": 5.0}, {"I_e": 10.0}):
        with pytest.raises(UnsupportedFeature, match="U_m|I_e"):
            conv.cell_to_neuroml("izhikevich2007_cond_beta", {**params, **bad})


@pytest.mark.parametrize("target", ["nest", "pynn"])
def test_nest_and_pynn_exports_refuse_with_the_backends_that_run_it(tmp_path, capsys, target):
    model = two_cells(tmp_path)
    assert main(["convert", str(model), "-o", str(tmp_path / "out"), "--to", target]) == 2
    err = capsys.readouterr().err
    assert "izhikevich2007_cond_beta" in err and "netpyne" in err and "neuroml" in err
    assert "/populations/E/cell_type" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# -- NeuroML2 import and round trip -------------------------------------------------------------------------

def test_network_import_maps_cells_synapses_connections_and_poisson_inputs(tmp_path):
    d = read(DATA / "LEMS_izhikevich2007_network.xml", tmp_path)
    rs, fs = d.cell_types["rs"], d.cell_types["fs"]
    assert rs.model == fs.model == "izhikevich2007_cond_beta"
    assert rs.params == {"V_m": -60.0, "C_m": 100.0, "k": 0.7, "V_r": -60.0, "V_t": -40.0, "V_peak": 35.0,
                         "a": 0.03, "b": -2.0, "V_reset": -50.0, "d": 100.0, "U_m": 0.0, "I_e": 0.0,
                         "tau_rise_ex": 0.5, "tau_decay_ex": 5.0, "E_ex": 0.0,
                         "tau_rise_in": 1.0, "tau_decay_in": 10.0, "E_in": -80.0}
    assert fs.params["C_m"] == 20.0 and fs.params["tau_decay_in"] == 10.0
    assert {p.name: (p.source, p.target, p.synapse_type) for p in d.projections} == {
        "RS_RS": ("RS", "RS", "excitatory"), "RS_FS": ("RS", "FS", "excitatory"),
        "FS_RS": ("FS", "RS", "inhibitory"), "FS_FS": ("FS", "FS", "inhibitory")}
    edges = exporter.read_edges(d, d.projections[2].rule.file, "FS_RS")
    assert len(edges["source"]) > 50
    assert np.all(edges["weight"] >= 1.0) and np.all(edges["weight"] <= 3.0)  # weight 1-3 x gbase 1 nS
    assert np.all(np.isclose(edges["delay"] * 10, np.round(edges["delay"] * 10)))
    inputs = {i.name: (i.type, i.target, i.rate, i.weight, i.synapse_type) for i in d.inputs}
    assert inputs == {"bg_RS_in": ("poisson", "RS", 1200.0, 0.5, "excitatory"),
                      "bg_FS_in": ("poisson", "FS", 50.0, 0.5, "excitatory")}  # weight 1 x gbase 0.5 nS
    assert (d.simulation.duration, d.simulation.dt) == (250.0, 0.01)


def test_round_trip_neuroml_description_neuroml(tmp_path):
    d = read(DATA / "LEMS_izhikevich2007_network.xml", tmp_path)
    out = tmp_path / "nml"
    exporter.export(d, out)  # validates against the NeuroML2 schema
    text = (out / "izhikevich2007_network.net.nml").read_text()
    assert text.count("<izhikevich2007Cell") == 2 and text.count("<expTwoSynapse") == 4
    assert text.count("<poissonFiringSynapse") == 2
    again = read(out / "LEMS_izhikevich2007_network.xml", tmp_path / "again")
    assert {k: (c.model, c.params) for k, c in again.cell_types.items()} == \
        {k: (c.model, c.params) for k, c in d.cell_types.items()}
    assert [(i.name, i.rate, i.weight) for i in again.inputs] == [(i.name, i.rate, i.weight) for i in d.inputs]
    for p, q in zip(d.projections, again.projections):
        a, b = (exporter.read_edges(x, y.rule.file, y.name) for x, y in ((d, p), (again, q)))
        for key in ("source", "target", "weight", "delay"):
            np.testing.assert_array_equal(np.sort(a[key]), np.sort(b[key]))


def test_other_synapses_onto_izhikevich2007_cell_are_refused(tmp_path, capsys):
    src = DATA / "izhikevich2007_poisson.net.nml"
    bad = tmp_path / "exp_one.net.nml"
    bad.write_text(src.read_text().replace('<expTwoSynapse id="ampa" gbase="1nS" erev="0mV" tauRise="0.5ms" '
                                           'tauDecay="3ms"/>',
                                           '<expOneSynapse id="ampa" gbase="1nS" erev="0mV" tauDecay="3ms"/>'))
    assert "expOneSynapse" in bad.read_text()
    assert main(["convert", str(bad), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "izhikevich2007Cell id='rs07'" in err and "expTwoSynapse" in err and str(bad) in err
    assert not (tmp_path / "out.json").exists()


def test_small_poisson_model_imports(tmp_path):
    d = read(DATA / "izhikevich2007_poisson.net.nml", tmp_path)
    assert d.cell_types["rs07"].params["tau_decay_ex"] == 3.0
    assert d.inputs[0].type == "poisson" and d.inputs[0].rate == 150.0


# -- simulation: jNeuroML vs NEURON --------------------------------------------------------------------------

@java
def test_single_cells_and_pair_jneuroml_vs_netpyne(tmp_path):
    model = two_cells(tmp_path)
    jnml = simulate(model, "neuroml", tmp_path / "jnml.h5")
    nrn = simulate(model, "netpyne", tmp_path / "nrn.h5")
    assert len(jnml["D"][0]) >= 5 and len(jnml["E"][0]) >= 3 and len(jnml["I"][0]) >= 10
    np.testing.assert_allclose(np.sort(nrn["S"][1]), np.sort(jnml["S"][1]), atol=1e-9)  # the same source spikes
    assert len(jnml["C"][0]) >= 5
    np.testing.assert_allclose(np.sort(nrn["C"][1]), np.sort(jnml["C"][1]), atol=1e-9)  # DC only: identical
    result = compare_exact(jnml, nrn, tolerance=0.02 + 1e-9)
    assert result.identical, result.to_dict()


@java
def test_network_original_in_jneuroml_vs_import_in_netpyne(tmp_path):
    original = tmp_path / "original"
    original.mkdir()
    for name in ("izhikevich2007_network.net.nml", "LEMS_izhikevich2007_network.xml"):
        shutil.copy(DATA / name, original / name)
    backend.run_jneuroml(original / "LEMS_izhikevich2007_network.xml", tmp_path)
    d = read(DATA / "LEMS_izhikevich2007_network.xml", tmp_path)
    model = tmp_path / "izh.json"
    model.write_text(io.dumps(d, "json"))
    nrn = simulate(model, "netpyne", tmp_path / "nrn.h5")
    duration = d.simulation.duration / 1000.0
    for pop, size in (("RS", 32), ("FS", 8)):
        spikes = np.loadtxt(original / f"{pop}.spikes", ndmin=2)
        rate_jnml = len(spikes) / size / duration
        rate_nrn = len(nrn[pop][0]) / size / duration
        assert rate_jnml > 5.0, (pop, rate_jnml)
        assert abs(rate_nrn - rate_jnml) <= 0.2 * rate_jnml, (pop, rate_jnml, rate_nrn)
        # per neuron: the same cells fire more (in-degrees of the imported connections)
        counts_jnml = np.bincount(spikes[:, 0].astype(int), minlength=size)
        counts_nrn = np.bincount(nrn[pop][0].astype(int), minlength=size)
        assert np.corrcoef(counts_jnml, counts_nrn)[0, 1] >= 0.6, (pop, counts_jnml, counts_nrn)


def test_spike_generator_poisson_population_with_projection_imports(tmp_path):
    """The other NeuroML style of Poisson drive: a spikeGeneratorPoisson population and a projection."""
    text = (DATA / "izhikevich2007_poisson.net.nml").read_text()
    text = text.replace('<poissonFiringSynapse id="bg" averageRate="150Hz" synapse="ampa" spikeTarget="./ampa"/>',
                        '<spikeGeneratorPoisson id="bg" averageRate="150Hz"/>')
    start, end = text.index('<inputList id="background"'), text.index("</inputList>") + len("</inputList>")
    text = text[:start] + '''<population id="BG" component="bg" size="3"/>
        <projection id="BG_RS" presynapticPopulation="BG" postsynapticPopulation="RS" synapse="ampa">
            <connectionWD id="0" preCellId="../BG[0]" postCellId="../RS[0]" weight="1.5" delay="0.5ms"/>
            <connectionWD id="1" preCellId="../BG[1]" postCellId="../RS[1]" weight="1.5" delay="0.5ms"/>
            <connectionWD id="2" preCellId="../BG[2]" postCellId="../RS[2]" weight="1.5" delay="0.5ms"/>
        </projection>''' + text[end:]
    src = tmp_path / "sgp.net.nml"
    src.write_text(text)
    d = read(src, tmp_path)
    assert d.cell_types["bg"].model == "poisson_generator" and d.cell_types["bg"].params == {"rate": 150.0}
    assert d.cell_types["rs07"].model == "izhikevich2007_cond_beta"
    proj = next(p for p in d.projections if p.name == "BG_RS")
    assert (proj.source, proj.target, proj.synapse_type, proj.weight, proj.delay) == \
        ("BG", "RS", "excitatory", 1.5, 0.5)
