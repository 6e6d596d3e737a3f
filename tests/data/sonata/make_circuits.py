"""Small SONATA circuits in the styles of the public examples, generated for the tests.

- `point_circuit(dir, style="modern")`: bmtk-builder style (circuit_config.json +
  simulation_config.json, manifest, node types split by pop_name, syn_weight and delay in
  the edge types CSV with per-edge nsyns, per-edge syn_weight on the input edges, libsonata
  indices, SONATA spike file); `style="allen"`: the older Allen style (one combined
  config.json, explicit node_id datasets, no node_population attributes, `indicies` group,
  `/spikes/gids` spike file) that libsonata 0.2 rejects.
- `biophysical_circuit(dir)`: a few SWC + Allen-params cells (builtin hh/pas) driven by
  virtual inputs through Exp2Syn edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

N_EXC, N_INH, N_EXT = 160, 40, 100


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    lines = [" ".join(header)] + [" ".join("NULL" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def point_circuit(root: Path, style: str = "modern", seed: int = 1, tstop: float = 500.0) -> Path:
    """200 iaf_psc_alpha cells (exc/inh) + 100 virtual Poisson inputs; returns the config path."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    net, comp = root / "network", root / "components"
    net.mkdir(parents=True, exist_ok=True)
    _json(comp / "point_neuron_models" / "exc.json",
          {"C_m": 250.0, "tau_m": 10.0, "t_ref": 2.0, "E_L": -70.0, "V_th": -55.0, "V_reset": -70.0,
           "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "V_m": -70.0})
    _json(comp / "point_neuron_models" / "inh.json",
          {"C_m": 250.0, "tau_m": 8.0, "t_ref": 1.5, "E_L": -70.0, "V_th": -55.0, "V_reset": -70.0,
           "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "V_m": -70.0})
    _json(comp / "synaptic_models" / "exc.json", {})
    _json(comp / "synaptic_models" / "inh.json", {})
    prefix = "nest:" if style == "modern" else ""
    _csv(net / "internal_node_types.csv", ["node_type_id", "model_type", "model_template", "dynamics_params", "pop_name", "ei"],
         [[100, "point_process", f"{prefix}iaf_psc_alpha", "exc.json", "Exc", "e"],
          [101, "point_process", f"{prefix}iaf_psc_alpha", "inh.json", "Inh", "i"]])
    _csv(net / "external_node_types.csv", ["node_type_id", "model_type", "pop_name"], [[200, "virtual", "ext"]])
    n = N_EXC + N_INH
    types = np.where(rng.permutation(n) < N_EXC, 100, 101)  # interleaved, as bmtk builders often write
    with h5py.File(net / "internal_nodes.h5", "w") as f:
        g = f.create_group("nodes/internal")
        g.create_dataset("node_type_id", data=types.astype(np.int64))
        g.create_dataset("node_group_id", data=np.zeros(n, np.int64))
        g.create_dataset("node_group_index", data=np.arange(n, dtype=np.int64))
        if style == "allen":
            g.create_dataset("node_id", data=np.arange(n, dtype=np.int64))
        g0 = g.create_group("0")
        for k in "xyz":
            g0.create_dataset(k, data=rng.uniform(0, 100, n))
        g0.create_dataset("tuning_angle", data=rng.uniform(0, 360, n))
    with h5py.File(net / "external_nodes.h5", "w") as f:
        g = f.create_group("nodes/external")
        g.create_dataset("node_type_id", data=np.full(N_EXT, 200, np.int64))
        g.create_dataset("node_group_id", data=np.zeros(N_EXT, np.int64))
        g.create_dataset("node_group_index", data=np.arange(N_EXT, dtype=np.int64))
        if style == "allen":
            g.create_dataset("node_id", data=np.arange(N_EXT, dtype=np.int64))
        g.create_group("0")
    # recurrent edges: 20 sources per target, weights and delays in the edge types table, nsyns per edge
    src, tgt = [], []
    for t in range(n):
        s = rng.choice(n, 20, replace=False)
        src.append(s)
        tgt.append(np.full(20, t))
    src, tgt = np.concatenate(src), np.concatenate(tgt)
    etype = np.where(types[src] == 100, 300, 301)
    nsyns = rng.integers(1, 3, src.size)
    _csv(net / "internal_edge_types.csv", ["edge_type_id", "model_template", "syn_weight", "delay", "dynamics_params"],
         [[300, "static_synapse", 60.0, 1.5, "exc.json"], [301, "static_synapse", -150.0, 1.0, "inh.json"]])
    _edges(net / "internal_edges.h5", "internal_to_internal", src, tgt, etype, {"nsyns": nsyns}, "internal",
           "internal", style)
    # input edges: each external node -> 10 random internal cells, per-edge syn_weight
    s2 = np.repeat(np.arange(N_EXT), 10)
    t2 = np.concatenate([rng.choice(n, 10, replace=False) for _ in range(N_EXT)])
    _csv(net / "external_edge_types.csv", ["edge_type_id", "model_template", "delay", "dynamics_params"],
         [[400, "static_synapse", 2.0, "exc.json"]])
    _edges(net / "external_edges.h5", "external_to_internal", s2, t2, np.full(s2.size, 400),
           {"syn_weight": rng.uniform(2000.0, 3000.0, s2.size)}, "external", "internal", style)
    # Poisson input spikes at 15 Hz on the dt grid, from 1 ms on
    ids, times = [], []
    for i in range(N_EXT):
        k = rng.poisson(15.0 * tstop / 1000.0)
        t = np.unique(np.round(rng.uniform(1.0, tstop, k), 1))
        ids.append(np.full(t.size, i))
        times.append(t)
    ids, times = np.concatenate(ids), np.concatenate(times)
    order = np.argsort(times, kind="stable")
    (root / "inputs").mkdir(exist_ok=True)
    with h5py.File(root / "inputs" / "external_spikes.h5", "w") as f:
        if style == "allen":
            f.create_dataset("spikes/gids", data=ids[order].astype(np.uint64))
            f.create_dataset("spikes/timestamps", data=times[order])
        else:
            g = f.create_group("spikes/external")
            g.attrs["sorting"] = "by_time"
            g.create_dataset("timestamps", data=times[order]).attrs["units"] = "ms"
            g.create_dataset("node_ids", data=ids[order].astype(np.uint64))
    networks = {"nodes": [{"nodes_file": "$NETWORK_DIR/internal_nodes.h5",
                           "node_types_file": "$NETWORK_DIR/internal_node_types.csv"},
                          {"nodes_file": "$NETWORK_DIR/external_nodes.h5",
                           "node_types_file": "$NETWORK_DIR/external_node_types.csv"}],
                "edges": [{"edges_file": "$NETWORK_DIR/internal_edges.h5",
                           "edge_types_file": "$NETWORK_DIR/internal_edge_types.csv"},
                          {"edges_file": "$NETWORK_DIR/external_edges.h5",
                           "edge_types_file": "$NETWORK_DIR/external_edge_types.csv"}]}
    components = {"point_neuron_models_dir": "$COMPONENTS_DIR/point_neuron_models",
                  "synaptic_models_dir": "$COMPONENTS_DIR/synaptic_models"}
    simulation = {"run": {"tstop": tstop, "dt": 0.1}, "target_simulator": "NEST",
                  "inputs": {"ext_spikes": {"input_type": "spikes", "module": "sonata" if style == "modern" else "h5",
                                            "input_file": "$INPUT_DIR/external_spikes.h5", "node_set": "external"}},
                  "output": {"output_dir": "$OUTPUT_DIR", "spikes_file": "spikes.h5"}}
    if style == "allen":
        config = {"manifest": {"$BASE_DIR": "${configdir}", "$NETWORK_DIR": "$BASE_DIR/network",
                               "$COMPONENTS_DIR": "$BASE_DIR/components", "$INPUT_DIR": "$BASE_DIR/inputs",
                               "$OUTPUT_DIR": "$BASE_DIR/output"},
                  "components": components, "networks": networks, **simulation}
        _json(root / "config.json", config)
        return root / "config.json"
    _json(root / "circuit_config.json", {"manifest": {"$BASE_DIR": ".", "$NETWORK_DIR": "$BASE_DIR/network",
                                                      "$COMPONENTS_DIR": "$BASE_DIR/components"},
                                         "components": components, "networks": networks})
    _json(root / "simulation_config.json", {"manifest": {"$BASE_DIR": ".", "$INPUT_DIR": "$BASE_DIR/inputs",
                                                         "$OUTPUT_DIR": "$BASE_DIR/output"},
                                            "network": "$BASE_DIR/circuit_config.json", **simulation})
    return root / "simulation_config.json"


def _edges(path: Path, name: str, src: np.ndarray, tgt: np.ndarray, etype: np.ndarray, group: dict,
           spop: str, tpop: str, style: str) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group(f"edges/{name}")
        s = g.create_dataset("source_node_id", data=src.astype(np.uint64))
        t = g.create_dataset("target_node_id", data=tgt.astype(np.uint64))
        if style == "modern":
            s.attrs["node_population"] = spop
            t.attrs["node_population"] = tpop
        g.create_dataset("edge_type_id", data=etype.astype(np.int64))
        g.create_dataset("edge_group_id", data=np.zeros(src.size, np.int64))
        g.create_dataset("edge_group_index", data=np.arange(src.size, dtype=np.uint64))
        g0 = g.create_group("0")
        for k, v in group.items():
            g0.create_dataset(k, data=v)
        if style == "allen":  # bmtk's old misspelled index group
            for direction, col in (("source_to_target", src), ("target_to_source", tgt)):
                ig = g.create_group(f"indicies/{direction}")
                nodes = int(col.max()) + 1
                counts = np.bincount(col, minlength=nodes)
                ends = np.cumsum(counts)
                ig.create_dataset("node_id_to_ranges", data=np.stack([np.arange(nodes), np.arange(nodes) + 1], 1))
                ig.create_dataset("range_to_edge_id", data=np.stack([ends - counts, ends], 1))
    if style == "modern":
        import libsonata

        n_src = int(src.max()) + 1
        n_tgt = int(tgt.max()) + 1
        libsonata.EdgePopulation.write_indices(str(path), name, max(n_src, N_EXC + N_INH if spop == "internal" else N_EXT),
                                               max(n_tgt, N_EXC + N_INH), False)


SWC = """# a soma with two dendrites (one branching) and an axon
1 1 0 0 0 8 -1
2 3 0 8 0 1.0 1
3 3 0 40 0 0.9 2
4 3 0 80 0 0.8 3
5 3 20 100 0 0.6 4
6 3 -20 100 0 0.6 4
7 3 0 -8 0 1.0 1
8 3 0 -60 0 0.8 7
9 2 8 0 0 0.5 1
10 2 60 0 0 0.5 9
"""


def biophysical_circuit(root: Path, n_cells: int = 3, n_inputs: int = 20, seed: int = 2,
                        tstop: float = 300.0) -> Path:
    """A few Allen-style biophysical cells (hh soma, passive dendrites) with virtual Exp2Syn inputs."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    net, comp = root / "network", root / "components"
    net.mkdir(parents=True, exist_ok=True)
    (comp / "morphologies").mkdir(parents=True, exist_ok=True)
    (comp / "morphologies" / "cell.swc").write_text(SWC)
    _json(comp / "biophysical_neuron_models" / "cell.json", {
        "passive": [{"ra": 100.0, "cm": [{"section": "soma", "cm": 1.0}, {"section": "dend", "cm": 2.0},
                                         {"section": "axon", "cm": 1.0}], "e_pas": -65.0}],
        "conditions": [{"celsius": 6.3, "v_init": -65.0, "erev": [{"section": "soma", "ena": 50.0, "ek": -77.0}]}],
        "genome": [{"section": "soma", "name": "gnabar_hh", "value": 0.12, "mechanism": "hh"},
                   {"section": "soma", "name": "gkbar_hh", "value": 0.036, "mechanism": "hh"},
                   {"section": "soma", "name": "gl_hh", "value": 0.0003, "mechanism": "hh"},
                   {"section": "soma", "name": "el_hh", "value": -54.3, "mechanism": "hh"},
                   {"section": "dend", "name": "g_pas", "value": 0.0001, "mechanism": ""},
                   {"section": "axon", "name": "g_pas", "value": 0.0001, "mechanism": ""}]})
    _json(comp / "synaptic_models" / "AMPA_ExcToExc.json", {"level_of_detail": "exp2syn", "tau1": 0.5, "tau2": 3.0,
                                                           "erev": 0.0})
    _csv(net / "bio_node_types.csv", ["node_type_id", "model_type", "model_template", "morphology",
                                      "dynamics_params", "model_processing", "pop_name"],
         [[10, "biophysical", "ctdb:Biophys1.hoc", "cell.swc", "cell.json", "aibs_perisomatic", "Pyr"]])
    _csv(net / "lgn_node_types.csv", ["node_type_id", "model_type", "pop_name"], [[20, "virtual", "lgn"]])
    with h5py.File(net / "bio_nodes.h5", "w") as f:
        g = f.create_group("nodes/bio")
        g.create_dataset("node_type_id", data=np.full(n_cells, 10, np.int64))
        g.create_dataset("node_group_id", data=np.zeros(n_cells, np.int64))
        g.create_dataset("node_group_index", data=np.arange(n_cells, dtype=np.int64))
        g0 = g.create_group("0")
        for k in "xyz":
            g0.create_dataset(k, data=rng.uniform(0, 50, n_cells))
        g0.create_dataset("rotation_angle_yaxis", data=rng.uniform(0, 6.28, n_cells))
    with h5py.File(net / "lgn_nodes.h5", "w") as f:
        g = f.create_group("nodes/lgn")
        g.create_dataset("node_type_id", data=np.full(n_inputs, 20, np.int64))
        g.create_dataset("node_group_id", data=np.zeros(n_inputs, np.int64))
        g.create_dataset("node_group_index", data=np.arange(n_inputs, dtype=np.int64))
        g.create_group("0")
    src = np.repeat(np.arange(n_inputs), n_cells)
    tgt = np.tile(np.arange(n_cells), n_inputs)
    _csv(net / "lgn_bio_edge_types.csv", ["edge_type_id", "model_template", "dynamics_params", "target_sections",
                                          "distance_range", "delay"],
         [[500, "exp2syn", "AMPA_ExcToExc.json", "\"['somatic']\"", "\"[0.0,1e20]\"", 2.0]])
    with h5py.File(net / "lgn_bio_edges.h5", "w") as f:
        g = f.create_group("edges/lgn_to_bio")
        g.create_dataset("source_node_id", data=src.astype(np.uint64)).attrs["node_population"] = "lgn"
        g.create_dataset("target_node_id", data=tgt.astype(np.uint64)).attrs["node_population"] = "bio"
        g.create_dataset("edge_type_id", data=np.full(src.size, 500, np.int64))
        g.create_dataset("edge_group_id", data=np.zeros(src.size, np.int64))
        g.create_dataset("edge_group_index", data=np.arange(src.size, dtype=np.uint64))
        g0 = g.create_group("0")
        g0.create_dataset("syn_weight", data=rng.uniform(0.003, 0.005, src.size))
        g0.create_dataset("sec_id", data=np.zeros(src.size, np.int64))
        g0.create_dataset("sec_x", data=np.full(src.size, 0.5))
    (root / "inputs").mkdir(exist_ok=True)
    ids, times = [], []
    for i in range(n_inputs):
        t = np.unique(np.round(rng.uniform(1.0, tstop, rng.poisson(20.0 * tstop / 1000.0)), 1))
        ids.append(np.full(t.size, i))
        times.append(t)
    ids, times = np.concatenate(ids), np.concatenate(times)
    with h5py.File(root / "inputs" / "lgn_spikes.h5", "w") as f:
        g = f.create_group("spikes/lgn")
        g.create_dataset("timestamps", data=times).attrs["units"] = "ms"
        g.create_dataset("node_ids", data=ids.astype(np.uint64))
    _json(root / "circuit_config.json", {
        "manifest": {"$BASE_DIR": ".", "$NETWORK_DIR": "$BASE_DIR/network", "$COMPONENTS_DIR": "$BASE_DIR/components"},
        "components": {"morphologies_dir": "$COMPONENTS_DIR/morphologies",
                       "biophysical_neuron_models_dir": "$COMPONENTS_DIR/biophysical_neuron_models",
                       "synaptic_models_dir": "$COMPONENTS_DIR/synaptic_models"},
        "networks": {"nodes": [{"nodes_file": "$NETWORK_DIR/bio_nodes.h5", "node_types_file": "$NETWORK_DIR/bio_node_types.csv"},
                               {"nodes_file": "$NETWORK_DIR/lgn_nodes.h5", "node_types_file": "$NETWORK_DIR/lgn_node_types.csv"}],
                     "edges": [{"edges_file": "$NETWORK_DIR/lgn_bio_edges.h5",
                                "edge_types_file": "$NETWORK_DIR/lgn_bio_edge_types.csv"}]}})
    _json(root / "simulation_config.json", {
        "manifest": {"$BASE_DIR": ".", "$INPUT_DIR": "$BASE_DIR/inputs"},
        "network": "$BASE_DIR/circuit_config.json", "target_simulator": "NEURON",
        "run": {"tstop": tstop, "dt": 0.025, "dL": 20.0, "spike_threshold": -15.0},
        "conditions": {"celsius": 6.3, "v_init": -65.0},
        "output": {"output_dir": "$BASE_DIR/output", "spikes_file": "spikes.h5"},
        "inputs": {"lgn_spikes": {"input_type": "spikes", "module": "sonata", "input_file": "$INPUT_DIR/lgn_spikes.h5",
                                  "node_set": "lgn"}}})
    return root / "simulation_config.json"


if __name__ == "__main__":
    import sys

    point_circuit(Path(sys.argv[1]) / "point")
    point_circuit(Path(sys.argv[1]) / "allen", style="allen")
    biophysical_circuit(Path(sys.argv[1]) / "bio")
