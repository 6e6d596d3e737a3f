"""hoc template import: values read back, and original vs rebuilt cells give the same V traces.

Every NEURON run happens in its own subprocess (tests/data/hoc/trace.py); the test process
never imports NEURON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netbabel.cli import main
from netbabel.description import load
from netbabel.importers.hoc import constructor_argument

DATA = Path(__file__).parent / "data" / "hoc"
MOD = DATA / "mod"
TRACE = DATA / "trace.py"

# file, template, extra convert arguments, stimulus (section, x, nA, delay, dur), recording sites
CELLS = {
    "hh_single": ("hh_single.hoc", "HHCell", [], ("soma", 0.5, 0.5, 100.0, 400.0), [("soma", 0.5)]),
    "ball_stick": ("ball_stick.hoc", "BallStick", [], ("soma", 0.5, 0.15, 100.0, 400.0),
                   [("soma", 0.5), ("dend", 0.9)]),
    "pyramidal5": ("pyramidal5.hoc", "Pyramidal5", ["--mod-dir", str(MOD), "--args", "1.2"],
                   ("soma", 0.5, 0.5, 100.0, 400.0), [("soma", 0.5), ("tuft", 0.3), ("axon", 1.0)]),
    "detailed": ("detailed.hoc", "DetailedCell", ["--mod-dir", str(MOD)], ("soma", 0.5, 1.0, 100.0, 400.0),
                 [("soma", 0.5), ("apic[20]", 0.5), ("dend[37]", 0.7)]),
    # morphology from an SWC file given to the constructor, read with NEURON's Import3d
    "swc_morphology": ("swc_cell.hoc", "SwcCell", ["--args", str(DATA / "small.swc")],
                       ("soma[0]", 0.5, 0.1, 100.0, 400.0), [("soma[0]", 0.5), ("apic[10]", 0.5), ("dend[20]", 0.5)]),
}


@pytest.fixture(scope="session")
def library() -> str:
    from netbabel.nmodl import compile_mechanisms, find_library

    return str(find_library(compile_mechanisms([MOD])))


def convert(tmp_path: Path, name: str) -> Path:
    file, template, extra, _, _ = CELLS[name]
    out = tmp_path / f"{name}.json"
    assert main(["convert", str(DATA / file), "--template", template, *extra, "-o", str(out)]) == 0
    return out


def run_trace(tmp_path: Path, spec: dict, tag: str) -> dict:
    spec_path, out_path = tmp_path / f"spec_{tag}.json", tmp_path / f"trace_{tag}.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
    proc = subprocess.run([sys.executable, str(TRACE), str(spec_path), str(out_path)], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out_path.read_text())


def test_ball_stick_values(tmp_path):
    d = load(convert(tmp_path, "ball_stick"))
    cell = d.cell_types["BallStick"]
    assert cell.model == "multicompartment"
    soma, dend = cell.sections
    assert (soma.name, soma.parent, dend.name, dend.parent) == ("soma", None, "dend", "soma")
    assert (dend.parent_x, dend.child_x, dend.nseg, dend.L, dend.diam, dend.Ra) == (1.0, 0, 11, 200.0, 1.0, 100.0)
    assert soma.mechanisms["hh"] == {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}
    g = dend.mechanisms["pas"]["g"]  # non-uniform: kept per segment, not averaged
    centers = [(i + 0.5) / 11 for i in range(11)]
    assert g == pytest.approx([0.0005 * (1 + 2 * x) for x in centers], rel=1e-12)
    assert dend.mechanisms["pas"]["e"] == -65.0
    assert soma.ions == {"na": {"ena": 50.0}, "k": {"ek": -77.0}}
    site = cell.synapses["synE"]
    assert (site.mechanism, site.section, site.params) == ("ExpSyn", "dend", {"tau": 2.0, "e": 0.0})
    assert site.x == pytest.approx(8.5 / 11)  # ExpSyn(0.8) sits at the centre of its segment
    assert (cell.spike_detection.section, cell.spike_detection.x, cell.spike_detection.threshold) == ("soma", 0.5, -10.0)
    assert cell.section_lists["all"] == ["soma", "dend"]
    assert list(d.populations) == ["BallStick"] and d.size("BallStick") == 1
    assert cell.source["template"] == "BallStick"
    assert (d.simulation.temperature, d.simulation.v_init, d.simulation.dt) == (6.3, -65.0, 0.025)


def test_pyramidal_values(tmp_path):
    out = convert(tmp_path, "pyramidal5")
    d = load(out)
    cell = d.cell_types["Pyramidal5"]
    secs = {s.name: s for s in cell.sections}
    assert list(secs) == ["soma", "axon", "basal", "trunk", "tuft"]
    assert (secs["basal"].parent_x, secs["basal"].L) == (0.5, 180.0)  # constructor argument 1.2 applied
    assert (secs["axon"].parent_x, secs["tuft"].parent, secs["tuft"].child_x) == (0.0, "trunk", 1)
    assert secs["tuft"].cm == 2.0 and secs["tuft"].mechanisms["nbih"] == {"gbar": 0.0006, "eh": -35.0}
    assert len(secs["trunk"].mechanisms["nbih"]["gbar"]) == 7
    assert secs["soma"].ions == {"na": {"ena": 55.0}, "k": {"ek": -85.0}}
    assert cell.params == {"vhalf_nbih": -84.0}  # a mechanism GLOBAL the file changed
    assert (d.simulation.temperature, d.simulation.v_init) == (16.0, -70.0)
    assert cell.section_lists["apical"] == ["trunk", "tuft"]
    det = cell.spike_detection  # from the template's connect2target
    assert (det.section, det.x, det.threshold) == ("axon", 1.0, 0.0)
    assert cell.synapses["synAMPA"].params == {"tau1": 0.3, "tau2": 3.0, "e": 0.0}
    gaba = cell.synapses["synGABA_1"]  # members of an objref array
    assert (gaba.mechanism, gaba.section, gaba.x, gaba.params) == ("ExpSyn", "basal", 0.1, {"tau": 5.0, "e": -80.0})
    assert cell.synapses["synGABA_0"].section == "soma"
    assert cell.source["args"] == [1.2]
    assert [Path(m).name for m in cell.mod_files] == ["nbih.mod"]
    assert (out.parent / cell.mod_files[0]).resolve() == (MOD / "nbih.mod").resolve()


def test_detailed_values(tmp_path):
    d = load(convert(tmp_path, "detailed"))
    cell = d.cell_types["DetailedCell"]
    assert len(cell.sections) >= 100
    assert all(s.points and len(s.points) >= 3 for s in cell.sections)
    names = [s.name for s in cell.sections]
    assert all(names.index(s.parent) < names.index(s.name) for s in cell.sections if s.parent)
    assert {"somatic", "axonal", "basal", "apical", "all", "soma", "dend", "apic"} <= set(cell.section_lists)
    assert len(cell.section_lists["basal"]) == 124
    assert [cell.synapses[f"synlist_{i}"].params["tau"] for i in range(4)] == [1.5, 2.5, 3.5, 4.5]
    gbar = next(s for s in cell.sections if s.name == "apic[30]").mechanisms["nbih"]["gbar"]
    assert isinstance(gbar, list) and gbar == sorted(gbar) and gbar[0] < gbar[-1]  # grows with distance
    soma = cell.sections[0]
    assert soma.points == [[0.0, -10.0, 0.0, 16.0], [0.0, 0.0, 0.0, 20.0], [0.0, 10.0, 0.0, 14.0]]


@pytest.mark.parametrize("name", list(CELLS))
def test_original_and_netpyne_rebuild_agree(tmp_path, library, name):
    """Same current clamp: the template and the NetPyNE cell from the description agree to 1e-6 mV."""
    file, template, extra, stim, record = CELLS[name]
    description = convert(tmp_path, name)
    args = [constructor_argument(extra[extra.index("--args") + 1])] if "--args" in extra else []
    spec = {"library": library if "--mod-dir" in extra else None, "file": str(DATA / file), "template": template,
            "args": args, "description": str(description), "population": template, "stim": list(stim),
            "record": [list(r) for r in record], "dt": 0.025, "tstop": 500.0}
    original = run_trace(tmp_path, {**spec, "mode": "template"}, "template")
    modes = ["netpyne", "neuron"] if name == "pyramidal5" else ["netpyne"]
    for mode in modes:
        rebuilt = run_trace(tmp_path, {**spec, "mode": mode}, mode)
        assert (rebuilt["celsius"], rebuilt["v_init"]) == (original["celsius"], original["v_init"])
        for site, a, b in zip(record, original["traces"], rebuilt["traces"]):
            a, b = np.asarray(a), np.asarray(b)
            n = min(len(a), len(b))
            assert n >= 20000, (mode, site, len(a), len(b))
            assert np.max(np.abs(a[:n] - b[:n])) <= 1e-6, (mode, site)
    soma = np.asarray(original["traces"][0])
    assert np.sum((soma[1:] >= 0) & (soma[:-1] < 0)) >= 3  # the clamp makes the cell fire: a real test


def test_load_files_and_string_argument(tmp_path):
    out = tmp_path / "configured.json"
    assert main(["convert", str(DATA / "needs_settings.hoc"), "--template", "Configured", "--load",
                 str(DATA / "settings.hoc"), "--args", "pyramidal-like", "-o", str(out)]) == 0
    d = load(out)
    cell = d.cell_types["Configured"]
    assert cell.sections[1].L == 321.0 and d.simulation.temperature == 22.0
    assert cell.source["args"] == ["pyramidal-like"] and cell.source["load"] == [str(DATA / "settings.hoc")]


def test_importing_process_neuron_is_untouched(tmp_path):
    """The hoc code runs in another process: this one's NEURON keeps its globals and knows no template."""
    script = f"""
from neuron import h
h.celsius = 37.0
from netbabel.cli import main
assert main(["convert", {str(DATA / 'pyramidal5.hoc')!r}, "--template", "Pyramidal5", "--mod-dir", {str(MOD)!r},
             "--args", "1", "-o", "cell.json"]) == 0
assert h.celsius == 37.0 and h.name_declared("Pyramidal5") == 0
assert not any(True for _ in h.allsec())
print("untouched")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NEURON_MODULE_OPTIONS="-nogui"))
    assert proc.returncode == 0 and "untouched" in proc.stdout, proc.stderr[-2000:]


def test_hh_single_values(tmp_path):
    d = load(convert(tmp_path, "hh_single"))
    cell = d.cell_types["HHCell"]
    (soma,) = cell.sections
    assert (soma.name, soma.nseg, soma.L, soma.diam, soma.Ra, soma.cm) == ("soma", 1, 18.8, 18.8, 123.0, 1.0)
    assert soma.ions == {"na": {"ena": 50.0, "nai": 15.0}, "k": {"ek": -77.0}}  # default concentrations left out
    assert cell.spike_detection.section == "soma" and cell.spike_detection.threshold == 10.0
    assert "no NetCon" in cell.source["warnings"][0]
    assert cell.section_lists == {"soma": ["soma"], "all": ["soma"]}
