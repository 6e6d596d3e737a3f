"""Every backend on the feature model, judged feature by feature against NEST (support-matrix cells)."""

from __future__ import annotations

import pytest

import harness
from conftest import SIZES

CANDIDATES = ["nest", "pynn-nest", "pynn-neuron", "netpyne", "neuroml", "neuroml-neuron", "neuroml-pylems"]
# jNeuroML holds every frozen input spike in memory (out of memory at 1 GB on the default size) and
# PyLEMS does about 10^4 cell-steps per second: these run the tiny (micro) feature model.
SIZE = {"neuroml": "tiny", "neuroml-neuron": "tiny", "neuroml-pylems": "micro"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", CANDIDATES)
def test_backend_against_nest(backend, cache, mode, matrix, tmp_path):
    harness.backend_module(backend)
    size = SIZE.get(backend, "default")
    description, owner = cache.model(size)
    references = cache.reference(size)
    if backend == "nest":
        candidate, refused, model = references[0], {}, description
    else:
        candidate, refused, model = harness.simulate_with_refusals(backend, description, owner,
                                                                   tmp_path / "run.h5", mode)
    n, duration = SIZES[size]
    context = f"{mode} mode, {n} cells per population, {duration:g} ms"
    for (group, feature), (cell, detail) in harness.feature_cells(owner, references, candidate, model,
                                                                  refused).items():
        if backend == "nest" and cell == "exact":
            cell = "reference"
        matrix.record(group, feature, backend, cell, f"{context}; {detail}" if detail else context)
    matrix.verify()
