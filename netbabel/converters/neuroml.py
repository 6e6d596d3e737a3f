"""NeuroML2 <-> netbabel: quantities, cell types, synapses, weights and channels.

Every unit conversion between the description (NEST's units: mV, ms, pF, pA,
nS, Hz; NEURON's for compartments) and NeuroML2 lives here.

NeuroML2 quantities are strings such as ``"-65mV"``, ``"10 ms"`` or
``"1 mS_per_cm2"``; `parse_quantity` checks their dimension. The PyNN cell
types of NeuroML2 (IF_curr_exp, ...) take *dimensionless* numbers in PyNN's
units (nF, nA, uS, mV, ms): `PYNN_UNITS` gives them.

Catalogue model     NeuroML2 cell            synapse (per receptor)    weight
iaf_psc_exp         IF_curr_exp              expCurrSynapse            pA -> nA
iaf_psc_alpha       IF_curr_alpha            alphaCurrSynapse          pA -> nA
iaf_cond_exp        IF_cond_exp              expCondSynapse            nS -> uS
iaf_cond_alpha      IF_cond_alpha            alphaCondSynapse          nS -> uS
aeif_cond_exp       EIF_cond_exp_isfa_ista   expCondSynapse            nS -> uS
hh_cond_exp_traub   HH_cond_exp              expCondSynapse            nS -> uS
izhikevich2007_cond_beta izhikevich2007Cell     expTwoSynapse (gbase 1nS) nS -> nS
izhikevich          izhikevichCell           (refused: delta synapse)
iaf_psc_delta       iafRefCell               (refused: delta synapse)
poisson_generator   SpikeSourcePoisson
spike_generator     spikeArray (one train shared by the population)

NeuroML2 has no synapse that makes the membrane potential jump (NEST's delta
synapses of iaf_psc_delta and izhikevich); such connections are refused
rather than approximated. On import, iafCell / iafRefCell / izhikevich2007Cell
are mapped when the synapses onto them determine a catalogue model; izhikevich2007Cell
maps to izhikevich2007_cond_beta (expTwoSynapse synapses, or none).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from netbabel.errors import NetbabelError, UnsupportedFeature

# -- quantities ---------------------------------------------------------------------

# NeuroML2 unit symbol -> (dimension, factor to SI), from NeuroMLCoreDimensions.xml
UNITS: dict[str, tuple[str, float]] = {
    "s": ("time", 1.0), "ms": ("time", 1e-3), "min": ("time", 60.0), "hour": ("time", 3600.0),
    "per_s": ("per_time", 1.0), "Hz": ("per_time", 1.0), "per_ms": ("per_time", 1e3),
    "per_min": ("per_time", 1 / 60.0), "per_hour": ("per_time", 1 / 3600.0),
    "m": ("length", 1.0), "cm": ("length", 1e-2), "um": ("length", 1e-6),
    "m2": ("area", 1.0), "cm2": ("area", 1e-4), "um2": ("area", 1e-12),
    "m3": ("volume", 1.0), "cm3": ("volume", 1e-6), "litre": ("volume", 1e-3), "um3": ("volume", 1e-18),
    "V": ("voltage", 1.0), "mV": ("voltage", 1e-3),
    "per_V": ("per_voltage", 1.0), "per_mV": ("per_voltage", 1e3),
    "ohm": ("resistance", 1.0), "kohm": ("resistance", 1e3), "Mohm": ("resistance", 1e6),
    "S": ("conductance", 1.0), "mS": ("conductance", 1e-3), "uS": ("conductance", 1e-6),
    "nS": ("conductance", 1e-9), "pS": ("conductance", 1e-12),
    "S_per_m2": ("conductanceDensity", 1.0), "mS_per_cm2": ("conductanceDensity", 10.0),
    "S_per_cm2": ("conductanceDensity", 1e4), "uS_per_cm2": ("conductanceDensity", 1e-2),
    "F": ("capacitance", 1.0), "uF": ("capacitance", 1e-6), "nF": ("capacitance", 1e-9),
    "pF": ("capacitance", 1e-12),
    "F_per_m2": ("specificCapacitance", 1.0), "uF_per_cm2": ("specificCapacitance", 1e-2),
    "ohm_m": ("resistivity", 1.0), "kohm_cm": ("resistivity", 10.0), "ohm_cm": ("resistivity", 1e-2),
    "A": ("current", 1.0), "uA": ("current", 1e-6), "nA": ("current", 1e-9), "pA": ("current", 1e-12),
    "A_per_m2": ("currentDensity", 1.0), "uA_per_cm2": ("currentDensity", 1e-2),
    "mA_per_cm2": ("currentDensity", 10.0),
    "mol_per_m3": ("concentration", 1.0), "mol_per_cm3": ("concentration", 1e6),
    "M": ("concentration", 1e3), "mM": ("concentration", 1.0),
    "K": ("temperature", 1.0), "degC": ("temperature", 1.0),  # offset handled in parse_quantity
    "S_per_V": ("conductance_per_voltage", 1.0), "nS_per_mV": ("conductance_per_voltage", 1e-6),
    "C": ("charge", 1.0),
    "m_per_s": ("permeability", 1.0), "cm_per_s": ("permeability", 1e-2),
    "um_per_ms": ("permeability", 1e-3), "cm_per_ms": ("permeability", 10.0),
}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z_0-9]*)\s*$")


def parse_quantity(text: str, dimension: str, where: str = "", file: str | None = None) -> float:
    """A NeuroML2 quantity string as an SI number, checking its dimension ("none" for pure numbers).

    Raises NetbabelError naming `where` (element and attribute) when the value is
    not a number, has no unit where one is due, or has a unit of another dimension.
    """
    match = _QUANTITY.match(str(text))
    if not match:
        raise NetbabelError(f"{where}: {text!r} is not a NeuroML2 quantity (a number and a unit)", file)
    number, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(number):
        raise NetbabelError(f"{where}: {text!r} is not finite", file)
    if dimension == "none":
        if unit:
            raise NetbabelError(f"{where}: {text!r} must be a plain number (dimensionless), not in {unit}", file)
        return number
    if not unit:
        raise NetbabelError(f"{where}: {text!r} has no unit; a {dimension} is due (e.g. {_example(dimension)})",
                            file)
    if unit not in UNITS:
        raise NetbabelError(f"{where}: unknown NeuroML2 unit {unit!r} in {text!r}", file)
    unit_dim, factor = UNITS[unit]
    if unit_dim != dimension:
        raise NetbabelError(f"{where}: {text!r} is a {unit_dim}, but a {dimension} is due "
                            f"(e.g. {_example(dimension)})", file)
    if unit == "degC":
        return number + 273.15
    return number * factor


_PREFERRED = ["mV", "ms", "pF", "nA", "nS", "mS_per_cm2", "uF_per_cm2", "ohm_cm", "Hz", "um", "mM", "nS_per_mV",
              "per_ms", "uA_per_cm2"]


def _example(dimension: str) -> str:
    for symbol in _PREFERRED:
        if UNITS[symbol][0] == dimension:
            return f"'1{symbol}'"
    for symbol, (dim, factor) in UNITS.items():
        if dim == dimension and symbol != "degC":
            return f"'1{symbol}'"
    return "a unit"


def quantity_in(text: str, unit: str, where: str = "", file: str | None = None) -> float:
    """A NeuroML2 quantity converted to the NeuroML unit `unit` (e.g. 'mV', 'S_per_cm2'), rounded to 12 digits."""
    dimension, factor = UNITS[unit]
    si = parse_quantity(text, dimension, where, file)
    if unit == "degC":
        return tidy(si - 273.15)
    return tidy(si / factor)


def tidy(x: float) -> float:
    """Round to 12 significant digits so that unit factors do not leave 1e-16 noise."""
    return float(f"{x:.12g}") if x != 0 else 0.0


def fmt(x: float) -> str:
    """A number as NeuroML2's schema patterns accept it (no '+' in exponents, no 'inf')."""
    if not math.isfinite(x):
        raise UnsupportedFeature(f"NeuroML2 cannot express the non-finite value {x}")
    text = repr(float(x))
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def q(x: float, unit: str) -> str:
    """A number in `unit` as a NeuroML2 quantity string, e.g. q(-65, 'mV') == '-65.0mV'."""
    return f"{fmt(x)}{unit}"


# -- point cell types ---------------------------------------------------------------

@dataclass(frozen=True)
class CellMapping:
    neuroml_type: str  # NeuroML2 component type of the cell
    synapse_type: str | None  # NeuroML2 component type of its synapses (None: no synapse expressible)
    conductance: bool


CELL_TYPES: dict[str, CellMapping] = {
    "iaf_psc_exp": CellMapping("IF_curr_exp", "expCurrSynapse", False),
    "iaf_psc_alpha": CellMapping("IF_curr_alpha", "alphaCurrSynapse", False),
    "iaf_cond_exp": CellMapping("IF_cond_exp", "expCondSynapse", True),
    "iaf_cond_alpha": CellMapping("IF_cond_alpha", "alphaCondSynapse", True),
    "aeif_cond_exp": CellMapping("EIF_cond_exp_isfa_ista", "expCondSynapse", True),
    "hh_cond_exp_traub": CellMapping("HH_cond_exp", "expCondSynapse", True),
    "izhikevich": CellMapping("izhikevichCell", None, False),
    "iaf_psc_delta": CellMapping("iafRefCell", None, False),
    "izhikevich2007_cond_beta": CellMapping("izhikevich2007Cell", "expTwoSynapse", True),
}
PYNN_CELLS = {"IF_curr_exp", "IF_curr_alpha", "IF_cond_exp", "IF_cond_alpha", "EIF_cond_exp_isfa_ista",
              "HH_cond_exp"}
PYNN_SYNAPSES = {"expCurrSynapse", "alphaCurrSynapse", "expCondSynapse", "alphaCondSynapse"}
DELTA_REFUSAL = ("NeuroML2 has no synapse that makes the membrane potential jump (NEST's delta synapse of "
                 "{model}); netbabel refuses to approximate it. Use a model with current or conductance "
                 "synapses (e.g. iaf_psc_exp with a short tau_syn) to export to NeuroML2")


def _get(params: dict, name: str) -> float:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnsupportedFeature(f"parameter {name}={value!r} must be a number for NeuroML2")
    return float(value)


def cell_to_neuroml(model: str, params: dict) -> tuple[str, dict[str, str]]:
    """(NeuroML2 component type, attributes as NeuroML2 strings) for a catalogue neuron.

    `params` are complete (catalogue defaults filled in) and evaluated numbers.
    """
    if model not in CELL_TYPES:
        raise UnsupportedFeature(f"no NeuroML2 cell type for {model!r}")
    p = params
    nml = CELL_TYPES[model].neuroml_type
    for name, default in (("V_min", -math.inf),):
        if name in p and p[name] is not None and float(p[name]) != default:
            raise UnsupportedFeature(f"{model}: {name}={p[name]} has no NeuroML2 equivalent (only -inf)")
    if model == "iaf_psc_delta":
        if p.get("refractory_input"):
            raise UnsupportedFeature("iaf_psc_delta: refractory_input=true has no NeuroML2 equivalent")
        if _get(p, "V_m") != _get(p, "E_L"):
            raise UnsupportedFeature("iaf_psc_delta -> NeuroML2 iafRefCell: the cell starts at E_L, "
                                     f"but V_m={p['V_m']} differs from E_L={p['E_L']}")
        if _get(p, "I_e") != 0:
            raise UnsupportedFeature("iaf_psc_delta -> NeuroML2 iafRefCell: I_e must be 0 (use a dc input)")
        return nml, {"C": q(_get(p, "C_m"), "pF"), "leakConductance": q(_get(p, "C_m") / _get(p, "tau_m"), "nS"),
                     "leakReversal": q(_get(p, "E_L"), "mV"), "thresh": q(_get(p, "V_th"), "mV"),
                     "reset": q(_get(p, "V_reset"), "mV"), "refract": q(_get(p, "t_ref"), "ms")}
    if model == "izhikevich":
        if not p.get("consistent_integration", True):
            raise UnsupportedFeature("izhikevich: consistent_integration=false has no NeuroML2 equivalent")
        if tidy(_get(p, "U_m")) != tidy(_get(p, "b") * _get(p, "V_m")):
            raise UnsupportedFeature("izhikevich -> NeuroML2 izhikevichCell starts U at b*V_m "
                                     f"({_get(p, 'b') * _get(p, 'V_m')}), but U_m={p['U_m']}")
        if _get(p, "I_e") != 0:
            raise UnsupportedFeature("izhikevich -> NeuroML2 izhikevichCell: I_e must be 0 (use a dc input)")
        return nml, {"v0": q(_get(p, "V_m"), "mV"), "thresh": q(_get(p, "V_th"), "mV"), "a": fmt(_get(p, "a")),
                     "b": fmt(_get(p, "b")), "c": fmt(_get(p, "c")), "d": fmt(_get(p, "d"))}
    if model == "izhikevich2007_cond_beta":
        return nml, izhikevich2007_to_neuroml(p)
    out = {"cm": tidy(_get(p, "C_m") / 1000.0), "i_offset": tidy(_get(p, "I_e") / 1000.0),
           "tau_syn_E": _get(p, "tau_syn_ex"), "tau_syn_I": _get(p, "tau_syn_in"), "v_init": _get(p, "V_m")}
    if model == "hh_cond_exp_traub":
        out.update({"gbar_Na": tidy(_get(p, "g_Na") / 1000.0), "gbar_K": tidy(_get(p, "g_K") / 1000.0),
                    "g_leak": tidy(_get(p, "g_L") / 1000.0), "e_rev_Na": _get(p, "E_Na"),
                    "e_rev_K": _get(p, "E_K"), "e_rev_leak": _get(p, "E_L"), "v_offset": _get(p, "V_T"),
                    "e_rev_E": _get(p, "E_ex"), "e_rev_I": _get(p, "E_in")})
        return nml, {k: fmt(v) for k, v in out.items()}
    out.update({"tau_refrac": _get(p, "t_ref"), "v_thresh": _get(p, "V_th"), "v_reset": _get(p, "V_reset"),
                "v_rest": _get(p, "E_L")})
    if CELL_TYPES[model].conductance:
        out["tau_m"] = _get(p, "C_m") / _get(p, "g_L")
        out["e_rev_E"], out["e_rev_I"] = _get(p, "E_ex"), _get(p, "E_in")
    else:
        out["tau_m"] = _get(p, "tau_m")
    if model == "aeif_cond_exp":
        if _get(p, "w") != 0:
            raise UnsupportedFeature("aeif_cond_exp -> NeuroML2 EIF_cond_exp_isfa_ista starts w at 0, "
                                     f"but w={p['w']}")
        # PyNN.xml: tau_w w' = a (v - v_rest) - w, with w subtracted from i_offset (nA): a in uS, b in nA
        out.update({"v_spike": _get(p, "V_peak"), "delta_T": _get(p, "Delta_T"), "tau_w": _get(p, "tau_w"),
                    "a": tidy(_get(p, "a") / 1000.0), "b": tidy(_get(p, "b") / 1000.0)})
    return nml, {k: fmt(v) for k, v in out.items()}


def cell_from_pynn(neuroml_type: str, attrs: dict[str, float]) -> tuple[str, dict]:
    """(catalogue model, params in catalogue units) of a NeuroML2 PyNN cell (dimensionless numbers)."""
    a = attrs
    model = next(m for m, spec in CELL_TYPES.items() if spec.neuroml_type == neuroml_type)
    p: dict = {"C_m": tidy(a["cm"] * 1000.0), "I_e": tidy(a["i_offset"] * 1000.0),
               "tau_syn_ex": a["tau_syn_E"], "tau_syn_in": a["tau_syn_I"], "V_m": a["v_init"]}
    if neuroml_type == "HH_cond_exp":
        p.update({"g_Na": tidy(a["gbar_Na"] * 1000.0), "g_K": tidy(a["gbar_K"] * 1000.0),
                  "g_L": tidy(a["g_leak"] * 1000.0), "E_Na": a["e_rev_Na"], "E_K": a["e_rev_K"],
                  "E_L": a["e_rev_leak"], "V_T": a["v_offset"], "E_ex": a["e_rev_E"], "E_in": a["e_rev_I"]})
        return model, p
    p.update({"t_ref": a["tau_refrac"], "V_th": a["v_thresh"], "V_reset": a["v_reset"], "E_L": a["v_rest"]})
    if CELL_TYPES[model].conductance:
        p["g_L"] = tidy(p["C_m"] / a["tau_m"])
        p["E_ex"], p["E_in"] = a["e_rev_E"], a["e_rev_I"]
    else:
        p["tau_m"] = a["tau_m"]
    if model == "aeif_cond_exp":
        p.update({"V_peak": a["v_spike"], "Delta_T": a["delta_T"], "tau_w": a["tau_w"], "a": tidy(a["a"] * 1000.0),
                  "b": tidy(a["b"] * 1000.0)})
    return model, p


# NeuroML2 attribute -> (dimension, NeuroML unit of the catalogue value) for cells with dimensional parameters
DIMENSIONAL_CELL_ATTRS: dict[str, dict[str, str]] = {
    "iafCell": {"leakReversal": "mV", "thresh": "mV", "reset": "mV", "C": "pF", "leakConductance": "nS"},
    "iafRefCell": {"leakReversal": "mV", "thresh": "mV", "reset": "mV", "C": "pF", "leakConductance": "nS",
                   "refract": "ms"},
    "izhikevichCell": {"v0": "mV", "thresh": "mV"},
    "izhikevich2007Cell": {"v0": "mV", "C": "pF", "k": "nS_per_mV", "vr": "mV", "vt": "mV", "vpeak": "mV",
                           "a": "per_ms", "b": "nS", "c": "mV", "d": "pA"},
}
PYNN_CELL_ATTRS: dict[str, list[str]] = {
    "IF_curr_exp": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "tau_m", "tau_refrac", "v_reset",
                    "v_rest", "v_thresh"],
    "IF_curr_alpha": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "tau_m", "tau_refrac", "v_reset",
                      "v_rest", "v_thresh"],
    "IF_cond_exp": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "tau_m", "tau_refrac", "v_reset",
                    "v_rest", "v_thresh", "e_rev_E", "e_rev_I"],
    "IF_cond_alpha": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "tau_m", "tau_refrac", "v_reset",
                      "v_rest", "v_thresh", "e_rev_E", "e_rev_I"],
    "EIF_cond_exp_isfa_ista": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "tau_m", "tau_refrac",
                               "v_reset", "v_rest", "v_thresh", "e_rev_E", "e_rev_I", "v_spike", "delta_T",
                               "tau_w", "a", "b"],
    "HH_cond_exp": ["cm", "i_offset", "tau_syn_E", "tau_syn_I", "v_init", "gbar_Na", "gbar_K", "g_leak",
                    "e_rev_Na", "e_rev_K", "e_rev_leak", "v_offset", "e_rev_E", "e_rev_I"],
}


# izhikevich2007Cell attribute <-> izhikevich2007_cond_beta parameter (same units: pF, nS/mV, mV, 1/ms, nS, pA)
IZHIKEVICH2007_PARAMS = {"v0": "V_m", "C": "C_m", "k": "k", "vr": "V_r", "vt": "V_t", "vpeak": "V_peak",
                         "a": "a", "b": "b", "c": "V_reset", "d": "d"}
IZHIKEVICH2007_GBASE = "1nS"  # expTwoSynapse gbase of exported izhikevich2007_cond_beta synapses: weights in nS


def izhikevich2007_to_neuroml(p: dict) -> dict[str, str]:
    """izhikevich2007_cond_beta params -> izhikevich2007Cell attributes (U_m must be 0, I_e 0: NeuroML2 has neither)."""
    if _get(p, "U_m") != 0:
        raise UnsupportedFeature(f"izhikevich2007_cond_beta -> NeuroML2 izhikevich2007Cell starts u at 0, "
                                 f"but U_m={p['U_m']}")
    if _get(p, "I_e") != 0:
        raise UnsupportedFeature("izhikevich2007_cond_beta -> NeuroML2 izhikevich2007Cell: I_e must be 0 "
                                 "(use a dc input)")
    units = DIMENSIONAL_CELL_ATTRS["izhikevich2007Cell"]
    return {attr: q(_get(p, name), units[attr]) for attr, name in IZHIKEVICH2007_PARAMS.items()}


def izhikevich2007_from_neuroml(attrs: dict[str, float]) -> dict:
    """izhikevich2007Cell attributes (in the units of DIMENSIONAL_CELL_ATTRS) -> izhikevich2007_cond_beta params."""
    params = {name: attrs[attr] for attr, name in IZHIKEVICH2007_PARAMS.items()}
    params.update({"U_m": 0.0, "I_e": 0.0})
    return params


def izhikevich_from_neuroml(attrs: dict[str, float]) -> dict:
    """NeuroML2 izhikevichCell (2003 form; v0, thresh in mV) -> NEST `izhikevich` params."""
    return {"V_m": attrs["v0"], "U_m": tidy(attrs["b"] * attrs["v0"]), "a": attrs["a"], "b": attrs["b"],
            "c": attrs["c"], "d": attrs["d"], "V_th": attrs["thresh"], "I_e": 0.0}


def iaf_from_neuroml(neuroml_type: str, attrs: dict[str, float]) -> dict:
    """iafCell / iafRefCell (pF, nS, mV, ms) -> the LIF part of the catalogue params (tau_m from C/g)."""
    return {"C_m": attrs["C"], "tau_m": tidy(attrs["C"] / attrs["leakConductance"]), "E_L": attrs["leakReversal"],
            "V_m": attrs["leakReversal"], "V_th": attrs["thresh"], "V_reset": attrs["reset"],
            "t_ref": attrs.get("refract", 0.0), "I_e": 0.0}


# -- synapses and weights -------------------------------------------------------------

def synapse_to_neuroml(model: str, params: dict, receptor: str) -> tuple[str, dict[str, str]]:
    """(NeuroML2 synapse type, attributes) of the `receptor` ('excitatory'/'inhibitory') of a cell model."""
    spec = CELL_TYPES.get(model)
    if spec is None or spec.synapse_type is None:
        raise UnsupportedFeature(DELTA_REFUSAL.format(model=model))
    suffix = "ex" if receptor == "excitatory" else "in"
    if spec.synapse_type == "expTwoSynapse":
        return spec.synapse_type, {"gbase": IZHIKEVICH2007_GBASE, "erev": q(_get(params, f"E_{suffix}"), "mV"),
                                   "tau_rise": q(_get(params, f"tau_rise_{suffix}"), "ms"),
                                   "tau_decay": q(_get(params, f"tau_decay_{suffix}"), "ms")}
    attrs = {"tau_syn": fmt(_get(params, f"tau_syn_{suffix}"))}
    if spec.conductance:
        attrs["e_rev"] = fmt(_get(params, "E_ex" if suffix == "ex" else "E_in"))
    return spec.synapse_type, attrs


def weight_to_neuroml(model: str, weight: float) -> float:
    """A catalogue weight (pA or nS) in the PyNN synapse's unit (nA or uS); conductances positive.

    expTwoSynapses (izhikevich2007_cond_beta) are written with gbase 1 nS: their weights stay in nS.
    """
    if CELL_TYPES[model].synapse_type == "expTwoSynapse":
        return tidy(abs(weight))
    return tidy(abs(weight) / 1000.0) if CELL_TYPES[model].conductance else tidy(weight / 1000.0)


def weight_from_neuroml(conductance: bool, weight: float, scale: float = 1.0) -> float:
    """A NeuroML2 connection weight times its synapse's base (nA or uS) -> pA or nS."""
    return tidy(weight * scale * 1000.0)


# Synapse component types on import: type -> (family, attribute units)
SYNAPSE_FAMILIES: dict[str, tuple[str, dict[str, str]]] = {
    "expCurrSynapse": ("psc_exp", {"tau_syn": "none"}),
    "alphaCurrSynapse": ("psc_alpha", {"tau_syn": "none"}),
    "expCondSynapse": ("cond_exp", {"tau_syn": "none", "e_rev": "none"}),
    "alphaCondSynapse": ("cond_alpha", {"tau_syn": "none", "e_rev": "none"}),
    "expOneSynapse": ("cond_exp", {"tauDecay": "ms", "erev": "mV", "gbase": "uS"}),
    "alphaSynapse": ("cond_alpha", {"tau": "ms", "erev": "mV", "gbase": "uS"}),
    "alphaCurrentSynapse": ("psc_alpha", {"tau": "ms", "ibase": "nA"}),
    "expTwoSynapse": ("cond_beta", {"tauRise": "ms", "tauDecay": "ms", "erev": "mV", "gbase": "uS"}),
}
FAMILY_MODELS = {"psc_exp": "iaf_psc_exp", "psc_alpha": "iaf_psc_alpha", "cond_exp": "iaf_cond_exp",
                 "cond_alpha": "iaf_cond_alpha"}
PYNN_CELL_FAMILY = {"IF_curr_exp": "psc_exp", "IF_curr_alpha": "psc_alpha", "IF_cond_exp": "cond_exp",
                    "IF_cond_alpha": "cond_alpha", "EIF_cond_exp_isfa_ista": "cond_exp",
                    "HH_cond_exp": "cond_exp"}


@dataclass
class SynapseInfo:
    """An imported NeuroML2 synapse in netbabel terms: tau (ms), reversal (mV) and base (nA or uS)."""

    family: str
    tau: float  # decay time constant
    erev: float | None
    base: float  # weight 1 in NeuroML2 = base nA (current) or base uS (conductance)
    tau_rise: float | None = None  # expTwoSynapse only

    @property
    def taus(self) -> float | tuple[float, float]:
        """The time constant(s) that distinguish synapses: tau, or (tau_rise, tau_decay)."""
        return self.tau if self.tau_rise is None else (self.tau_rise, self.tau)

    @property
    def conductance(self) -> bool:
        return self.family.startswith("cond")


def synapse_from_neuroml(neuroml_type: str, attrs: dict[str, float]) -> SynapseInfo:
    """A NeuroML2 synapse's attributes (already in the units of SYNAPSE_FAMILIES) as a SynapseInfo."""
    family = SYNAPSE_FAMILIES[neuroml_type][0]
    if neuroml_type in PYNN_SYNAPSES:
        return SynapseInfo(family, attrs["tau_syn"], attrs.get("e_rev"), 1.0)
    if neuroml_type == "expOneSynapse":
        return SynapseInfo(family, attrs["tauDecay"], attrs["erev"], attrs["gbase"])
    if neuroml_type == "alphaSynapse":
        return SynapseInfo(family, attrs["tau"], attrs["erev"], attrs["gbase"])
    if neuroml_type == "expTwoSynapse":
        return SynapseInfo(family, attrs["tauDecay"], attrs["erev"], attrs["gbase"], attrs["tauRise"])
    return SynapseInfo(family, attrs["tau"], None, attrs["ibase"])


# -- compartments: NEURON built-ins as NeuroML2 channels ------------------------------------------

# NEURON's `hh` (Hodgkin & Huxley 1952, q10 = 3 from 6.3 degC) as NeuroML2 HH rate definitions.
HH_CHANNELS = {
    "hh_na": {"ion": "na", "gates": {
        "m": (3, ("HHExpLinearRate", "1per_ms", "10mV", "-40mV"), ("HHExpRate", "4per_ms", "-18mV", "-65mV")),
        "h": (1, ("HHExpRate", "0.07per_ms", "-20mV", "-65mV"), ("HHSigmoidRate", "1per_ms", "10mV", "-35mV"))}},
    "hh_k": {"ion": "k", "gates": {
        "n": (4, ("HHExpLinearRate", "0.1per_ms", "10mV", "-55mV"), ("HHExpRate", "0.125per_ms", "-80mV", "-65mV"))}},
}
# description mechanism parameter -> (channel id, NeuroML role); densities S/cm2, reversals mV
HH_PARAMETERS = {"gnabar": ("hh_na", "cond"), "gkbar": ("hh_k", "cond"), "gl": ("hh_leak", "cond"),
                 "el": ("hh_leak", "erev")}
HH_DEFAULTS = {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}
HH_REVERSALS = {"na": ("ena", 50.0), "k": ("ek", -77.0)}
PAS_DEFAULTS = {"g": 0.001, "e": -70.0}
KNOWN_MECHANISMS = {"hh", "pas"}


def s_per_cm2(value: float) -> str:
    return q(value, "S_per_cm2")
