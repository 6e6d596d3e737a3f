"""The generic rate-preserving scaling transform (netbabel.converters.scaling)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main
from netbabel.converters.scaling import compensating_current, kernel_integral, scale_description
from netbabel.description import (
    CellType, Description, Distribution, Input, Population, Projection, Rule, SynapseType, check, save,
)
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import read_report

from multiarea_data import multiarea_data

TAU_EX, TAU_IN = 0.5, 2.0


def network(model: str = "iaf_psc_exp", n_e: int = 400, n_i: int = 100, k_e: int = 40, k_i: int = 12,
            j: float = 87.8, g: float = -4.0, rate: float = 8000.0) -> Description:
    params = {"tau_syn_ex": TAU_EX, "tau_syn_in": TAU_IN} if model != "iaf_psc_delta" else {}
    d = Description(name="ei")
    d.cell_types = {"lif": CellType(model=model, params={"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0,
                                                         "V_reset": -65.0, "V_th": -50.0, "V_m": -65.0, **params})}
    d.synapse_types = {"exc": SynapseType(receptor="excitatory"), "inh": SynapseType(receptor="inhibitory")}
    d.populations = {"E": Population("lif", n_e), "I": Population("lif", n_i)}
    w_e = Distribution("normal", mean=j, sd=0.1 * j, low=0.0, bounds="redraw")
    for target in ("E", "I"):
        d.projections.append(Projection("E", target, Rule("fixed_indegree", indegree=k_e), w_e, 1.5, "exc"))
        d.projections.append(Projection("I", target, Rule("fixed_indegree", indegree=k_i), g * j, 0.8, "inh"))
        d.inputs.append(Input(type="poisson", target=target, rate=rate, indegree=1, weight=j, delay=1.0,
                              synapse_type="exc"))
    return d


def test_kernel_integrals():
    assert kernel_integral("iaf_psc_exp", {"tau_syn_ex": 0.5, "tau_syn_in": 2.0}, True) == 0.5
    assert kernel_integral("iaf_psc_exp", {"tau_syn_ex": 0.5, "tau_syn_in": 2.0}, False) == 2.0
    assert kernel_integral("iaf_psc_alpha", {"tau_syn_ex": 0.5}, True) == pytest.approx(math.e * 0.5)
    assert kernel_integral("iaf_psc_delta", {"C_m": 250.0}, True) == 250.0
    assert kernel_integral("iaf_psc_exp", {}, True) == 2.0  # NEST's default tau_syn_ex
    with pytest.raises(UnsupportedFeature, match="current-based"):
        kernel_integral("iaf_cond_exp", {}, True)


def test_compensating_current_formula():
    K = np.array([[100.0, 25.0]])
    W = np.array([[87.8, -351.2]])
    q = np.array([[0.5, 2.0]])
    nu = np.array([4.0, 12.0])
    expected = (1 - math.sqrt(0.01)) * 1e-3 * (100 * 87.8 * 0.5 * 4 + 25 * -351.2 * 2.0 * 12)
    assert compensating_current(K, W, q, nu, 0.01)[0] == pytest.approx(expected, rel=1e-14)
    assert compensating_current(K, W, q, nu, 1.0)[0] == 0.0


def test_scaled_description_by_hand():
    d = network()
    s = scale_description(d, 0.5, 0.25, rates={"E": 5.0, "I": 10.0})
    assert check(s.to_dict()) == []
    assert s.size("E") == 200 and s.size("I") == 50
    assert [p.rule.indegree for p in s.projections] == [10, 3, 10, 3]
    assert s.projections[0].weight.mean == pytest.approx(2 * 87.8) and s.projections[0].weight.sd == pytest.approx(2 * 8.78)
    assert s.projections[0].weight.low == 0.0 and s.projections[1].weight == pytest.approx(2 * -4 * 87.8)
    assert s.inputs[0].rate == pytest.approx(2000.0) and s.inputs[0].weight == pytest.approx(2 * 87.8)
    dc = {i.target: i.amplitude for i in s.inputs if i.type == "dc"}
    mean = 1e-3 * (40 * 87.8 * TAU_EX * 5.0 + 12 * -4 * 87.8 * TAU_IN * 10.0 + 8000.0 * 87.8 * TAU_EX)
    assert dc["E"] == pytest.approx(0.5 * mean, rel=1e-12) and dc["I"] == pytest.approx(0.5 * mean, rel=1e-12)
    assert [i.name for i in s.inputs if i.type == "dc"] == ["dc_scaling_E", "dc_scaling_I"]
    assert d.size("E") == 400 and d.projections[0].weight.mean == 87.8  # the input is not modified
    with pytest.raises(NetbabelError, match="scaled before"):
        scale_description(s, 1.0, 0.5, rates={"E": 5.0, "I": 10.0})


def test_scaling_rules_and_kernels():
    d = network(model="iaf_psc_delta", j=0.1)
    d.projections[0].rule = Rule("fixed_total_number", n=16000)
    d.projections[1].rule = Rule("pairwise_bernoulli", p=0.12)
    d.projections[2].rule = Rule("fixed_outdegree", outdegree=20)
    s = scale_description(d, 0.5, 0.5, rates={"E": 5.0, "I": 10.0}, rounding="floor", scale_weight_sd=False)
    assert s.projections[0].rule.n == 4000
    assert s.projections[1].rule.p == pytest.approx(0.12)
    assert s.projections[2].rule.outdegree == 10
    assert s.projections[0].weight.sd == pytest.approx(0.01)  # sd kept (the multi-area quirk)
    dc = {i.target: i.amplitude for i in s.inputs if i.type == "dc"}
    k_ee = 16000 / 400
    mean = 1e-3 * 250.0 * (k_ee * 0.1 * 5.0 + 0.12 * 100 * -0.4 * 10.0 + 8000.0 * 0.1)
    assert dc["E"] == pytest.approx((1 - math.sqrt(0.5)) * mean, rel=1e-12)
    with pytest.raises(UnsupportedFeature, match="exceeds 1"):
        scale_description(_bernoulli(0.5), 0.1, 1.0, rates={"E": 1, "I": 1})


def _bernoulli(p: float) -> Description:
    d = network()
    d.projections[0].rule = Rule("pairwise_bernoulli", p=p)
    return d


def test_refusals():
    with pytest.raises(NetbabelError, match="full-scale rate of population 'I'"):
        scale_description(network(), 1.0, 0.5, rates={"E": 5.0})
    cond = network()
    cond.cell_types["lif"] = CellType(model="iaf_cond_exp", params={})
    for p in cond.projections:
        p.weight = 1.0
    for i in cond.inputs:
        i.weight = 1.0
    with pytest.raises(UnsupportedFeature, match="current-based"):
        scale_description(cond, 1.0, 0.5, rates={"E": 5.0, "I": 5.0})
    with pytest.raises(NetbabelError, match="positive"):
        scale_description(network(), 0.0, 1.0)
    with pytest.raises(NetbabelError, match="no cell left"):
        scale_description(network(), 0.001, 1.0)
    # N scaling alone needs no rates and adds no current
    s = scale_description(network(), 0.5, 1.0)
    assert s.size("E") == 200 and not any(i.type == "dc" for i in s.inputs)


def _data_root() -> Path:
    return multiarea_data()


def test_generic_transform_reproduces_upstream_scale_network():
    """The Description-level transform on the full-scale multi-area description gives the upstream DC.

    The description holds int() of the float neuron and synapse numbers, so its in-degrees
    differ from the upstream floats by about 1/N: the DC agrees to 2e-3, the weights exactly."""
    from netbabel.importers.multiarea import build_description, load_connectome

    root = _data_root()
    con = load_connectome(root / "upstream")
    full = build_description(con)
    table = json.loads((root / "upstream" / "fullscale_rates.json").read_text())
    rates = {name: table[a][p] for name, (a, p) in zip(con.names, con.keys)}
    scaled = scale_description(full, 0.01, 0.01, rates=rates, rounding="floor", scale_weight_sd=False)
    expected = np.load(root / "downscaled_0.01" / "DC_vector_pA.npy")
    dc = {i.target: i.amplitude for i in scaled.inputs if i.type == "dc"}
    got = np.array([dc[name] for name in con.names])
    assert np.max(np.abs(got - expected) / np.abs(expected)) < 2e-3  # 67 projections of int(syn) = 0 dropped
    sizes = np.array([scaled.size(name) for name in con.names])
    created = np.floor(np.load(root / "downscaled_0.01" / "N_vector.npy"))
    assert np.all(np.abs(sizes - created) <= 1) and np.mean(sizes == created) > 0.9
    assert scaled.projections[0].weight.mean == pytest.approx(10 * full.projections[0].weight.mean, rel=1e-12)
    assert scaled.projections[0].weight.sd == full.projections[0].weight.sd


@pytest.mark.slow
def test_scaled_network_keeps_its_rate_in_nest(tmp_path):
    """K_scaling 0.25 with weights x2 and the DC keeps the rate; without the DC it falls."""
    def rate(d: Description, name: str) -> float:
        d.simulation.duration, d.simulation.seed = 400.0, 7
        for inp in d.inputs:
            inp.stop = None
        path = save(d, tmp_path / f"{name}.json")
        assert main(["simulate", str(path), "--backend", "nest", "-o", str(tmp_path / f"{name}.h5")]) == 0
        report = read_report(tmp_path / f"{name}.h5")
        spikes = sum(int(np.sum(np.asarray(times) >= 100.0)) for _, times in report.values())
        return spikes / (d.size("E") + d.size("I")) / 0.3

    full = network(n_e=800, n_i=200, k_e=200, k_i=50, j=87.8, g=-5.0, rate=16000.0)
    nu_full = rate(full, "full")
    assert 1.0 < nu_full < 60.0
    rates = {"E": nu_full, "I": nu_full}
    scaled = scale_description(full, 1.0, 0.25, rates=rates)
    nu_scaled = rate(scaled, "scaled")
    no_dc = scale_description(full, 1.0, 0.25, rates=rates)
    no_dc.inputs = [i for i in no_dc.inputs if i.type != "dc"]
    nu_no_dc = rate(no_dc, "no_dc")
    assert abs(nu_scaled - nu_full) < 0.2 * nu_full, (nu_full, nu_scaled, nu_no_dc)
    assert abs(nu_no_dc - nu_full) > 2 * abs(nu_scaled - nu_full), (nu_full, nu_scaled, nu_no_dc)
