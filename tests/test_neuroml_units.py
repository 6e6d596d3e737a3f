"""NeuroML2 quantities and the catalogue <-> NeuroML2 cell mapping (no Java, fast)."""

import math

import pytest

from netbabel.converters import neuroml as conv
from netbabel.description.catalogue import defaults
from netbabel.errors import NetbabelError, UnsupportedFeature


@pytest.mark.parametrize("text, dimension, si", [
    ("-65mV", "voltage", -0.065), ("10 ms", "time", 0.01), ("0.5nA", "current", 0.5e-9),
    ("1 mS_per_cm2", "conductanceDensity", 10.0), ("250pF", "capacitance", 250e-12),
    ("1e-3 S_per_cm2", "conductanceDensity", 10.0), ("6.3 degC", "temperature", 279.45),
    ("0.7nS_per_mV", "conductance_per_voltage", 0.7e-6), ("35.4 ohm_cm", "resistivity", 0.354),
    ("3", "none", 3.0), ("-2.5e-2", "none", -0.025),
])
def test_parse_quantity(text, dimension, si):
    assert math.isclose(conv.parse_quantity(text, dimension), si, rel_tol=1e-12)


@pytest.mark.parametrize("text, dimension, message", [
    ("80", "conductanceDensity", "has no unit"),
    ("80mV", "conductanceDensity", "is a voltage, but a conductanceDensity is due"),
    ("10 parsecs", "time", "unknown NeuroML2 unit"),
    ("fast", "time", "not a NeuroML2 quantity"),
    ("3mV", "none", "must be a plain number"),
])
def test_parse_quantity_refuses(text, dimension, message):
    with pytest.raises(NetbabelError, match=message):
        conv.parse_quantity(text, dimension, "<channelDensity id='x'> condDensity", "cell.nml")


def test_quantity_in_units():
    assert conv.quantity_in("0.5nA", "pA") == 500.0
    assert conv.quantity_in("120 mS_per_cm2", "S_per_cm2") == 0.12
    assert conv.quantity_in("0.1 kohm_cm", "ohm_cm") == 100.0
    assert conv.fmt(1e20) == "1e20" and conv.fmt(1e-7) == "1e-7"


@pytest.mark.parametrize("model", ["iaf_psc_exp", "iaf_psc_alpha", "iaf_cond_exp", "iaf_cond_alpha",
                                   "aeif_cond_exp", "hh_cond_exp_traub"])
def test_pynn_cell_mapping_round_trip(model):
    params = {**defaults(model), "C_m": 281.0, "I_e": 12.5}
    if "g_L" in params:
        params["g_L"] = 16.6667
    params.pop("V_min", None)
    nml_type, attrs = conv.cell_to_neuroml(model, params)
    assert nml_type in conv.PYNN_CELLS
    assert float(attrs["cm"]) == 0.281 and float(attrs["i_offset"]) == 0.0125  # nF, nA
    numbers = {k: float(v) for k, v in attrs.items()}
    back_model, back = conv.cell_from_pynn(nml_type, numbers)
    assert back_model == model
    for key, value in back.items():
        assert value == params[key], key


def test_weights_in_pynn_units():
    assert conv.weight_to_neuroml("iaf_psc_exp", -250.0) == -0.25  # pA -> nA, signed
    assert conv.weight_to_neuroml("iaf_cond_exp", 3.0) == 0.003  # nS -> uS
    assert conv.weight_from_neuroml(True, 6.0, 0.001) == 6.0  # expOneSynapse gbase 1 nS, weight 6 -> 6 nS


def test_delta_models_have_no_neuroml_synapse():
    for model in ("iaf_psc_delta", "izhikevich"):
        with pytest.raises(UnsupportedFeature, match="no synapse that makes the membrane potential jump"):
            conv.synapse_to_neuroml(model, defaults(model), "excitatory")


def test_izhikevich_maps_to_izhikevich_cell_exactly():
    params = defaults("izhikevich")
    nml_type, attrs = conv.cell_to_neuroml("izhikevich", params)
    assert nml_type == "izhikevichCell"
    back = conv.izhikevich_from_neuroml({"v0": -65.0, "thresh": 30.0, **{k: float(attrs[k]) for k in "abcd"}})
    assert back == {"V_m": -65.0, "U_m": -13.0, "a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "V_th": 30.0, "I_e": 0.0}
    with pytest.raises(UnsupportedFeature, match="starts U at b\\*V_m"):
        conv.cell_to_neuroml("izhikevich", {**params, "U_m": -10.0})


def test_inexpressible_parameters_are_refused():
    with pytest.raises(UnsupportedFeature, match="V_min"):
        conv.cell_to_neuroml("iaf_psc_alpha", {**defaults("iaf_psc_alpha"), "V_min": -80.0})
    with pytest.raises(UnsupportedFeature, match="starts w at 0"):
        conv.cell_to_neuroml("aeif_cond_exp", {**defaults("aeif_cond_exp"), "w": 5.0})
