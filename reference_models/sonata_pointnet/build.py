"""Build the SONATA point-neuron reference circuit with bmtk's NetworkBuilder.

    python build.py [OUT_DIR]        (default: the folder of this script)

Writes network/ (nodes, node types, edges, edge types), components/ (NEST parameters of the
cells and synapses), inputs/thalamus_spikes.h5 (Poisson trains) and the SONATA configs
(circuit_config.json, simulation_config.json, node_sets.json). Everything is drawn from
fixed seeds: running it again writes the same circuit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

N_EXC, N_INH, N_THAL = 200, 50, 100
SEED = 20200707  # any fixed number
TSTOP, DT = 1000.0, 0.1  # ms
TIC = 0.001  # ms, NEST's time base (tics_per_ms = 1000)
THAL_RATE = 20.0  # Hz
T_INPUT_START = 1.0  # ms: netbabel's NEST export relays spike sources through parrot neurons (spikes from 2 dt on)
P_CONN = {("Exc", "Exc"): 0.1, ("Exc", "Inh"): 0.2, ("Inh", "Exc"): 0.3, ("Inh", "Inh"): 0.3}
THAL_INDEGREE = 20

# NEST iaf_psc_alpha parameters (NEST units: pF, ms, mV), as bmtk PointNet hands them to nest.Create
CELLS = {
    "exc": {"C_m": 250.0, "tau_m": 20.0, "t_ref": 2.0, "E_L": -70.0, "V_th": -55.0, "V_reset": -70.0,
            "tau_syn_ex": 2.0, "tau_syn_in": 2.0, "I_e": 0.0, "V_m": -70.0},
    "inh": {"C_m": 250.0, "tau_m": 10.0, "t_ref": 1.0, "E_L": -70.0, "V_th": -55.0, "V_reset": -70.0,
            "tau_syn_ex": 2.0, "tau_syn_in": 2.0, "I_e": 0.0, "V_m": -70.0},
}


def _bernoulli_nsyns(p: float, rng: np.random.Generator):
    """Connection rule (iterator 'all_to_one'): each source connects with probability p, 1-3 synapses."""
    def rule(sources, target):
        hit = rng.random(len(sources)) < p
        hit &= np.array([s.node_id != target.node_id for s in sources])  # no autapses
        return np.where(hit, rng.integers(1, 4, len(sources)), 0).tolist()
    return rule


def _fixed_indegree(k: int, rng: np.random.Generator):
    """Connection rule (iterator 'all_to_one'): k distinct sources per target, one synapse each."""
    def rule(sources, target):
        n = np.zeros(len(sources), dtype=int)
        n[rng.choice(len(sources), k, replace=False)] = 1
        return n.tolist()
    return rule


def _lognormal_weight(rng: np.random.Generator, mean: float, sigma: float):
    """Per-edge syn_weight (pA): lognormal with the given mean."""
    mu = np.log(mean) - sigma ** 2 / 2.0
    return lambda source, target: float(rng.lognormal(mu, sigma))


def build(out: Path) -> None:
    from bmtk.builder import NetworkBuilder
    from bmtk.utils.reports.spike_trains import PoissonSpikeGenerator

    rng = np.random.default_rng(SEED)
    network = out / "network"
    network.mkdir(parents=True, exist_ok=True)

    cortex = NetworkBuilder("cortex")
    for pop, n, params, ei in (("Exc", N_EXC, "exc.json", "e"), ("Inh", N_INH, "inh.json", "i")):
        cortex.add_nodes(N=n, pop_name=pop, ei=ei, model_type="point_neuron", model_template="nest:iaf_psc_alpha",
                         dynamics_params=params, x=rng.uniform(0.0, 100.0, n), y=rng.uniform(0.0, 100.0, n),
                         z=rng.uniform(0.0, 100.0, n))
    # E -> E: per-edge lognormal weights (a group with syn_weight per edge); the others: weight in the types table
    cm = cortex.add_edges(source={"pop_name": "Exc"}, target={"pop_name": "Exc"}, iterator="all_to_one",
                          connection_rule=_bernoulli_nsyns(P_CONN["Exc", "Exc"], rng), delay=1.5,
                          dynamics_params="ExcToExc.json", model_template="static_synapse")
    cm.add_properties("syn_weight", rule=_lognormal_weight(rng, 20.0, 0.5), dtypes=float)
    for (pre, post), weight, delay in ((("Exc", "Inh"), 30.0, 1.5), (("Inh", "Exc"), -80.0, 1.0),
                                       (("Inh", "Inh"), -80.0, 1.0)):
        cortex.add_edges(source={"pop_name": pre}, target={"pop_name": post}, iterator="all_to_one",
                         connection_rule=_bernoulli_nsyns(P_CONN[pre, post], rng), syn_weight=weight, delay=delay,
                         dynamics_params=f"{pre}To{post}.json", model_template="static_synapse")
    cortex.build()
    cortex.save(output_dir=str(network))

    thalamus = NetworkBuilder("thalamus")
    thalamus.add_nodes(N=N_THAL, pop_name="tON", ei="e", model_type="virtual")
    thalamus.add_edges(source=thalamus.nodes(), target=cortex.nodes(), iterator="all_to_one",
                       connection_rule=_fixed_indegree(THAL_INDEGREE, rng), syn_weight=90.0, delay=2.0,
                       dynamics_params="ThalToCortex.json", model_template="static_synapse")
    thalamus.build()
    thalamus.save(output_dir=str(network))

    (out / "inputs").mkdir(exist_ok=True)
    psg = PoissonSpikeGenerator(population="thalamus", seed=SEED % 2 ** 32)  # seeds numpy's global generator
    psg.add(node_ids=range(N_THAL), firing_rate=THAL_RATE, times=(T_INPUT_START / 1000.0, TSTOP / 1000.0))
    spikes = out / "inputs" / "thalamus_spikes.h5"
    psg.to_sonata(str(spikes))
    _round_to_tics(spikes, "thalamus")

    _components(out / "components")
    _configs(out)


def _round_to_tics(path: Path, population: str) -> None:
    """Spike times rounded to NEST's time base (TIC ms). A time less than half a tic after a grid
    point is otherwise delivered one step later by bmtk (precise_times: NEST's ms_stamp) than by
    NEST's allow_offgrid_times rounding (nearest tic first), which netbabel's NEST export follows."""
    import h5py

    with h5py.File(path, "r+") as f:
        ts = f["spikes"][population]["timestamps"]
        ts[...] = np.round(ts[()] / TIC) * TIC


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _components(comp: Path) -> None:
    for name, params in CELLS.items():
        _json(comp / "point_neuron_models" / f"{name}.json", params)
    for name in ("ExcToExc", "ExcToInh", "InhToExc", "InhToInh", "ThalToCortex"):
        _json(comp / "synaptic_models" / f"{name}.json", {})


def _configs(out: Path) -> None:
    _json(out / "circuit_config.json", {
        "manifest": {"$BASE_DIR": "${configdir}", "$NETWORK_DIR": "$BASE_DIR/network",
                     "$COMPONENTS_DIR": "$BASE_DIR/components"},
        "components": {"point_neuron_models_dir": "$COMPONENTS_DIR/point_neuron_models",
                       "synaptic_models_dir": "$COMPONENTS_DIR/synaptic_models"},
        "networks": {
            "nodes": [{"nodes_file": f"$NETWORK_DIR/{n}_nodes.h5", "node_types_file": f"$NETWORK_DIR/{n}_node_types.csv"}
                      for n in ("cortex", "thalamus")],
            "edges": [{"edges_file": f"$NETWORK_DIR/{n}_edges.h5", "edge_types_file": f"$NETWORK_DIR/{n}_edge_types.csv"}
                      for n in ("cortex_cortex", "thalamus_cortex")],
        },
    })
    _json(out / "node_sets.json", {"cortex": {"population": "cortex"}, "thalamus": {"population": "thalamus"}})
    _json(out / "simulation_config.json", {
        "manifest": {"$BASE_DIR": "${configdir}", "$INPUT_DIR": "$BASE_DIR/inputs", "$OUTPUT_DIR": "$BASE_DIR/output"},
        "target_simulator": "NEST",
        "run": {"tstart": 0.0, "tstop": TSTOP, "dt": DT, "random_seed": SEED % 2 ** 31},
        "network": "$BASE_DIR/circuit_config.json",
        "node_sets_file": "$BASE_DIR/node_sets.json",
        "inputs": {"thalamus_spikes": {"input_type": "spikes", "module": "sonata",
                                       "input_file": "$INPUT_DIR/thalamus_spikes.h5", "node_set": "thalamus"}},
        "output": {"log_file": "log.txt", "output_dir": "$OUTPUT_DIR", "spikes_file": "spikes.h5",
                   "overwrite_output_dir": True},
    })


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
