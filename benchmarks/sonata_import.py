"""Import of large SONATA circuits: netbabel's importer against reading the same edges with libsonata alone.

Generates, in a temporary folder, a SONATA circuit (two node populations of 100,000 point
neurons, one edge population with per-edge syn_weight and delay, libsonata indices) with
10 million edges (100 million with --sizes 10e6,100e6; about 6 GB of disk), then measures in
fresh subprocesses:

- `netbabel`: `netbabel.importers.sonata.read(config)`: config, node types, every edge's source
  and target id range-checked, edge types, weight signs, index consistency (the file is
  referenced, not copied);
- `netbabel derived`: the same edges with syn_weight and delay in the edge types table and
  `nsyns` per edge, which netbabel must rewrite (weights = syn_weight * nsyns) into a derived file;
- `libsonata`: the floor: open the population and read source ids, target ids, syn_weight and
  delay of every edge (what any importer has to touch).

Prints edges per second and peak RSS (each run in its own process).
Usage: python benchmarks/sonata_import.py [--sizes 10e6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

N_NODES = 100_000
CHUNK = 1 << 22


def make_circuit(root: Path, n_edges: int, derived: bool) -> Path:
    """A SONATA circuit with `n_edges` random edges (written in chunks)."""
    import libsonata

    net = root / "network"
    comp = root / "components"
    (comp / "point_neuron_models").mkdir(parents=True, exist_ok=True)
    (comp / "synaptic_models").mkdir(parents=True, exist_ok=True)
    net.mkdir(parents=True, exist_ok=True)
    (comp / "point_neuron_models" / "cell.json").write_text(json.dumps({"tau_m": 10.0}))
    (comp / "synaptic_models" / "syn.json").write_text("{}")
    (net / "node_types.csv").write_text("node_type_id model_type model_template dynamics_params\n"
                                        "1 point_process nest:iaf_psc_alpha cell.json\n")
    weight_cols = " syn_weight delay" if derived else ""
    weight_vals = " 2.5 1.5" if derived else ""
    (net / "edge_types.csv").write_text(f"edge_type_id model_template dynamics_params{weight_cols}\n"
                                        f"10 static_synapse syn.json{weight_vals}\n")
    with h5py.File(net / "nodes.h5", "w") as f:
        for pop in ("A", "B"):
            g = f.create_group(f"nodes/{pop}")
            g.create_dataset("node_type_id", data=np.ones(N_NODES, np.int64))
            g.create_dataset("node_group_id", data=np.zeros(N_NODES, np.int64))
            g.create_dataset("node_group_index", data=np.arange(N_NODES, dtype=np.uint64))
            g.create_group("0")
    rng = np.random.default_rng(1)
    with h5py.File(net / "edges.h5", "w") as f:
        g = f.create_group("edges/A_to_B")
        cols = {"source_node_id": np.uint64, "target_node_id": np.uint64, "edge_type_id": np.int64,
                "edge_group_id": np.int64, "edge_group_index": np.uint64}
        cols.update({"0/nsyns": np.int64} if derived else {"0/syn_weight": np.float64, "0/delay": np.float64})
        ds = {k: g.create_dataset(k, shape=(n_edges,), dtype=t, chunks=(1 << 18,)) for k, t in cols.items()}
        ds["source_node_id"].attrs["node_population"] = "A"
        ds["target_node_id"].attrs["node_population"] = "B"
        for start in range(0, n_edges, CHUNK):
            n = min(CHUNK, n_edges - start)
            ds["source_node_id"][start:start + n] = rng.integers(0, N_NODES, n)
            ds["target_node_id"][start:start + n] = np.sort(rng.integers(0, N_NODES, n))
            ds["edge_type_id"][start:start + n] = 10
            ds["edge_group_id"][start:start + n] = 0
            ds["edge_group_index"][start:start + n] = np.arange(start, start + n)
            if derived:
                ds["0/nsyns"][start:start + n] = rng.integers(1, 4, n)
            else:
                ds["0/syn_weight"][start:start + n] = rng.uniform(1.0, 5.0, n)
                ds["0/delay"][start:start + n] = 1.5
    libsonata.EdgePopulation.write_indices(str(net / "edges.h5"), "A_to_B", N_NODES, N_NODES, False)
    config = {"manifest": {"$BASE_DIR": ".", "$NETWORK_DIR": "$BASE_DIR/network", "$COMPONENTS_DIR": "$BASE_DIR/components"},
              "components": {"point_neuron_models_dir": "$COMPONENTS_DIR/point_neuron_models",
                             "synaptic_models_dir": "$COMPONENTS_DIR/synaptic_models"},
              "networks": {"nodes": [{"nodes_file": "$NETWORK_DIR/nodes.h5", "node_types_file": "$NETWORK_DIR/node_types.csv"}],
                           "edges": [{"edges_file": "$NETWORK_DIR/edges.h5", "edge_types_file": "$NETWORK_DIR/edge_types.csv"}]}}
    (root / "circuit_config.json").write_text(json.dumps(config))
    return root / "circuit_config.json"


NETBABEL = """
import sys, argparse
from netbabel.importers import sonata
d = sonata.read(sys.argv[1], argparse.Namespace(sonata_workdir=sys.argv[2]))
print(sum(1 for _ in d.projections))
"""

LIBSONATA = """
import sys, libsonata
pop = libsonata.EdgeStorage(sys.argv[1]).open_population("A_to_B")
sel = pop.select_all()
s = pop.source_nodes(sel); t = pop.target_nodes(sel)
names = pop.attribute_names
w = pop.get_attribute("syn_weight" if "syn_weight" in names else "nsyns", sel)
if "delay" in names:
    d = pop.get_attribute("delay", sel)
print(int(s.max()) < 100000 and int(t.max()) < 100000)
"""


def measure(code: str, *args: str) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of `python -c code args` in a fresh process."""
    t0 = time.perf_counter()
    # VmHWM is the peak of this process's own address space (ru_maxrss survives exec from a big parent)
    wrapper = (code + "\nprint('RSS', next(l.split()[1] for l in open('/proc/self/status') "
               "if l.startswith('VmHWM')))\n")
    out = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t0
    rss_kb = float(out.stdout.strip().splitlines()[-1].split()[1])
    return elapsed, rss_kb / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10e6", help="comma-separated edge counts (e.g. 10e6,100e6)")
    parser.add_argument("--keep", help="generate into this folder and keep it")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        for derived in (False, True):
            root = Path(args.keep or tempfile.mkdtemp(prefix="sonata-bench-")) / f"{n}_{int(derived)}"
            t0 = time.perf_counter()
            config = make_circuit(root, n, derived)
            gen = time.perf_counter() - t0
            edges = str(root / "network" / "edges.h5")
            t_lib, rss_lib = measure(LIBSONATA, edges)
            t_nb, rss_nb = measure(NETBABEL, str(config), str(root / "derived"))
            label = "derived (rewrite)" if derived else "referenced"
            rows.append((n, label, t_nb, rss_nb, t_lib, rss_lib, gen))
            if not args.keep:
                shutil.rmtree(root.parent, ignore_errors=True)
    print(f"{'edges':>12} {'netbabel path':<18} {'netbabel s':>10} {'Medges/s':>9} {'RSS MB':>8} "
          f"{'libsonata s':>11} {'Medges/s':>9} {'RSS MB':>8} {'time ratio':>10} {'RSS ratio':>9}")
    for n, label, t_nb, rss_nb, t_lib, rss_lib, _gen in rows:
        print(f"{n:>12,} {label:<18} {t_nb:>10.2f} {n / t_nb / 1e6:>9.1f} {rss_nb:>8.0f} "
              f"{t_lib:>11.2f} {n / t_lib / 1e6:>9.1f} {rss_lib:>8.0f} {t_nb / t_lib:>10.2f} {rss_nb / rss_lib:>9.2f}")
    print("time ratio = netbabel / libsonata (1.0 = the floor); each run in a fresh process, "
          "interpreter start-up included in both")


if __name__ == "__main__":
    main()
