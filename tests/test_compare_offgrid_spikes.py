"""Off-grid spike-source times: every export puts them at the end of their step (NEST's rule), so NEST and
NetPyNE give identical spikes in frozen mode, and the PyNN export hands PyNN on-grid times."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main
from netbabel.compare.exact import compare_exact
from netbabel.converters.nest import grid_step, grid_times
from netbabel.spikereport import read_report, write_report

DT = 0.1
# on the grid, just after a grid point, mid-step, just before a grid point, within half a tic of the grid
SOURCE_TIMES = [[2.04, 4.55, 8.0, 11.97], [3.01, 7.5, 13.0004, 15.33]]
SOURCE_ON_GRID = [[2.1, 4.6, 8.0, 12.0], [3.1, 7.5, 13.0, 15.4]]
TRAIN_TIMES = [[1.03, 5.0, 9.25, 12.0004], [2.26, 6.0999, 10.5, 14.51]]


def offgrid_model(directory: Path) -> Path:
    """A spike_generator population and a spike_train input (both off the 0.1 ms grid), each driving two
    iaf_psc_exp cells hard enough that every input spike makes a spike one delay later."""
    ids = np.repeat([0, 1], 4)
    write_report(directory / "train.h5", {"train": (ids, np.array(TRAIN_TIMES).ravel())})
    model = {
        "netbabel": "1", "name": "offgrid",
        "cell_types": {"src": {"model": "spike_generator", "params": {"spike_times": SOURCE_TIMES}},
                       "lif": {"model": "iaf_psc_exp", "params": {"t_ref": 0.5}}},
        "synapse_types": {"exc": {"model": "static", "receptor": "excitatory"}},
        "populations": {"src": {"cell_type": "src", "size": 2}, "from_src": {"cell_type": "lif", "size": 2},
                        "from_train": {"cell_type": "lif", "size": 2}},
        "projections": [{"name": "p", "source": "src", "target": "from_src", "synapse_type": "exc",
                         "rule": {"type": "one_to_one"}, "weight": 3000.0, "delay": 1.0}],
        "inputs": [{"name": "in_train", "type": "spike_train", "target": "from_train", "file": "train.h5",
                    "population": "train", "weight": 3000.0, "delay": 1.0, "synapse_type": "exc"}],
        "simulation": {"duration": 20.0, "dt": DT, "seed": 1, "record": {"spikes": "all"}},
    }
    path = directory / "model.json"
    path.write_text(json.dumps(model))
    return path


def test_grid_rule_rounds_up_with_half_a_tic_tolerance():
    times = [0.1, 1.0, 1.0004, 1.0006, 1.03, 1.0999, 2.5, 2.04, 13.0004, 15.33]
    assert grid_times(times, DT).tolist() == [round(grid_step(t, DT) * DT, 10) for t in times]
    assert grid_times(times, DT).tolist() == [0.1, 1.0, 1.0, 1.1, 1.1, 1.1, 2.5, 2.1, 13.0, 15.4]
    assert grid_times(np.array(SOURCE_TIMES), DT).tolist() == SOURCE_ON_GRID


def test_pynn_export_hands_pynn_on_grid_times(tmp_path):
    model = offgrid_model(tmp_path)
    out = tmp_path / "pynn"
    assert main(["convert", str(model), "--to", "pynn", "-o", str(out)]) == 0
    data = json.loads(next(out.glob("*.json")).read_text())
    assert data["spike_times/src"] == SOURCE_ON_GRID
    trains = read_report(out / "train_train_on_grid.h5")["train"]
    assert np.allclose(np.sort(trains[1]), np.sort(grid_times(np.array(TRAIN_TIMES).ravel(), DT)), atol=1e-12)
    assert "train_train_on_grid.h5" in next(out.glob("*.py")).read_text()


@pytest.mark.skipif(importlib.util.find_spec("nest") is None or importlib.util.find_spec("netpyne") is None,
                    reason="needs NEST and NetPyNE")
def test_offgrid_trains_give_identical_spikes_in_nest_and_netpyne_frozen(tmp_path):
    model = offgrid_model(tmp_path)
    reports = {}
    for backend in ("nest", "netpyne"):
        output = tmp_path / f"{backend}.h5"
        assert main(["simulate", str(model), "--backend", backend, "--mode", "frozen", "-o", str(output),
                     "--workdir", str(tmp_path / backend)]) == 0
        reports[backend] = read_report(output)
    nest, netpyne = reports["nest"], reports["netpyne"]
    result = compare_exact(nest, netpyne, tolerance=1e-6)
    assert result.identical, result.to_dict()
    for cell, expected in enumerate(SOURCE_ON_GRID):
        ids, times = netpyne["src"]
        assert np.allclose(np.sort(times[ids == cell]), expected, atol=1e-9)
    # every input spike (source or file) makes one spike one delay (1 ms) and a little integration later
    assert len(nest["from_src"][1]) >= 7 and len(nest["from_train"][1]) == 8


