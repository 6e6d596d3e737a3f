"""`netbabel publish`: a validated NeuroML2 + LEMS bundle with OMV tests that pass, and expected rates
that NEST reproduces within the stated tolerance."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from netbabel.backends.neuroml import jneuroml_jar
from netbabel.cli import main
from netbabel.spikereport import read_report

BIN = Path(sys.executable).parent
MODEL = {
    "netbabel": "1", "name": "pubnet",
    "metadata": {"title": "Small E-I network", "authors": ["A. Modeller"],
                 "references": ["Doe J (2020) A network. doi:10.0000/example"], "license": "CC-BY-4.0"},
    "cell_types": {"exc": {"model": "iaf_psc_exp", "params": {"tau_syn_ex": 2.0, "tau_syn_in": 4.0}}},
    "synapse_types": {"e": {"receptor": "excitatory"}, "i": {"receptor": "inhibitory"}},
    "populations": {"E": {"cell_type": "exc", "size": 8}, "I": {"cell_type": "exc", "size": 2}},
    "projections": [
        {"name": "EI", "source": "E", "target": "I", "synapse_type": "e", "rule": {"type": "fixed_indegree",
                                                                                 "indegree": 3},
         "weight": 50.0, "delay": 1.0},
        {"name": "IE", "source": "I", "target": "E", "synapse_type": "i", "rule": {"type": "fixed_indegree",
                                                                                 "indegree": 1},
         "weight": -100.0, "delay": 1.0}],
    "inputs": [{"name": "drive", "type": "poisson", "target": "E", "rate": 3000.0, "indegree": 1, "weight": 100.0,
                "delay": 0.1, "synapse_type": "e"},
               {"name": "drive_i", "type": "poisson", "target": "I", "rate": 2500.0, "indegree": 1,
                "weight": 100.0, "delay": 0.1, "synapse_type": "e"}],
    "simulation": {"duration": 400.0, "dt": 0.1, "seed": 5}}

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="jNeuroML needs Java")


def test_publish_bundle(tmp_path, capsys):
    model = tmp_path / "pubnet.json"
    model.write_text(json.dumps(MODEL))
    out = tmp_path / "osb"
    assert main(["publish", str(model), "-o", str(out)]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert {"LEMS_pubnet.xml", "pubnet.net.nml", "README.md", ".test/pubnet.jnml.omt", ".test/pubnet.mep"} <= set(files)
    readme = (out / "README.md").read_text()
    assert "doi:10.0000/example" in readme and "A. Modeller" in readme and "omv test" in readme
    omt = yaml.safe_load((out / ".test/pubnet.jnml.omt").read_text())
    mep = yaml.safe_load((out / ".test/pubnet.mep").read_text())
    assert omt["target"] == "../LEMS_pubnet.xml" and set(omt["experiments"]) == {"rate_E", "rate_I"}
    expected = {k: v["expected"]["spike rate"] for k, v in mep["experiments"].items()}
    tolerance = {k: v["observables"]["spike rate"]["tolerance"] for k, v in omt["experiments"].items()}
    assert all(rate > 5 for rate in expected.values()) and all(0.02 <= t < 1 for t in tolerance.values())

    # OMV (osb-model-validation) runs the bundle's tests with jNeuroML
    if shutil.which("omv", path=str(BIN)) is None:
        pytest.skip("osb-model-validation (omv) is not installed")
    jnml_home = tmp_path / "jnml"
    jnml_home.mkdir()
    (jnml_home / "jnml").write_text(f'#!/bin/sh\nexec java -jar "{jneuroml_jar()}" "$@"\n')
    (jnml_home / "jnml").chmod(0o755)
    run = subprocess.run([str(BIN / "omv"), "test", ".test/pubnet.jnml.omt"], cwd=out, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "JNML_HOME": str(jnml_home)})
    assert "Test passed: .test/pubnet.jnml.omt" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]

    # NEST reproduces the expected rates within the bundle's tolerance (independent Poisson draws)
    nest = subprocess.run([str(BIN / "netbabel"), "simulate", str(model), "--backend", "nest", "-o",
                           str(tmp_path / "nest.h5")], capture_output=True, text=True, timeout=300)
    assert nest.returncode == 0, nest.stderr[-2000:]
    report = read_report(tmp_path / "nest.h5")
    for pop in ("E", "I"):
        ids, times = report[pop]
        rate = np.mean([np.sum(ids == c) / 0.4 for c in np.unique(ids)])
        key = f"rate_{pop}"
        assert abs(rate - expected[key]) <= tolerance[key] * expected[key], (pop, rate, expected[key])


def test_publish_refuses_delta_model(tmp_path, capsys):
    brunel = Path(__file__).parents[1] / "reference_models" / "brunel2000" / "brunel2000.json"
    assert main(["publish", str(brunel), "-o", str(tmp_path / "osb"), "--set", "parameters.order=5"]) == 2
    assert "delta synapse of iaf_psc_delta" in capsys.readouterr().err
    assert not (tmp_path / "osb").exists()
