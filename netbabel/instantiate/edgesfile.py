"""`write_edges_file`: the projections of a description as one SONATA edges file (for exporters)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import h5py

from netbabel.atomic import atomic_path
from netbabel.description.model import Description
from netbabel.instantiate.rules import block_arrays, plan_projection
from netbabel.instantiate.writer import CACHE_BYTES, FILE_ALIGNMENT, EdgePopulationWriter


def write_edges_file(path: Path | str, description: Description, projections: Sequence[int] | None = None,
                     population_names: Callable[[int], str] | None = None,
                     edge_type_ids: Callable[[int], int] | None = None,
                     node_population_names: Callable[[str], str] | None = None) -> Path:
    """Write one SONATA edges file (atomically) with one edge population per projection.

    Edges are the ones `instantiate_to_directory` draws (same seeds, same order). By default the
    edge population is the projection name, `edge_type_id` the projection index and the node
    populations the netbabel population names; pass functions to rename them. Rules must not be
    `explicit` (copy those files instead).
    """
    path = Path(path)
    indices = range(len(description.projections)) if projections is None else projections
    with atomic_path(path) as tmp, h5py.File(tmp, "w", rdcc_nbytes=CACHE_BYTES, rdcc_nslots=10007, **FILE_ALIGNMENT) as f:
        f.create_group("edges")
        for i in indices:
            proj = description.projections[i]
            name = population_names(i) if population_names else description.projection_name(i)
            src = node_population_names(proj.source) if node_population_names else proj.source
            tgt = node_population_names(proj.target) if node_population_names else proj.target
            plan = plan_projection(description, i)
            w = EdgePopulationWriter(f, name, src, tgt, plan.ns, plan.nt, expected_size=plan.expected_edges,
                                     exact_size=plan.exact_edges, edge_type_id=edge_type_ids(i) if edge_type_ids else i)
            for b in range(plan.n_blocks):
                e = block_arrays(plan, b)
                w.append(e.sources, e.targets, e.weights, e.delays)
            w.finish()
    return path
