"""The Potjans & Diesmann (2014) reference model, and its explicit instantiation at a small scale."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.description import load
from netbabel.instantiate import instantiate_to_directory, make_job

MODEL = Path(__file__).resolve().parents[1] / "reference_models/potjans_diesmann2014/potjans_diesmann2014.json"
POPS = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
N_FULL = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
CONN = np.array([  # [target, source], Potjans & Diesmann (2014) Table 5
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443]])


def synapse_numbers(scale: float) -> np.ndarray:
    """As NEST's microcircuit example: total numbers from the probabilities, scaled by N and K scaling."""
    prod = np.outer(N_FULL, N_FULL).astype(float)
    return np.round(np.log(1.0 - CONN) / np.log((prod - 1.0) / prod) * scale * scale).astype(int)


@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_sizes_and_synapse_numbers_follow_the_nest_example(scale):
    d = load(MODEL, overrides=[f"parameters.scale={scale}"])
    assert [d.size(p) for p in POPS] == list(np.round(N_FULL * scale).astype(int))
    expected = synapse_numbers(scale)
    job = make_job(d)
    for plan in job.projections:
        assert plan.kind == "fixed_total_number"
        assert plan.degree == expected[POPS.index(plan.target), POPS.index(plan.source)]
    assert len(job.projections) == np.count_nonzero(CONN)
    if scale == 1.0:
        assert sum(d.size(p) for p in POPS) == 77169
        assert 2.95e8 < job.expected_edges() < 3.05e8
    assert [d.value(i.indegree) for i in d.inputs] == list(np.round(K_EXT * scale))


def test_parameters_of_the_published_model():
    d = load(MODEL)
    assert d.value("scale") == 0.1
    assert d.value("w_exc") == pytest.approx(87.81, abs=0.01)  # 0.15 mV PSP -> pA, as in the NEST example
    cell = d.cell_types["lif"]
    assert cell.model == "iaf_psc_exp"
    assert {k: d.value(v) for k, v in cell.params.items()} == {
        "C_m": 250.0, "tau_m": 10.0, "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "E_L": -65.0, "V_th": -50.0,
        "V_reset": -65.0, "t_ref": 2.0, "I_e": 0.0, "V_m": -58.0}
    l4e_l23e = next(p for p in d.projections if p.name == "L4E_to_L23E")
    assert d.value(l4e_l23e.weight.mean) == pytest.approx(2 * 87.81, abs=0.02)
    inh = next(p for p in d.projections if p.name == "L4I_to_L23E")
    assert d.value(inh.weight.mean) == pytest.approx(-4 * 87.81, abs=0.05) and inh.weight.high == 0.0
    assert d.value(inh.delay.mean) == 0.75 and d.value(inh.delay.sd) == 0.375


def test_instantiated_microcircuit_small_scale(tmp_path):
    scale = 0.02
    d = load(MODEL, overrides=[f"parameters.scale={scale}", "simulation.duration=100"])
    out = instantiate_to_directory(d, tmp_path / "mc", progress=False)
    expected = synapse_numbers(scale)
    w = d.value("w_exc")
    with h5py.File(tmp_path / "mc/edges.h5", "r") as f:
        for proj in d.projections:
            g = f[f"edges/{proj.name}"]
            i, j = POPS.index(proj.target), POPS.index(proj.source)
            assert g["source_node_id"].shape[0] == expected[i, j]
            weights, delays = g["0/syn_weight"][()], g["0/delay"][()]
            if proj.source.endswith("E"):
                assert weights.min() >= 0.0
            else:
                assert weights.max() <= 0.0
            assert delays.min() >= 0.1 and np.array_equal(np.round(delays * 10), delays * 10)
            if proj.name == "L4E_to_L23E":
                assert abs(weights.mean() - 2 * w) < 4 * 0.2 * w / np.sqrt(weights.size)
    with h5py.File(tmp_path / "mc/inputs.h5", "r") as f:
        for inp, k in zip(d.inputs, K_EXT):
            n_spikes = f[f"spikes/{inp.name}/node_ids"].shape[0]
            mean = 8.0 * round(k * scale) * 0.1 * d.size(inp.target)  # rate * indegree * 100 ms * cells
            assert abs(n_spikes - mean) < 4 * np.sqrt(mean)
    assert all(i.type == "spike_train" for i in out.inputs)
