"""Description -> NeuroML2 -> description, and what NeuroML2 cannot express (refused, never dropped).

Round trip: equal for cell types (all parameters, catalogue defaults filled in), populations (sizes,
positions), explicit projections (every edge's source, target, weight and delay, and its receptor),
DC inputs, Poisson inputs (rate, weight, receptor), spike sources, multicompartment cells (sections,
3-D points, nseg, Ra, cm, hh / pas, ions, spike threshold, ExpSyn sites) and the simulation
(duration, dt, seed, temperature).

Not expressible in NeuroML2 (documented, refused or normalised):
- delta synapses (iaf_psc_delta, izhikevich with incoming connections or Poisson/spike inputs): refused;
- v_init distributions (a scalar v_init becomes a copy of the cell component), per-cell spike_generator trains, plastic synapse types, V_min: refused;
- NMODL-only mechanisms (anything but NEURON's hh and pas): refused;
- synapse type names (NeuroML2 keeps the synapse, netbabel names it `excitatory`/`inhibitory`) and the
  delay of Poisson inputs (NeuroML2 Poisson inputs have none; it comes back as one time step);
- a step_current comes back as one dc input per step.
"""

import argparse
import copy
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.cli import main
from netbabel.description import Description
from netbabel.description.catalogue import MODELS, defaults
from netbabel.errors import UnsupportedFeature
from netbabel.exporters import neuroml as exporter
from netbabel.importers import neuroml as importer
from netbabel.instantiate.writer import EdgePopulationWriter

POINT_MODELS = ["iaf_psc_exp", "iaf_psc_alpha", "iaf_cond_exp", "iaf_cond_alpha", "aeif_cond_exp",
                "hh_cond_exp_traub"]


def _edges(path: Path, projections: dict) -> None:
    rng = np.random.default_rng(5)
    with h5py.File(path, "w") as f:
        for name, (src_pop, ns, tgt_pop, nt, sign) in projections.items():
            n = 12
            src, tgt = rng.integers(0, ns, n), np.sort(rng.integers(0, nt, n))
            w = sign * np.round(rng.uniform(0.5, 5.0, n), 3)
            d = rng.choice([0.5, 1.0, 1.5], n)
            writer = EdgePopulationWriter(f, name, src_pop, tgt_pop, ns, nt)
            writer.append(src, tgt, w, d)
            writer.finish()


def point_model(tmp_path: Path) -> Description:
    cell_types = {m: {"model": m, "params": {"C_m": 200.0 + 10 * k, "I_e": 5.0 * k}}
                  for k, m in enumerate(POINT_MODELS)}
    cell_types["iaf_psc_exp"]["params"].update({"tau_syn_ex": 1.5, "tau_syn_in": 4.0, "V_m": -68.0})
    cell_types["iaf_cond_exp"]["params"].update({"g_L": 16.6667, "E_in": -75.0})
    cell_types["delta"] = {"model": "iaf_psc_delta", "params": {"tau_m": 15.0}}
    cell_types["izh"] = {"model": "izhikevich", "params": {"a": 0.1, "d": 2.0}}
    cell_types["poisson"] = {"model": "poisson_generator", "params": {"rate": 20.0, "start": 5.0, "stop": 80.0}}
    cell_types["volley"] = {"model": "spike_generator", "params": {"spike_times": [3.0, 7.5, 20.0]}}
    populations = {m: {"cell_type": m, "size": 3 + k % 2} for k, m in enumerate(cell_types)}
    np.savetxt(tmp_path / "pos.csv", [[0, 1, 2], [3, 4, 5.5], [6, 7, 8]], delimiter=",")
    populations["iaf_psc_exp"]["positions"] = {"type": "file", "file": "pos.csv"}
    sizes = {m: p["size"] for m, p in populations.items()}
    projs = {"exc_to_psc": ("iaf_cond_exp", "iaf_psc_exp", 1.0), "inh_to_psc": ("iaf_psc_alpha", "iaf_psc_exp", -1.0),
             "to_alpha": ("poisson", "iaf_psc_alpha", 1.0), "to_cond": ("volley", "iaf_cond_exp", 1.0),
             "inh_to_cond": ("iaf_psc_exp", "iaf_cond_exp", 1.0), "to_calpha": ("iaf_psc_exp", "iaf_cond_alpha", 1.0),
             "to_aeif": ("iaf_psc_exp", "aeif_cond_exp", 1.0), "to_hh": ("iaf_psc_exp", "hh_cond_exp_traub", 1.0)}
    _edges(tmp_path / "edges.h5", {n: (s, sizes[s], t, sizes[t], sign) for n, (s, t, sign) in projs.items()})
    projections = []
    for name, (s, t, sign) in projs.items():
        receptor = "inh" if name.startswith("inh") else "exc"
        projections.append({"name": name, "source": s, "target": t, "synapse_type": receptor, "weight": sign,
                            "delay": 1.0, "rule": {"type": "explicit", "file": "edges.h5", "population": name}})
    data = {"netbabel": "1", "name": "roundtrip", "cell_types": cell_types,
            "synapse_types": {"exc": {"receptor": "excitatory"}, "inh": {"receptor": "inhibitory"}},
            "populations": populations, "projections": projections,
            "inputs": [{"name": "bias", "type": "dc", "target": "izh", "amplitude": 7.0, "start": 10.0, "stop": 50.0},
                       {"name": "kick", "type": "dc", "target": "delta", "amplitude": 300.0, "start": 0.0},
                       {"name": "noise", "type": "poisson", "target": "iaf_cond_alpha", "rate": 500.0, "indegree": 1,
                        "weight": 2.5, "delay": 0.05, "synapse_type": "exc"}],
            "simulation": {"duration": 100.0, "dt": 0.05, "seed": 11}}
    return Description.from_dict(data, base_dir=tmp_path)


def roundtrip(d: Description, tmp_path: Path, hdf5: str = "never") -> tuple[Description, Path]:
    out = tmp_path / "nml"
    result = exporter.export(d, out, argparse.Namespace(mode="native", neuroml_hdf5=hdf5))
    back = importer.read(str(result.lems_file), argparse.Namespace(neuroml_workdir=str(tmp_path / "imported")))
    return back, result.network_file


def _receptors(d: Description, proj) -> str:
    return d.synapse_types[proj.synapse_type].receptor if proj.synapse_type else "by sign"


def _edge_table(d: Description, proj) -> np.ndarray:
    e = exporter.read_edges(d, proj.rule.file, proj.rule.population or proj.name)
    table = np.stack([e["source"], e["target"], e["weight"], e["delay"]], axis=1)
    return table[np.lexsort(table.T[::-1])]


def assert_same(a: Description, b: Description, edge_rtol: float = 1e-12) -> None:
    for name, cell in a.cell_types.items():
        other = b.cell_types[name]
        assert other.model == cell.model, name
        if cell.model in MODELS:
            want = {**defaults(cell.model), **{k: a.value(v) if not isinstance(v, list) else v
                                               for k, v in cell.params.items()}}
            got = {**defaults(cell.model), **other.params}
            for key in want:
                if key in ("V_min", "refractory_input", "consistent_integration", "origin", "spike_file"):
                    continue
                assert got[key] == pytest.approx(want[key], rel=1e-12), (name, key)
    assert sorted(b.populations) == sorted(a.populations)  # HDF5 stores groups sorted by name
    for name, pop in a.populations.items():
        assert b.size(name) == a.size(name)
        assert b.populations[name].cell_type == pop.cell_type
        if pop.positions is not None:
            want = np.loadtxt(a.resolve_path(pop.positions.file), delimiter=",", ndmin=2)
            with h5py.File(b.resolve_path(b.populations[name].positions.file)) as f:
                np.testing.assert_allclose(f["positions"][()], want)
    assert sorted(p.name for p in b.projections) == sorted(p.name for p in a.projections)
    by_name = {p.name: p for p in b.projections}
    for pa in a.projections:
        pb = by_name[pa.name]
        assert (pb.source, pb.target, _receptors(b, pb)) == (pa.source, pa.target, _receptors(a, pa))
        np.testing.assert_allclose(_edge_table(b, pb), _edge_table(a, pa), rtol=edge_rtol)
    assert sorted(i.name for i in b.inputs) == sorted(i.name for i in a.inputs)
    inputs = {i.name: i for i in b.inputs}
    for ia in a.inputs:
        ib = inputs[ia.name]
        assert (ib.name, ib.type, ib.target) == (ia.name, ia.type, ia.target)
        for key in ("amplitude", "start", "stop", "rate", "weight"):
            va, vb = getattr(ia, key), getattr(ib, key)
            if va is not None or vb is not None:
                assert vb == pytest.approx(a.value(va) if va is not None else 0.0), (ia.name, key)
    for key in ("duration", "dt", "seed", "temperature"):
        assert getattr(b.simulation, key) == getattr(a.simulation, key), key


def test_point_network_round_trip(tmp_path):
    d = point_model(tmp_path)
    back, nml = roundtrip(d, tmp_path)
    assert_same(d, back)
    text = nml.read_text()
    assert 'type="populationList"' in text and "<connectionWD" in text and "<poissonFiringSynapse" in text
    assert (nml.parent / "LEMS_roundtrip.xml").exists()
    # jNeuroML's own validator accepts the export (one Java call)
    run = subprocess.run([str(Path(__file__).parents[1] / ".venv/bin/pynml"), str(nml), "-validate"],
                         capture_output=True, text=True, timeout=120)
    assert "All valid" in run.stdout + run.stderr, run.stdout + run.stderr


def test_hdf5_round_trip(tmp_path):
    d = point_model(tmp_path)
    back, network_file = roundtrip(d, tmp_path, hdf5="always")
    assert network_file.name.endswith(".net.nml.h5")
    assert_same(d, back, edge_rtol=1e-7)  # libNeuroML's HDF5 stores connection weights as float32


def mc_model(tmp_path: Path) -> Description:
    data = {"netbabel": "1", "name": "ballstick",
            "cell_types": {"bs": {"model": "multicompartment",
                                  "sections": [
                                      {"name": "soma", "L": 20.0, "diam": 20.0, "Ra": 120.0, "cm": 1.0,
                                       "mechanisms": {"hh": {"gnabar": 0.1, "gkbar": 0.03, "gl": 0.0002, "el": -60.0}},
                                       "ions": {"na": {"ena": 55.0}, "k": {"ek": -80.0}}},
                                      {"name": "dend[0]", "parent": "soma", "nseg": 3, "Ra": 120.0, "cm": 2.0,
                                       "points": [[20, 0, 0, 3], [70, 5, 0, 2.5], [120, 10, 0, 2]],
                                       "mechanisms": {"pas": {"g": 0.0001, "e": -65.0}}}],
                                  "section_lists": {"somatic": ["soma"], "basal": ["dend[0]"]},
                                  "spike_detection": {"section": "soma", "threshold": -10.0},
                                  "synapses": {"ampa": {"mechanism": "ExpSyn", "section": "dend[0]", "x": 0.5,
                                                        "params": {"tau": 2.0, "e": 0.0}}}}},
            "synapse_types": {"ampa": {"receptor": "excitatory", "site": "ampa"}},
            "populations": {"cells": {"cell_type": "bs", "size": 2}},
            "inputs": [{"name": "clamp", "type": "dc", "target": "cells", "amplitude": 150.0, "start": 5.0,
                        "stop": 50.0, "section": "soma", "x": 0.5},
                       {"name": "syn", "type": "poisson", "target": "cells", "rate": 50.0, "indegree": 1,
                        "weight": 0.002, "delay": 0.025, "synapse_type": "ampa"}],
            "simulation": {"duration": 60.0, "dt": 0.025, "seed": 1, "temperature": 6.3, "v_init": -65.0}}
    return Description.from_dict(data, base_dir=tmp_path)


def test_multicompartment_round_trip(tmp_path):
    d = mc_model(tmp_path)
    back, nml = roundtrip(d, tmp_path)
    a, b = d.cell_types["bs"], back.cell_types["bs"]
    assert [s.name for s in b.sections] == ["soma", "dend[0]"]
    assert b.sections[0].points == [[0.0, 0.0, 0.0, 20.0], [20.0, 0.0, 0.0, 20.0]]
    assert b.sections[1].points == [[20.0, 0.0, 0.0, 3.0], [70.0, 5.0, 0.0, 2.5], [120.0, 10.0, 0.0, 2.0]]
    for sa, sb in zip(a.sections, b.sections):
        assert (sb.parent, sb.nseg, sb.Ra, sb.cm) == (sa.parent, sa.nseg, sa.Ra, sa.cm)
        assert sb.mechanisms == sa.mechanisms
        assert sb.ions == sa.ions
    assert b.section_lists == a.section_lists
    assert b.spike_detection.threshold == -10.0
    site = b.synapses["syn_bs_ampa"]
    assert (site.mechanism, site.section, site.x, site.params) == ("ExpSyn", "dend[0]", 0.5, {"tau": 2.0, "e": 0.0})
    inputs = {i.name: i for i in back.inputs}
    assert (inputs["clamp"].amplitude, inputs["clamp"].section, inputs["clamp"].x) == (150.0, "soma", 0.5)
    assert inputs["syn"].weight == 0.002 and inputs["syn"].rate == 50.0
    assert back.simulation.v_init == -65.0 and back.simulation.temperature == 6.3


def _refused(d: Description, tmp_path: Path, match: str) -> None:
    with pytest.raises(UnsupportedFeature, match=match):
        exporter.export(d, tmp_path / "refused", argparse.Namespace(mode="native", neuroml_hdf5="never"))


def test_inexpressible_features_are_refused(tmp_path):
    d = point_model(tmp_path)
    bad = copy.deepcopy(d)
    bad.projections[0].target = "delta"
    bad.projections[0].rule.population = "exc_to_psc"
    _refused(bad, tmp_path, "no synapse that makes the membrane potential jump")
    bad = copy.deepcopy(d)
    bad.inputs[2].target = "izh"
    _refused(bad, tmp_path, "delta synapse of izhikevich")
    bad = copy.deepcopy(d)
    from netbabel.description.model import Distribution
    bad.populations["iaf_psc_exp"].v_init = Distribution("uniform", low=-70.0, high=-60.0)
    _refused(bad, tmp_path, "v_init distribution")
    bad = copy.deepcopy(d)
    bad.cell_types["volley"].params["spike_times"] = [[1.0], [2.0], [3.0], [4.0]]
    _refused(bad, tmp_path, "one train per cell")
    bad = copy.deepcopy(d)
    bad.cell_types["iaf_psc_alpha"].params["V_min"] = -90.0
    _refused(bad, tmp_path, "V_min")
    mc = mc_model(tmp_path)
    mc.cell_types["bs"].sections[1].mechanisms["kdr"] = {"gbar": 0.01}
    mc.cell_types["bs"].mod_files = ["kdr.mod"]
    _refused(mc, tmp_path, "mechanism 'kdr' exists only as NMODL \\(kdr.mod\\).*Fallback: export with --to netpyne")
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").glob("*.nml"))


def test_cli_convert_refusal_exits_2_without_output(tmp_path, capsys):
    d = point_model(tmp_path)
    d.projections[0].target = "izh"
    from netbabel.description import io
    (tmp_path / "bad.json").write_text(io.dumps(d, "json"))
    assert main(["convert", str(tmp_path / "bad.json"), "-o", str(tmp_path / "out"), "--to", "neuroml"]) == 2
    assert "delta" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_step_current_comes_back_as_dc_pieces(tmp_path):
    d = point_model(tmp_path)
    from netbabel.description.model import Input
    d.inputs = [Input(type="step_current", target="iaf_psc_exp", name="steps", times=[10.0, 30.0, 60.0],
                      amplitudes=[100.0, -50.0, 0.0], stop=80.0)]
    back, nml = roundtrip(d, tmp_path)
    assert nml.read_text().count("<pulseGenerator ") == 3
    pieces = sorted((i.start, i.stop, i.amplitude) for i in back.inputs)
    assert pieces == [(10.0, 30.0, 100.0), (30.0, 60.0, -50.0), (60.0, 80.0, 0.0)]


def test_population_v_init_becomes_a_cell_copy(tmp_path):
    d = point_model(tmp_path)
    d.populations["iaf_cond_exp"].v_init = -58.0
    back, nml = roundtrip(d, tmp_path)
    assert '<IF_cond_exp id="iaf_cond_exp_iaf_cond_exp"' in nml.read_text()
    cell = back.cell_types[back.populations["iaf_cond_exp"].cell_type]
    assert cell.model == "iaf_cond_exp" and cell.params["V_m"] == -58.0
    assert cell.params["C_m"] == d.cell_types["iaf_cond_exp"].params["C_m"]
    d.populations["delta"].v_init = -60.0  # iafRefCell starts at E_L: refused
    _refused(d, tmp_path, "V_m=-60.0 differs from E_L")
