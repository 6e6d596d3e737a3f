"""NEST native mode under MPI: 2 processes x 1 thread == 1 process x 2 threads (same virtual processes).

Needs NEST built with MPI (`make nest-mpi`; the PyPI wheel has no MPI) and mpirun.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from netbabel.backends.nest import _site_packages, nest_mpi_prefix
from netbabel.cli import main as netbabel
from netbabel.spikereport import read_report

from test_nest_export import BRUNEL, SMALL_BRUNEL

needs_mpi_nest = [
    pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun (apt-get install openmpi-bin)"),
    pytest.mark.skipif(_site_packages(nest_mpi_prefix()) is None,
                       reason=f"no NEST built with MPI in {nest_mpi_prefix()}: run `make nest-mpi`"),
]


@needs_mpi_nest[0]
@needs_mpi_nest[1]
def test_two_processes_equal_two_threads(tmp_path):
    runs = {}
    for processes, threads in ((2, 1), (1, 2)):
        out = tmp_path / f"p{processes}t{threads}.h5"
        assert netbabel(["simulate", str(BRUNEL), "--backend", "nest", *SMALL_BRUNEL, "--processes", str(processes),
                         "--threads", str(threads), "-o", str(out)]) == 0
        runs[processes] = read_report(out)
    mpi, threaded = runs[2], runs[1]
    assert set(mpi) == {"E", "I"}
    for pop in mpi:
        assert len(mpi[pop][1]) > 100
        np.testing.assert_array_equal(mpi[pop][0], threaded[pop][0])
        np.testing.assert_array_equal(mpi[pop][1], threaded[pop][1])


def test_wheel_without_mpi_is_explained(tmp_path, monkeypatch, capsys):
    """Without the MPI build, --processes 2 stops with a message naming `make nest-mpi` (exit 2)."""
    monkeypatch.setenv("NETBABEL_NEST_MPI", str(tmp_path / "absent"))
    assert netbabel(["simulate", str(BRUNEL), "--backend", "nest", *SMALL_BRUNEL, "--processes", "2",
                     "-o", str(tmp_path / "s.h5")]) == 2
    assert "make nest-mpi" in capsys.readouterr().err
