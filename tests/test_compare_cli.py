"""`netbabel compare` on synthetic spike reports: exit codes, tables and the HTML report."""

from __future__ import annotations

import numpy as np

from netbabel.cli import main
from netbabel.spikereport import write_report

DT = 0.1


def poisson(rate_hz: float, n: int, t_stop: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for k, pop in enumerate(("E", "I")):
        fired = rng.random((n, int(t_stop / DT))) < rate_hz * (1 + k) * DT / 1000.0
        ids, idx = np.nonzero(fired)
        out[pop] = (ids, np.round(idx * DT + DT, 10))
    return out


def write(tmp_path, name, spikes):
    path = tmp_path / name
    write_report(path, spikes, attrs={"duration": 1000.0})
    return str(path)


def test_identical_reports_are_exact(tmp_path, capsys):
    a = write(tmp_path, "a.h5", poisson(10, 100, 1000, 1))
    b = write(tmp_path, "b.h5", poisson(10, 100, 1000, 1))
    assert main(["compare", a, b, "--exact"]) == 0
    out = capsys.readouterr().out
    assert "exact (0.05 ms): identical" in out and "DIFFERENT" not in out


def test_one_dropped_spike_fails_exact_and_names_the_time(tmp_path, capsys):
    spikes = poisson(10, 100, 1000, 2)
    ids, times = spikes["E"]
    a = write(tmp_path, "a.h5", spikes)
    b = write(tmp_path, "b.h5", {"E": (ids[1:], times[1:]), "I": spikes["I"]})
    assert main(["compare", a, b, "--exact"]) == 1
    out = capsys.readouterr().out
    assert f"first divergence at {times[0]:g} ms" in out
    # statistically the same
    assert main(["compare", a, b]) == 0


def test_statistics_with_reference_seeds_and_html_report(tmp_path, capsys):
    refs = [write(tmp_path, f"ref{s}.h5", poisson(10, 150, 1000, s)) for s in (10, 11, 12)]
    same = write(tmp_path, "same.h5", poisson(10, 150, 1000, 13))
    fast = write(tmp_path, "fast.h5", poisson(16, 150, 1000, 13))
    extra = [x for r in refs[1:] for x in ("--reference", r)]
    assert main(["compare", refs[0], same, *extra]) == 0
    report = tmp_path / "out" / "report.html"
    assert main(["compare", refs[0], fast, *extra, "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "NOT equivalent" in out
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "DIFFERENT" in text and "fast.h5" in text and "<script" not in text


def test_bad_inputs_exit_2(tmp_path, capsys):
    good = write(tmp_path, "a.h5", poisson(10, 20, 1000, 3))
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    other = write(tmp_path, "other.h5", {"X": (np.array([0]), np.array([1.0]))})
    assert main(["compare", good, str(tmp_path / "missing.h5")]) == 2
    assert main(["compare", good, str(junk)]) == 2
    assert main(["compare", good, other]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "not a readable HDF5" in err and "no population in common" in err
