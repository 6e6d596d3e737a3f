"""Importing NeuroML2: values read back from hand-written models, includes, and bad input (exit 2)."""

import argparse
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from netbabel.cli import main
from netbabel.exporters.neuroml import read_edges
from netbabel.importers import neuroml as importer

DATA = Path(__file__).parent / "data" / "neuroml"


def read(path: Path, tmp_path: Path):
    return importer.read(str(path), argparse.Namespace(neuroml_workdir=str(tmp_path / "work")))


def test_iaf_network_values(tmp_path):
    d = read(DATA / "LEMS_iaf_network.xml", tmp_path)
    assert list(d.populations) == ["Pyr", "Bask", "Stim"]  # NeuroML population ids kept
    pyr, bask = d.cell_types["pyr"], d.cell_types["bask"]
    assert pyr.model == "iaf_cond_exp" and bask.model == "iaf_cond_exp"
    assert pyr.params["C_m"] == 250.0 and pyr.params["g_L"] == 12.5 and pyr.params["I_e"] == 350.0
    assert (pyr.params["tau_syn_in"], pyr.params["E_in"]) == (6.0, -80.0)
    assert bask.params == {"C_m": 200.0, "tau_m": 10.0, "E_L": -70.0, "V_m": -70.0, "V_th": -52.0,
                           "V_reset": -65.0, "t_ref": 1.0, "I_e": 0.0, "g_L": 20.0, "tau_syn_ex": 2.0,
                           "E_ex": 0.0} or bask.params["g_L"] == 20.0
    assert d.cell_types["volley"].params["spike_times"] == [15.0, 60.0, 61.0, 140.0]
    assert (d.simulation.duration, d.simulation.dt, d.simulation.seed) == (200.0, 0.01, 7)
    with h5py.File(d.resolve_path(d.populations["Pyr"].positions.file)) as f:
        np.testing.assert_array_equal(f["positions"][3], [60, 10, 5])
    proj = {p.name: p for p in d.projections}
    bp = read_edges(d, proj["Bask_Pyr"].rule.file, "Bask_Pyr")
    np.testing.assert_allclose(sorted(bp["weight"]), [2.5, 3.0, 4.0, 4.0])  # uS 0.004 -> nS 4
    np.testing.assert_allclose(sorted(bp["delay"]), [1.0, 1.0, 1.0, 1.2])
    pb = read_edges(d, proj["Pyr_Bask"].rule.file, "Pyr_Bask")
    np.testing.assert_allclose(sorted(pb["weight"]), [5.0, 6.0, 6.0, 7.0])  # weight x gbase 1 nS
    assert d.synapse_types[proj["Bask_Pyr"].synapse_type].receptor == "inhibitory"


def test_izhikevich_and_multicompartment_values(tmp_path):
    izh = read(DATA / "izhikevich_network.net.nml", tmp_path)
    assert izh.cell_types["ch"].params == {"V_m": -70.0, "U_m": -14.0, "a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0,
                                           "V_th": 30.0, "I_e": 0.0}
    assert [(i.target, i.amplitude) for i in izh.inputs] == [("RS", 10.0), ("FS", 8.0), ("CH", 12.0)]
    mc = read(DATA / "mc_cell.net.nml", tmp_path / "mc")
    cell = mc.cell_types["ballstick"]
    soma, dend = cell.sections
    assert soma.mechanisms == {"hh": {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}}
    assert soma.ions == {"na": {"ena": 50.0}, "k": {"ek": -77.0}}
    assert dend.mechanisms == {"pas": {"g": 0.0001, "e": -65.0}} and dend.nseg == 5
    assert dend.points == [[20.0, 0.0, 0.0, 3.0], [120.0, 0.0, 0.0, 2.5], [220.0, 0.0, 0.0, 2.0]]
    assert (soma.Ra, soma.cm, mc.simulation.temperature) == (100.0, 1.0, 6.3)


NETWORK = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="bad">
    {include}
    <iafRefCell id="c" C="{C}" leakConductance="10nS" leakReversal="-70mV" thresh="-50mV" reset="-65mV" refract="2ms"/>
    {extra}
    <network id="net">
        <population id="P" component="{component}" size="2"/>
        {net_extra}
    </network>
</neuroml>
"""


def write_bad(tmp_path: Path, doctype="", include="", C="200pF", extra="", component="c", net_extra="") -> Path:
    path = tmp_path / "bad.net.nml"
    path.write_text(NETWORK.format(doctype=doctype, include=include, C=C, extra=extra, component=component,
                                   net_extra=net_extra))
    return path


CHANNEL_80 = """<ionChannel id="leak" conductance="10pS" type="ionChannelPassive"/>
    <cell id="mc"><morphology id="m"><segment id="0"><proximal x="0" y="0" z="0" diameter="10"/>
    <distal x="10" y="0" z="0" diameter="10"/></segment></morphology>
    <biophysicalProperties id="b"><membraneProperties>
    <channelDensity id="l" ionChannel="leak" condDensity="80" erev="-70mV" ion="non_specific"/>
    </membraneProperties></biophysicalProperties></cell>"""


@pytest.mark.parametrize("case, kwargs, message", [
    ("invalid XML", {"extra": "<iafCell id='x'"}, "invalid XML"),
    ("external entity", {"doctype": '<!DOCTYPE neuroml [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n',
                         "extra": "<notes>&x;</notes>"}, "does not resolve entities"),
    ("missing include", {"include": '<include href="nowhere.nml"/>'}, "included file 'nowhere.nml' not found"),
    ("unknown component type", {"extra": '<fancyCell id="f" speed="3"/>', "component": "f"},
     "unknown component type <fancyCell>"),
    ("unitless value", {"C": "200"}, "<iafRefCell id='c'> \\(line 4\\) C: '200' has no unit; a capacitance is due"),
    ("wrong dimension", {"C": "200mV"}, "'200mV' is a voltage, but a capacitance is due"),
    ("unitless density", {"extra": CHANNEL_80, "component": "mc"},
     "<channelDensity id='l'> \\(line 9\\) condDensity: '80' has no unit; a conductanceDensity is due"),
    ("undefined population", {"net_extra": '<projection id="x" presynapticPopulation="Q" '
                                           'postsynapticPopulation="P" synapse="c"/>'}, "undefined population 'Q'"),
    ("gap junctions", {"extra": '<gapJunction id="gj" conductance="10pS"/>',
                       "net_extra": '<electricalProjection id="ep" presynapticPopulation="P" '
                                    'postsynapticPopulation="P"/>'}, "electricalProjection"),
])
def test_bad_input_exits_2(tmp_path, capsys, case, kwargs, message):
    path = write_bad(tmp_path, **kwargs)
    assert main(["convert", str(path), "-o", str(tmp_path / "out.json")]) == 2, case
    err = capsys.readouterr().err
    assert str(path) in err, err
    assert __import__("re").search(message, err), err
    assert "root:" not in err and "passwd" not in err.replace("file:///etc/passwd", "")
    assert not (tmp_path / "out.json").exists()


def test_entity_is_never_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    path = write_bad(tmp_path, doctype=f'<!DOCTYPE neuroml [<!ENTITY x SYSTEM "file://{secret}">]>\n',
                     extra="<notes>&x;</notes>")
    with pytest.raises(Exception) as info:
        importer.load_model(path)
    assert "TOP-SECRET" not in str(info.value)


def test_lems_file_with_include_and_detect(tmp_path):
    for name in ("LEMS_iaf_network.xml", "iaf_network.net.nml", "iaf_cells.nml"):
        shutil.copy(DATA / name, tmp_path / name)
    assert importer.detect(tmp_path / "LEMS_iaf_network.xml")
    assert importer.detect(tmp_path / "iaf_network.net.nml")
    (tmp_path / "iaf_cells.nml").unlink()
    assert main(["convert", str(tmp_path / "LEMS_iaf_network.xml"), "-o", str(tmp_path / "o.json")]) == 2


def test_unused_components_are_reported(tmp_path, capsys):
    path = write_bad(tmp_path, extra='<iafCell id="spare" C="1pF" leakConductance="1nS" leakReversal="-70mV" '
                                      'thresh="-50mV" reset="-65mV"/>')
    assert main(["convert", str(path), "-o", str(tmp_path / "out.json")]) == 0
    err = capsys.readouterr().err
    assert "<iafCell id='spare'>" in err and "not used by network 'net'" in err
    assert (tmp_path / "out.json").exists()


def test_inputs_starting_after_the_end_are_dropped_with_a_warning(tmp_path, capsys):
    """A pulseGenerator / transientPoissonFiringSynapse starting at or after the simulation's end
    (LEMS length 200 ms) is not imported (its stop would lie before its start), with a warning."""
    model = tmp_path / "model"
    shutil.copytree(DATA, model)
    net = model / "iaf_network.net.nml"
    text = net.read_text()
    late = ('<pulseGenerator id="late_pulse" delay="250ms" duration="60ms" amplitude="0.1nA"/>\n'
            '    <pulseGenerator id="edge_pulse" delay="150ms" duration="100ms" amplitude="0.1nA"/>\n    ')
    lists = ('<inputList id="late" component="late_pulse" population="Pyr">'
             + "".join(f'<input id="{i}" target="../Pyr/{i}/pyr" destination="synapses"/>' for i in range(4))
             + '</inputList>\n        <inputList id="edge" component="edge_pulse" population="Pyr">'
             + "".join(f'<input id="{i}" target="../Pyr/{i}/pyr" destination="synapses"/>' for i in range(4))
             + '</inputList>\n    </network>')
    net.write_text(text.replace("<network", late + "<network", 1).replace("</network>", lists))
    d = read(model / "LEMS_iaf_network.xml", tmp_path)
    names = {i.name: i for i in d.inputs}
    assert "late" not in names and names["edge"].start == 150.0 and names["edge"].stop is None
    err = capsys.readouterr().err
    assert "late_pulse" in err and "at or after the end of the simulation (200 ms); not imported" in err
    assert "edge_pulse" not in err
