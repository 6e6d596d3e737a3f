"""Rules -> explicit cells, edges and input spike trains (deterministic, chunked, SONATA HDF5).

Public API:

- `instantiate_to_directory(description, out_dir, chunk_size=None, processes=1, progress=None)`:
  the explicit (frozen) model directory (model.json, nodes.h5, edges.h5, inputs.h5).
- `initial_potentials(description, population)`: per-cell V_m when v_init is a distribution.
- `iter_edges(description, projection_index, blocks=None)`: stream a projection's edges as
  `EdgeBlock`s (sorted by target), identical to what is written.
- `iter_spikes(description, input_index)`: stream a Poisson input's merged trains.
- `write_edges_file(path, description, projections=None, ...)`: one SONATA edges file.
- `EdgePopulationWriter`: append edges to one SONATA edge population, then `finish()` (indices).
- `population_positions(description, population)`: N x 3 positions (um).

See README.md in this folder for the semantics (rules, RNG streams, delay rounding,
Poisson trains).
"""

from netbabel.instantiate.directory import estimate, initial_potentials, instantiate_to_directory, make_job
from netbabel.instantiate.edgesfile import write_edges_file
from netbabel.instantiate.inputs import iter_spikes, plan_poisson
from netbabel.instantiate.positions import population_positions
from netbabel.instantiate.rules import EdgeBlock, edge_block, iter_edges, plan_projection
from netbabel.instantiate.values import round_delays
from netbabel.instantiate.writer import EdgePopulationWriter, SpikeWriter, write_nodes

__all__ = [
    "EdgeBlock", "EdgePopulationWriter", "SpikeWriter", "edge_block", "estimate", "initial_potentials",
    "instantiate_to_directory", "iter_edges", "iter_spikes", "make_job", "plan_poisson", "plan_projection",
    "population_positions", "round_delays", "write_edges_file", "write_nodes",
]
