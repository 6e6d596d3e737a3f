"""Bad hoc input: exit status 2 with NEURON's own message, no output, no compiled files left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "hoc"
BAD = DATA / "bad"


def run_convert(tmp_path: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if cache is not None:
        env["NETBABEL_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "netbabel.cli", "convert", *args, "-o", str(tmp_path / "out.json")],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("args, expected", [
    (["bad/syntax_error.hoc", "--template", "Broken"], ["syntax error", "near line 7", "soma { L = }"]),
    (["ball_stick.hoc", "--template", "Nope"], ["no template named 'Nope'", "templates found: BallStick"]),
    (["bad/needs_mod.hoc", "--template", "NeedsIh"], ["nbih is not a MECHANISM", "--mod-dir"]),
    (["bad/failing_constructor.hoc", "--template", "NeedsMorphology", "--args", "missing/morph.swc"],
     ["constructor NeedsMorphology('missing/morph.swc') failed", "cannot open the morphology file missing/morph.swc"]),
    (["bad/failing_constructor.hoc", "--template", "NeedsMorphology"], ["init not enough arguments"]),
    (["ball_stick.hoc"], ["needs --template NAME"]),
    (["bad/extracellular.hoc", "--template", "WithExtracellular"], ["extracellular mechanism cannot be described"]),
    (["ball_stick.hoc", "--template", "BallStick", "--mod-dir", "bad/no_such_folder"], ["no such folder (--mod-dir)"]),
    (["ball_stick.hoc", "--template", "BallStick", "--load", "bad/no_such_file.hoc"], ["no such file (--load)"]),
])
def test_bad_hoc_exits_2_with_neurons_message(tmp_path, args, expected):
    before = snapshot(DATA)
    files = [str(DATA / a) if a.endswith((".hoc", "folder")) and not a.startswith("--") else a for a in args]
    proc = run_convert(tmp_path, *files)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert not (tmp_path / "out.json").exists()
    assert snapshot(tmp_path) == set()  # nothing in the working directory (no x86_64/, no temporary file)
    assert snapshot(DATA) == before


def test_broken_mod_file_leaves_no_build(tmp_path):
    cache = tmp_path / "cache"
    work = tmp_path / "work"
    work.mkdir()
    before = snapshot(BAD / "badmod")
    proc = run_convert(work, str(DATA / "ball_stick.hoc"), "--template", "BallStick", "--mod-dir",
                       str(BAD / "badmod"), cache=cache)
    assert proc.returncode == 2, proc.stderr
    assert "nrnivmodl failed" in proc.stderr and "Illegal block at line 8" in proc.stderr
    assert snapshot(work) == set()
    assert snapshot(BAD / "badmod") == before
    leftovers = [p for p in snapshot(cache) if not p.endswith(".lock")] if cache.exists() else []
    assert leftovers == ["nrnmech"] or leftovers == []  # the cache root, no partial build
