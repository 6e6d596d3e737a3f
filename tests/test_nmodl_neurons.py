"""netbabel's NMODL point neurons against NEST: one neuron per catalogue model, same inputs.

Each simulator runs in its own subprocess (this file is also the driver script:
`python test_nmodl_neurons.py nest|neuron SPEC.json OUT.npz`). The neuron receives
excitatory and inhibitory Poisson spike trains (spike_generator / VecStim, on the
dt grid) and DC steps (dc_generator / current-change events), and we compare the
spike times and the membrane potential at every grid time. All models, including the
GSL-integrated iaf_cond_exp, iaf_cond_alpha, aeif_cond_exp and hh_cond_exp_traub (netbabel re-implements GSL's rkf45 and
step-size control), agree to the last bit of V_m here (max difference 0 to 3e-14 mV).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DT = 0.1
DELAY = 1.0
DURATION = 10_000.0


def _poisson(rate_hz: float, duration: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    steps = rng.random(int(duration / DT)) < rate_hz * DT / 1000.0
    times = (np.nonzero(steps)[0] + 1) * DT
    return [round(float(t), 10) for t in times if t < duration - 2 * DELAY]


# model -> (params, [(rate Hz, weight)], [(start, stop, amplitude pA)])
CASES = {
    "iaf_psc_exp": (
        {"V_m": -70.0, "E_L": -70.0, "C_m": 250.0, "tau_m": 10.0, "t_ref": 2.0, "V_th": -55.0,
         "V_reset": -70.0, "I_e": 0.0, "tau_syn_ex": 2.0, "tau_syn_in": 5.0},
        [(9000.0, 60.0), (2000.0, -60.0)], [(500.0, 1500.0, 150.0), (3000.0, 3200.5, -200.0)]),
    "iaf_psc_alpha": (
        {"V_m": -65.0, "E_L": -70.0, "C_m": 250.0, "tau_m": 10.0, "t_ref": 2.0, "V_th": -55.0,
         "V_reset": -70.0, "I_e": 30.0, "tau_syn_ex": 0.5, "tau_syn_in": 2.0, "V_min": -90.0},
        [(9000.0, 55.0), (2000.0, -40.0)], [(500.0, 1500.0, 150.0)]),
    "iaf_psc_delta": (
        {"V_m": 0.0, "E_L": 0.0, "C_m": 1.0, "tau_m": 20.0, "t_ref": 2.0, "V_th": 20.0,
         "V_reset": 10.0, "I_e": 0.0, "V_min": -5.0, "refractory_input": False},
        [(8000.0, 0.25), (2000.0, -0.3)], [(500.0, 1500.0, 0.3)]),
    "iaf_cond_exp": (
        {"V_m": -70.0, "E_L": -70.0, "C_m": 250.0, "t_ref": 2.0, "V_th": -55.0, "V_reset": -60.0,
         "E_ex": 0.0, "E_in": -85.0, "g_L": 16.6667, "tau_syn_ex": 0.2, "tau_syn_in": 2.0, "I_e": 0.0},
        [(8000.0, 7.0), (2000.0, -4.0)], [(500.0, 1500.0, 100.0)]),
    "iaf_cond_alpha": (
        {"V_m": -70.0, "E_L": -70.0, "C_m": 250.0, "t_ref": 2.0, "V_th": -55.0, "V_reset": -60.0,
         "E_ex": 0.0, "E_in": -85.0, "g_L": 16.6667, "tau_syn_ex": 0.2, "tau_syn_in": 2.0, "I_e": 0.0},
        [(8000.0, 5.0), (2000.0, -2.0)], [(500.0, 1500.0, 100.0)]),
    "aeif_cond_exp": (
        {"V_m": -70.6, "w": 0.0, "C_m": 281.0, "g_L": 30.0, "E_L": -70.6, "V_th": -50.4, "Delta_T": 2.0,
         "tau_w": 144.0, "a": 4.0, "b": 80.5, "V_reset": -60.0, "V_peak": 0.0, "t_ref": 0.5, "E_ex": 0.0,
         "E_in": -85.0, "tau_syn_ex": 0.2, "tau_syn_in": 2.0, "I_e": 0.0},
        [(8000.0, 14.0), (2000.0, -4.0)], [(500.0, 1500.0, 600.0)]),
    "hh_cond_exp_traub": (
        {"V_m": -60.0, "E_L": -60.0, "C_m": 200.0, "g_Na": 20000.0, "g_K": 6000.0, "g_L": 10.0, "E_Na": 50.0,
         "E_K": -90.0, "V_T": -63.0, "E_ex": 0.0, "E_in": -80.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0,
         "t_ref": 2.0, "I_e": 0.0},
        [(4000.0, 2.0), (1000.0, -3.0)], [(500.0, 1500.0, 200.0)]),
    "izhikevich": (
        {"V_m": -65.0, "U_m": -13.0, "a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "V_th": 30.0,
         "I_e": 0.0},
        [(2000.0, 1.5), (500.0, -1.0)], [(500.0, 1500.0, 5.0)]),
}


def spec_for(model: str, duration: float) -> dict:
    params, trains, steps = CASES[model]
    return {
        "model": model, "params": params, "dt": DT, "delay": DELAY, "duration": duration,
        "trains": [{"weight": w, "times": _poisson(rate, duration, seed=7 + i)} for i, (rate, w) in enumerate(trains)],
        "steps": [{"start": a, "stop": b, "amplitude": amp} for a, b, amp in steps],
    }


def run_nest(spec: dict) -> dict:
    import nest

    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.resolution = spec["dt"]
    params = {k: v for k, v in spec["params"].items()}
    if spec["model"] == "iaf_psc_delta":
        params["refractory_input"] = bool(params.get("refractory_input", False))
    cell = nest.Create(spec["model"], params=params)
    for train in spec["trains"]:
        gen = nest.Create("spike_generator", params={"spike_times": train["times"]})
        nest.Connect(gen, cell, syn_spec={"weight": train["weight"], "delay": spec["delay"]})
    for step in spec["steps"]:
        gen = nest.Create("dc_generator", params={"amplitude": step["amplitude"], "start": step["start"],
                                                   "stop": step["stop"]})
        nest.Connect(gen, cell, syn_spec={"delay": spec["dt"]})
    recorder = nest.Create("spike_recorder")
    nest.Connect(cell, recorder)
    meter = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": spec["dt"]})
    nest.Connect(meter, cell)
    nest.Simulate(spec["duration"])
    events = meter.get("events")
    order = np.argsort(events["times"])
    return {"spikes": np.sort(recorder.get("events")["times"]), "v_times": events["times"][order],
            "v": events["V_m"][order]}


def run_neuron(spec: dict) -> dict:
    from neuron import h

    from netbabel.nmodl import MECHANISMS, compile_and_load

    compile_and_load()
    h.load_file("stdrun.hoc")
    h.dt = spec["dt"]
    h.secondorder = 0
    h.cvode_active(0)
    cell = getattr(h, MECHANISMS[spec["model"]])()  # per-step updates: V_m follows NEST's V_m
    lazy_cell = getattr(h, MECHANISMS[spec["model"]])()  # event-driven where the model offers it
    for name, value in spec["params"].items():
        setattr(cell, name, float(value))
        setattr(lazy_cell, name, float(value))
    if hasattr(cell, "lazy"):
        cell.lazy = 0
        lazy_cell.lazy = 1
    keep = []

    def source(times: list[float], weight: float, delay: float, index: int) -> None:
        vec = h.Vector(times)
        stim = h.VecStim()
        stim.play(vec)
        for target in (cell, lazy_cell):
            con = h.NetCon(stim, target)
            con.weight[index] = weight
            con.delay = delay
            keep.append(con)
        keep.extend([vec, stim])

    for train in spec["trains"]:
        source(train["times"], train["weight"], spec["delay"], 0)
    for step in spec["steps"]:  # the current changes at start+dt and stop+dt (as NEST's dc_generator)
        source([step["start"]], step["amplitude"], spec["dt"], 1)
        source([step["stop"]], -step["amplitude"], spec["dt"], 1)
    spikes, lazy_spikes = h.Vector(), h.Vector()
    detector = h.NetCon(cell, None)
    detector.record(spikes)
    lazy_detector = h.NetCon(lazy_cell, None)
    lazy_detector.record(lazy_spikes)
    v = h.Vector()
    v.record(cell._ref_V_m, spec["dt"])
    h.finitialize()
    h.continuerun(spec["duration"] + spec["dt"])
    # a sample at time t holds V_m at t - dt (see the .mod files)
    values = np.array(v)[1:]
    times = (np.arange(len(values))) * spec["dt"]
    grid_spikes = np.floor(np.array(spikes) / spec["dt"]) * spec["dt"]  # emitted at T_k + 0.49 dt
    lazy_grid = np.floor(np.array(lazy_spikes) / spec["dt"]) * spec["dt"]
    return {"spikes": grid_spikes, "lazy_spikes": lazy_grid, "v_times": times, "v": values}


def simulate_all(simulator: str, specs: list[dict], folder: Path) -> list[dict]:
    """Run every spec in one subprocess of `simulator` (nest or neuron)."""
    spec_file = folder / f"specs_{simulator}.json"
    spec_file.write_text(json.dumps(specs))
    out = folder / f"{simulator}.npz"
    result = subprocess.run([sys.executable, __file__, simulator, str(spec_file), str(out)],
                            capture_output=True, text=True, cwd=folder, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as data:
        return [{k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(f"{i}/")} for i in range(len(specs))]


def simulate(simulator: str, spec: dict, folder: Path) -> dict:
    return simulate_all(simulator, [spec], folder)[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict]]:
    """NEST and NEURON results of every case (one process per simulator for all models)."""
    pytest.importorskip("nest")
    pytest.importorskip("neuron")
    folder = tmp_path_factory.mktemp("single_neurons")
    specs = [spec_for(model, DURATION) for model in CASES]
    nest_out = simulate_all("nest", specs, folder)
    nrn_out = simulate_all("neuron", specs, folder)
    return {model: (a, b) for model, a, b in zip(CASES, nest_out, nrn_out)}


def compare(nest_out: dict, nrn_out: dict) -> tuple[float, float]:
    """Largest spike-time difference (ms) and largest V_m difference on common grid times (mV)."""
    a, b = nest_out["spikes"], nrn_out["spikes"]
    assert len(a) == len(b), f"NEST {len(a)} spikes, NEURON {len(b)}; first differing: " \
        f"{next((x, y) for x, y in zip(a, b) if abs(x - y) > 1e-6) if len(a) and len(b) else None}"
    spike_diff = float(np.max(np.abs(a - b))) if len(a) else 0.0
    nest_idx = np.round(nest_out["v_times"] / DT).astype(int)
    nrn_idx = np.round(nrn_out["v_times"] / DT).astype(int)
    common, ia, ib = np.intersect1d(nest_idx, nrn_idx, return_indices=True)
    v_diff = float(np.max(np.abs(nest_out["v"][ia] - nrn_out["v"][ib])))
    return spike_diff, v_diff


@pytest.mark.parametrize("model", list(CASES))
def test_single_neuron_matches_nest(model: str, runs: dict) -> None:
    nest_out, nrn_out = runs[model]
    assert len(nest_out["spikes"]) > 50, "the protocol should make the neuron fire"
    spike_diff, v_diff = compare(nest_out, nrn_out)
    lazy_diff, _ = compare(nest_out, {**nrn_out, "spikes": nrn_out["lazy_spikes"]})
    print(f"{model}: {len(nest_out['spikes'])} spikes, max spike diff {spike_diff:.3g} ms, max V_m diff {v_diff:.3g} mV")
    assert spike_diff < 1e-9
    assert lazy_diff < 1e-9
    assert v_diff < 1e-9


if __name__ == "__main__":
    simulator, spec_path, out_path = sys.argv[1:4]
    run = run_nest if simulator == "nest" else run_neuron
    arrays = {}
    for index, spec_data in enumerate(json.loads(Path(spec_path).read_text())):
        arrays.update({f"{index}/{k}": v for k, v in run(spec_data).items()})
    np.savez(out_path, **arrays)
