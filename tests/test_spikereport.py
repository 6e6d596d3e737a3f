"""The common SONATA spike report: written by netbabel, read by netbabel and by libsonata."""

from __future__ import annotations

import numpy as np

from netbabel.spikereport import read_report, write_report


def test_report_round_trip_sorted_by_time(tmp_path):
    spikes = {"E": (np.array([3, 1, 2]), np.array([5.0, 1.5, 1.5])), "I": (np.array([0]), np.array([2.25]))}
    path = write_report(tmp_path / "spikes.h5", spikes)
    back = read_report(path)
    assert list(back) == ["E", "I"]
    assert back["E"][1].tolist() == [1.5, 1.5, 5.0]
    assert back["E"][0].tolist() == [1, 2, 3]
    assert back["I"][0].tolist() == [0] and back["I"][1].tolist() == [2.25]


def test_libsonata_reads_the_report(tmp_path):
    import libsonata

    ids = np.array([0, 4, 4, 9])
    times = np.array([0.1, 0.2, 7.5, 3.0])
    write_report(tmp_path / "spikes.h5", {"cortex": (ids, times)})
    reader = libsonata.SpikeReader(str(tmp_path / "spikes.h5"))
    assert reader.get_population_names() == ["cortex"]
    population = reader["cortex"]
    assert population.sorting == "by_time"
    got = sorted(population.get())
    assert got == sorted(zip(ids.tolist(), times.tolist()))
