"""Every backend on the feature model, judged feature by feature against NEST (support-matrix cells)."""

from __future__ import annotations

import pytest

import features
import harness

CANDIDATES = ["nest", "pynn-nest", "pynn-neuron", "netpyne", "neuroml", "neuroml-neuron", "neuroml-pylems"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", CANDIDATES)
def test_backend_against_nest(backend, feature_model, nest_reference, mode, matrix, tmp_path):
    harness.backend_module(backend)
    description, owner = feature_model
    if backend == "nest":
        candidate, refused, model = nest_reference[0], {}, description
    else:
        candidate, refused, model = harness.simulate_with_refusals(backend, description, owner,
                                                                   tmp_path / "run.h5", mode)
    cells = harness.feature_cells(owner, nest_reference, candidate, model, refused)
    for (group, feature), (cell, detail) in cells.items():
        if backend == "nest" and cell == "exact":
            cell = "reference"
        matrix.record(group, feature, backend, cell, f"{mode} mode; {detail}" if detail else f"{mode} mode")
    matrix.verify()
