"""backends.common (subprocess runner) and backends.options (simulate flags); no simulator needed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from netbabel.backends.common import run_script, work_directory
from netbabel.backends.options import apply_simulation_options
from netbabel.converters.units import convert, factor
from netbabel.description import io
from netbabel.errors import NetbabelError

TINY = Path(__file__).parent / "data" / "tiny.json"


def test_unit_factors():
    assert convert(0.5, "nA", "pA") == 500.0
    assert factor("pF", "nF") == 1e-3
    assert factor("nS", "uS") == 1e-3
    assert factor("s", "ms") == 1e3
    assert factor("S/cm2", "mS/cm2") == 1e3
    with pytest.raises(ValueError):
        factor("pA", "nS")


def test_run_script_logs_and_succeeds(tmp_path):
    script = tmp_path / "ok.py"
    script.write_text("import sys\nprint('progress: 5/10 ms')\nprint('hello', sys.argv[1:])\n")
    result = run_script(script, tmp_path, args=["--x", "1"])
    assert result.returncode == 0
    log = result.log.read_text()
    assert "hello ['--x', '1']" in log and "progress: 5/10" in log


def test_run_script_failure_quotes_log_tail(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("print('about to fail')\nraise SystemExit(7)\n")
    with pytest.raises(NetbabelError) as err:
        run_script(script, tmp_path, hints={7: "seven means trouble"})
    text = str(err.value)
    assert "status 7" in text and "seven means trouble" in text and "about to fail" in text


def test_run_script_timeout(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(NetbabelError, match="timeout"):
        run_script(script, tmp_path, timeout=1.0)


def test_work_directory_kept_or_removed(tmp_path):
    with work_directory(argparse.Namespace(workdir=str(tmp_path / "keep"))) as d:
        (d / "f").write_text("x")
    assert (tmp_path / "keep" / "f").exists()
    with work_directory(None) as d:
        temp = d
    assert not temp.exists()


def _args(**kw):
    base = dict(duration=None, dt=None, seed=None, threads=None, processes=1,
                current_step=None, population=None, record_v=[])
    base.update(kw)
    return argparse.Namespace(**base)


def test_simulation_options_applied():
    d = io.load(TINY)
    out = apply_simulation_options(d, _args(duration=50, dt=0.05, seed=7, threads=2,
                                             current_step="0.3,10,20", population="B",
                                             record_v=["B:0,2-3"]))
    assert out is not d and d.simulation.duration == 200.0
    assert (out.simulation.duration, out.simulation.dt, out.simulation.seed, out.simulation.threads) == (50.0, 0.05, 7, 2)
    step = out.inputs[-1]
    assert (step.type, step.target, step.amplitude, step.start, step.stop) == ("dc", "B", 300.0, 10.0, 20.0)
    assert [(r.population, r.ids) for r in out.simulation.record.v] == [("A", [0, 1]), ("B", [0, 2, 3])]


@pytest.mark.parametrize("kw", [dict(current_step="1,2"), dict(current_step="1,5,2"),
                                dict(current_step="1,0,2", population="nope"),
                                dict(record_v=["A:99"]), dict(record_v=["A"]), dict(dt=-1.0)])
def test_simulation_options_refused(kw):
    with pytest.raises(NetbabelError):
        apply_simulation_options(io.load(TINY), _args(**kw))
