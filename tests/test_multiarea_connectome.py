"""The multi-area importer against the numbers the upstream MultiAreaModel derives (../shared/data/multiarea)."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main
from netbabel.description import check, load
from netbabel.description.summary import summarize
from netbabel.errors import NetbabelError
from netbabel.importers import multiarea
from netbabel.importers.multiarea import build_description, detect, load_connectome, population_name

from multiarea_data import multiarea_data



def data_dir() -> Path:
    return multiarea_data("fullscale")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def root() -> Path:
    return data_dir()


@pytest.fixture(scope="module")
def full(root):
    return load_connectome(root / "upstream")


@pytest.fixture(scope="module")
def full_description(full):
    return build_description(full)


@pytest.fixture(scope="module")
def small(root):
    return load_connectome(root / "upstream", n_scaling=0.01, k_scaling=0.01)


def matrices(con) -> dict[str, np.ndarray]:
    return {"N_vector": con.N, "K_matrix": np.column_stack([con.K, con.K_ext]),
            "synapse_matrix": np.column_stack([con.synapses, con.K_ext * con.N]),
            "W_mean_matrix_pA": np.column_stack([con.W, con.W_ext]), "W_sd_matrix_pA": con.W_sd,
            "delay_mean_matrix_ms": con.delay, "DC_vector_pA": con.DC}


def assert_relative(actual: np.ndarray, reference: np.ndarray, rtol: float, what: str) -> None:
    assert actual.shape == reference.shape, what
    zero = reference == 0
    assert np.all(actual[zero] == 0), f"{what}: non-zero where the reference is 0"
    err = np.abs(actual[~zero] - reference[~zero]) / np.abs(reference[~zero])
    assert err.size == 0 or err.max() <= rtol, f"{what}: max relative error {err.max():.3g}"


# -- full scale ------------------------------------------------------------------------------

def test_population_order_is_upstream(root, full):
    index = json.loads((root / "fullscale" / "population_index.json").read_text())
    assert [f"{a}-{p}" for a, p in full.keys] == index
    assert len(full.names) == 254 and full.names[0] == "V1_23E"
    assert population_name("7a", "23E") == "area7a_23E" and population_name("46", "6I") == "area46_6I"


@pytest.mark.parametrize("name", ["N_vector", "K_matrix", "synapse_matrix", "W_mean_matrix_pA",
                                  "W_sd_matrix_pA", "delay_mean_matrix_ms", "DC_vector_pA"])
def test_fullscale_arrays_equal_reference(root, full, name):
    assert_relative(matrices(full)[name], np.load(root / "fullscale" / f"{name}.npy"), 1e-12, name)


def test_fullscale_totals(root, full):
    totals = json.loads((root / "fullscale" / "model.json").read_text())["totals"]
    assert math.isclose(full.N.sum(), 4130056.72, abs_tol=0.005)
    assert math.isclose(full.N.sum(), totals["neurons"], rel_tol=1e-12)
    assert math.isclose(full.synapses.sum(), 24126520948.7, abs_tol=0.05)
    assert int(np.floor(full.N).sum()) == totals["neurons_created"] == 4129924
    assert int(np.floor(full.synapses).sum()) == totals["synapses_cortical_created"]
    assert np.count_nonzero(full.K) == totals["n_projections_nonzero"] == 8411
    assert full.cc_weights_factor == pytest.approx(1.9) and full.cc_weights_I_factor == pytest.approx(2.0)


def test_fullscale_description_matches_what_nest_creates(root, full_description):
    d = full_description
    pops = rows(root / "fullscale" / "populations.csv")
    assert len(d.populations) == 254
    for r in pops:
        pop = d.populations[population_name(r["area"], r["pop"])]
        assert pop.size == int(r["N_created"])
        assert pop.annotations["N_float"] == pytest.approx(float(r["N"]), rel=1e-12)
        assert pop.annotations["area"] == r["area"] and pop.annotations["layer"] == "L" + r["pop"][:-1]
        assert pop.v_init.distribution == "normal" and (pop.v_init.mean, pop.v_init.sd) == (-150.0, 50.0)
    cell = d.cell_types[d.populations["V1_23E"].cell_type]
    assert cell.model == "iaf_psc_exp"
    assert cell.params == {"E_L": -65.0, "V_th": -50.0, "V_reset": -65.0, "C_m": 250.0, "tau_m": 10.0,
                           "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "t_ref": 2.0}
    by_name = {(p.source, p.target): p for p in d.projections}
    created = 0
    for r in rows(root / "fullscale" / "projections.csv"):
        key = (population_name(r["source_area"], r["source_pop"]), population_name(r["target_area"], r["target_pop"]))
        n = int(r["synapses_created"])
        if n == 0:
            assert key not in by_name
            continue
        created += 1
        p = by_name[key]
        assert p.rule.type == "fixed_total_number" and p.rule.n == n
        w = p.weight
        assert (w.distribution, w.bounds) == ("normal", "redraw")
        assert w.mean == pytest.approx(float(r["W_mean_pA"]), rel=1e-12)
        assert w.sd == pytest.approx(float(r["W_sd_pA"]), rel=1e-12)
        low = float(r["W_clip_min"])
        high = float(r["W_clip_max"])
        assert (w.low if w.low is not None else -math.inf) == low
        assert (w.high if w.high is not None else math.inf) == high
        dl = p.delay
        assert dl.mean == pytest.approx(float(r["delay_mean_ms"]), rel=1e-12)
        assert dl.sd == pytest.approx(float(r["delay_sd_ms"]), rel=1e-12)
        assert dl.low == float(r["delay_clip_min_ms"]) and dl.bounds == "redraw"
        assert p.synapse_type == ("excitatory" if r["source_pop"].endswith("E") else "inhibitory")
    assert created == len(d.projections)
    inputs = {i.name: i for i in d.inputs}
    assert all(i.type == "poisson" for i in d.inputs) and len(d.inputs) == 254  # no DC at full scale
    for r in pops:
        ext = inputs[f"ext_{population_name(r['area'], r['pop'])}"]
        assert ext.rate == pytest.approx(float(r["poisson_rate_total_Hz"]), rel=1e-12)
        assert ext.weight == pytest.approx(float(r["W_ext_pA"]), rel=1e-12)
        assert ext.indegree == 1 and ext.delay == float(r["ext_delay_ms"])


def test_fullscale_description_is_valid_and_summarised(full, full_description):
    # the schema check of all 254 populations takes ~15 s: four areas (numeric names, TH) cover every shape
    assert check(build_description(full, ["V1", "7a", "46", "TH"]).to_dict()) == []
    totals = summarize(full_description)["totals"]
    assert totals["neurons"] == 4129924 and totals["populations"] == 254
    assert totals["synapses"] == 24126516728


# -- down-scaled ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["N_vector", "K_matrix", "synapse_matrix", "W_mean_matrix_pA",
                                  "W_sd_matrix_pA", "delay_mean_matrix_ms", "DC_vector_pA"])
def test_downscaled_arrays_equal_reference(root, small, name):
    assert_relative(matrices(small)[name], np.load(root / "downscaled_0.01" / f"{name}.npy"), 1e-9, name)


def test_downscaled_weight_sd_is_not_rescaled(full, small):
    """The upstream quirk: W / sqrt(K_scaling), W_sd unchanged."""
    assert np.array_equal(small.W_sd, full.W_sd)
    assert small.W[0, 0] == pytest.approx(full.W[0, 0] * 10, rel=1e-12)
    assert np.all(small.DC > 0)


def test_downscaled_description_sizes_and_dc(root, small):
    d = build_description(small)
    inputs = {i.name: i for i in d.inputs}
    for r in rows(root / "downscaled_0.01" / "populations.csv"):
        name = population_name(r["area"], r["pop"])
        assert d.populations[name].size == int(r["N_created"])
        dc = inputs[f"dc_scaling_{name}"]
        assert dc.type == "dc" and dc.amplitude == pytest.approx(float(r["I_e_DC_pA"]), rel=1e-9)
        assert inputs[f"ext_{name}"].rate == pytest.approx(float(r["poisson_rate_total_Hz"]), rel=1e-9)
        assert inputs[f"ext_{name}"].weight == pytest.approx(float(r["W_ext_pA"]), rel=1e-9)


# -- area subsets ---------------------------------------------------------------------------

@pytest.mark.parametrize("run,scale", [("scale0.01_metastable", 0.01), ("scale0.1_metastable", 0.1)])
def test_v1v2_subset_equals_upstream_network(root, run, scale):
    con = load_connectome(root / "upstream", n_scaling=scale, k_scaling=scale)
    d = build_description(con, ["V1", "V2"], "hom_poisson_stat")
    assert check(d.to_dict()) == []
    sim = root / "sim_V1V2"
    inputs = {i.name: i for i in d.inputs}
    pops = rows(sim / f"{run}_network_populations.csv")
    assert sorted(d.populations) == sorted(population_name(r["area"], r["pop"]) for r in pops)
    for r in pops:
        name = population_name(r["area"], r["pop"])
        assert d.populations[name].size == int(r["N_created"])
        assert inputs[f"ext_{name}"].rate == pytest.approx(float(r["poisson_rate_ext_total_Hz"]), rel=1e-9)
        assert inputs[f"ext_{name}"].weight == pytest.approx(float(r["W_ext_pA"]), rel=1e-9)
        assert inputs[f"dc_scaling_{name}"].amplitude == pytest.approx(float(r["I_e_DC_pA"]), rel=1e-9)
    projections = {(p.source, p.target): p for p in d.projections}
    generators = 0
    for r in rows(sim / f"{run}_network_projections.csv"):
        s = population_name(r["source_area"], r["source_pop"])
        t = population_name(r["target_area"], r["target_pop"])
        if r["realised_as"] == "neurons":
            n = int(float(r["synapses_created"]))
            if n:
                p = projections[(s, t)]
                assert p.rule.n == n
                assert p.weight.mean == pytest.approx(float(r["W_mean_pA"]), rel=1e-9)
                assert p.delay.mean == pytest.approx(float(r["delay_mean_ms"]), rel=1e-12)
            else:
                assert (s, t) not in projections
            continue
        rate = float(r["poisson_rate_per_target_Hz"])
        name = f"replaced_{s}_to_{t}"
        if rate == 0:
            assert name not in inputs
            continue
        generators += 1
        gen = inputs[name]
        assert gen.type == "poisson" and gen.indegree == 1
        assert gen.rate == pytest.approx(rate, rel=1e-9)
        assert gen.weight == pytest.approx(float(r["W_mean_pA"]), rel=1e-9)  # fixed weight: the mean
        assert gen.delay == pytest.approx(float(r["delay_mean_ms"]), rel=1e-12)  # fixed: distance / 3.5
    assert generators == sum(1 for i in d.inputs if i.name.startswith("replaced_")) > 200


def test_het_poisson_uses_population_rates(root, small):
    rates = json.loads((root / "upstream" / "fullscale_rates.json").read_text())
    hom = {i.name: i for i in build_description(small, ["V1"], "hom_poisson_stat").inputs}
    het = {i.name: i for i in build_description(small, ["V1"], "het_poisson_stat").inputs}
    name = "replaced_V2_23E_to_V1_4E"
    assert het[name].rate == pytest.approx(hom[name].rate / 10.0 * rates["V2"]["23E"], rel=1e-12)
    assert het[name].weight == hom[name].weight and het[name].delay == hom[name].delay


# -- options ---------------------------------------------------------------------------------

def test_unstabilised_indegrees_from_the_data_file(root):
    con = load_connectome(root / "upstream", k_stable="none")
    meta = json.loads((root / "global_meta.json").read_text())
    assert con.synapses.sum() == pytest.approx(meta["totals_fullscale_unstabilized"]["synapses_cortical"], rel=1e-12)
    assert_relative(con.K, np.load(root / "fullscale" / "K_matrix_data_unstabilized.npy")[:, :254], 1e-12, "K")


def test_cc_weight_factors_override(full, root):
    con = load_connectome(root / "upstream", cc_weights_factor=1.0, cc_weights_I_factor=1.0)
    intra = full.area_index[:, None] == full.area_index[None, :]
    assert np.array_equal(con.W[intra], full.W[intra])
    v1_23e, v2_23e, v1_23i = full.names.index("V1_23E"), full.names.index("V2_23E"), full.names.index("V1_23I")
    assert con.W[v1_23e, v2_23e] == pytest.approx(87.80849352920845, rel=1e-12)
    assert con.W[v1_23i, v2_23e] == pytest.approx(87.80849352920845, rel=1e-12)
    assert full.W[v1_23i, v2_23e] == pytest.approx(87.80849352920845 * 3.8, rel=1e-12)
    assert con.W_sd[v1_23e, v2_23e] == pytest.approx(8.780849352920845, rel=1e-12)


def test_clone_layout_is_detected(tmp_path, root):
    """PATH may be the upstream clone: config_files/, figures/SchueckerSchmidt2017/, tests/."""
    up = root / "upstream"
    data = next(up.glob("custom_Data_Model_*.json.gz"))
    (tmp_path / "config_files").mkdir()
    (tmp_path / "config_files" / data.name[:-3]).write_bytes(gzip.decompress(data.read_bytes()))
    (tmp_path / "figures" / "SchueckerSchmidt2017").mkdir(parents=True)
    (tmp_path / "figures" / "SchueckerSchmidt2017" / "K_prime_original.npy").write_bytes(
        (up / "K_prime_original.npy").read_bytes())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fullscale_rates.json").write_bytes((up / "fullscale_rates.json").read_bytes())
    assert detect(tmp_path) and detect(up) and not detect(tmp_path / "tests")
    con = load_connectome(tmp_path, 0.01, 0.01)
    assert_relative(con.DC, np.load(root / "downscaled_0.01" / "DC_vector_pA.npy"), 1e-9, "DC")


def test_convert_command_writes_a_valid_description(tmp_path, root):
    out = tmp_path / "v1.json"
    assert main(["convert", f"multiarea:{root / 'upstream'}", "-o", str(out), "--n-scaling", "0.01",
                 "--k-scaling", "0.01", "--areas", "V1"]) == 0
    d = load(out)
    assert sorted(d.populations) == sorted(f"V1_{p}" for p in ("23E", "23I", "4E", "4I", "5E", "5I", "6E", "6I"))
    tools = [p.tool for p in d.metadata.provenance]
    assert "netbabel.importers.multiarea" in tools
    options = d.metadata.provenance[tools.index("netbabel.importers.multiarea")].options
    assert options["N_scaling"] == 0.01 and options["areas"] == ["V1"]


def test_bad_requests_are_located_errors(tmp_path, root, capsys):
    with pytest.raises(NetbabelError, match="custom_Data_Model"):
        load_connectome(tmp_path)
    with pytest.raises(NetbabelError, match="full-scale rates"):
        load_connectome(multiarea.Sources((next((root / "upstream").glob("custom_*"))),
                                          root / "upstream" / "K_prime_original.npy", None), 0.1, 0.1)
    with pytest.raises(NetbabelError, match="unknown area"):
        build_description(load_connectome(root / "upstream"), ["V1", "V99"])
    with pytest.raises(NetbabelError, match="no neuron left"):
        build_description(load_connectome(root / "upstream", n_scaling=1e-4, k_scaling=1.0), ["V1"])
    bad = tmp_path / "custom_Data_Model_x.json"
    bad.write_text('{"area_list": ["V1"]}')
    assert main(["convert", f"multiarea:{bad}", "-o", str(tmp_path / "x.json"), "--k-stable", "none"]) == 2
    assert "not an upstream custom_Data_Model file" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    assert main(["convert", f"multiarea:{root / 'upstream'}", "-o", str(tmp_path / "y.json"), "--n-scaling", "-1"]) == 2
    assert "N_scaling must be a positive number" in capsys.readouterr().err
