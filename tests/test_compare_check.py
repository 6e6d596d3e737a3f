"""`netbabel check` with the real NEST backend: a faithful copy agrees exactly, a broken one is caught."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from netbabel.cli import main
from netbabel.compare.check import check_command
from netbabel.description import io

if importlib.util.find_spec("nest") is None:
    pytest.skip("NEST is not installed", allow_module_level=True)
nest_backend = pytest.importorskip("netbabel.backends.nest")

ROOT = Path(__file__).resolve().parents[1]
BRUNEL = ROOT / "reference_models" / "brunel2000" / "brunel2000.json"


def perturbed(name: str, value: float) -> SimpleNamespace:
    """A backend that runs NEST on a copy of the model whose every tau_m is `value` times too large."""

    def run(description, output, options):
        broken = copy.deepcopy(description)
        for cell in broken.cell_types.values():
            if "tau_m" in cell.params:
                cell.params["tau_m"] = broken.value(cell.params["tau_m"]) * value
        nest_backend.run(broken, output, options)

    return SimpleNamespace(__name__=name, run=run)


def args_for(tmp_path: Path, **extra) -> argparse.Namespace:
    base = dict(mode="native", seeds=2, duration=300.0, report=str(tmp_path / "report.html"),
                workdir=str(tmp_path / "work"), debug=False)
    base.update(extra)
    return argparse.Namespace(**base)


def test_broken_tau_m_fails_check_and_a_faithful_copy_is_exact(tmp_path, capsys):
    # NEST's example values (J 0.1 mV, g 5): at order 50 the seeds agree closely, so the 10% error must show.
    # In the asynchronous irregular default (J 0.5 mV, g 8) the per-neuron rate distributions of two seeds
    # differ more than a 10% tau_m error moves them (KS 0.27 against a tolerance of 0.47, measured):
    # docs/comparison.md states this limit of the seed-spread tolerance.
    model = io.load(BRUNEL, overrides=["parameters.order=50", "parameters.J=0.1", "parameters.g=5"])
    runners = {"nest": nest_backend, "nest-copy": nest_backend, "nest-tau_m+10%": perturbed("broken", 1.1)}
    status = check_command(model, runners, args_for(tmp_path))
    assert status == 1
    summary = json.loads((tmp_path / "work" / "check.json").read_text())
    assert summary["backends"]["nest-copy"]["verdict"] == "exact"
    broken = summary["backends"]["nest-tau_m+10%"]
    assert broken["verdict"] == "DIFFERENT"
    assert not broken["exact"]["identical"]
    # the statistics, not only the spike-by-spike comparison, must see the difference
    assert not broken["statistics"]["equivalent"]
    rate = broken["statistics"]["populations"]["E"]["measures"]["rate"]
    assert rate["judged"] and rate["ks"] > rate["ks_tolerance"]
    out = capsys.readouterr().out
    assert "nest-copy: exact" in out and "nest-tau_m+10%: DIFFERENT" in out
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "nest-tau_m+10%" in html


def test_check_command_line_agrees_and_rejects_bad_input(tmp_path, capsys):
    work = tmp_path / "w"
    status = main(["check", str(BRUNEL), "--backends", "nest", "--set", "parameters.order=20", "--seeds", "1",
                   "--duration", "100", "--workdir", str(work)])
    assert status == 0
    assert (work / "check.json").exists()
    assert main(["check", str(BRUNEL), "--backends", "nest", "--duration", "-5"]) == 2
    assert main(["check", str(BRUNEL), "--backends", "nope"]) == 2
    assert "unknown backend" in capsys.readouterr().err
