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


def other_seed(name: str, shift: int) -> SimpleNamespace:
    """A faithful NEST backend that runs with another seed than it is given: statistically the same model."""

    def run(description, output, options):
        reseeded = copy.deepcopy(description)
        reseeded.simulation.seed = int(reseeded.simulation.seed) + shift
        nest_backend.run(reseeded, output, options)

    return SimpleNamespace(__name__=name, run=run)


def args_for(tmp_path: Path, **extra) -> argparse.Namespace:
    base = dict(mode="native", seeds=10, duration=1000.0, report=str(tmp_path / "report.html"),
                workdir=str(tmp_path / "work"), debug=False)
    base.update(extra)
    return argparse.Namespace(**base)


def test_broken_tau_m_fails_check_on_the_default_brunel(tmp_path, capsys):
    # The default asynchronous irregular Brunel (J 0.5 mV, g 8) at order 50, 1 s, 10 reference seeds.
    # tau_m + 10% raises the rates by about 4%: 8.6 seed-to-seed standard deviations of the inhibitory
    # population's mean rate (measured, docs/comparison.md), which the mean test sees and the distribution
    # test (KS 0.19 against a tolerance of about 0.5) does not. A faithful NEST run with a seed that is
    # not among the reference seeds must be equivalent, and one with the reference seed s0 exact.
    model = io.load(BRUNEL, overrides=["parameters.order=50"])
    runners = {"nest": nest_backend, "nest-copy": nest_backend, "nest-seed+100": other_seed("reseeded", 100),
               "nest-tau_m+10%": perturbed("broken", 1.1)}
    status = check_command(model, runners, args_for(tmp_path))
    assert status == 1
    summary = json.loads((tmp_path / "work" / "check.json").read_text())
    assert summary["backends"]["nest-copy"]["verdict"] == "exact"
    reseeded = summary["backends"]["nest-seed+100"]
    assert reseeded["verdict"] == "equivalent" and not reseeded["exact"]["identical"]
    broken = summary["backends"]["nest-tau_m+10%"]
    assert broken["verdict"] == "DIFFERENT"
    # the statistics, not only the spike-by-spike comparison, must see the difference: the mean test of the rate
    assert not broken["statistics"]["equivalent"]
    rate = broken["statistics"]["populations"]["I"]["measures"]["rate"]
    assert rate["judged"] and abs(rate["mean_t"]) > rate["mean_t_critical"]
    assert broken["statistics"]["populations"]["I"]["means"]["rate"] > \
        broken["statistics"]["populations"]["I"]["reference_means"]["rate"]
    for verdict in reseeded["statistics"]["populations"].values():
        for measure in verdict["measures"].values():
            assert measure["mean_t"] is not None and abs(measure["mean_t"]) < measure["mean_t_critical"]
    out = capsys.readouterr().out
    assert "nest-copy: exact" in out and "nest-seed+100: equivalent" in out and "nest-tau_m+10%: DIFFERENT" in out
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "nest-tau_m+10%" in html and "t critical" in html


def test_check_command_line_agrees_and_rejects_bad_input(tmp_path, capsys):
    work = tmp_path / "w"
    status = main(["check", str(BRUNEL), "--backends", "nest", "--set", "parameters.order=20", "--seeds", "1",
                   "--duration", "100", "--workdir", str(work)])
    assert status == 0
    assert (work / "check.json").exists()
    assert main(["check", str(BRUNEL), "--backends", "nest", "--duration", "-5"]) == 2
    assert main(["check", str(BRUNEL), "--backends", "nope"]) == 2
    assert "unknown backend" in capsys.readouterr().err
