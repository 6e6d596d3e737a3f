"""Description -> PyNN 0.13 standard cells: names, parameters and units, weights and receptors.

PyNN's units: membrane capacitance nF, currents nA, conductances uS, times ms,
potentials mV. The description uses NEST's (pF, pA, nS): factors come from
`netbabel.converters.units`. Every catalogue parameter is passed explicitly
(PyNN's defaults differ from NEST's, e.g. tau_refrac 0.1 ms against t_ref 2 ms);
a catalogue parameter PyNN has no name for must keep the value PyNN's NEST
model uses, otherwise the export is refused.

Weights: current synapses in nA, conductance synapses in uS, delta synapses
(IF_curr_delta, Izhikevich) in mV. The receptor is `excitatory` / `inhibitory`;
PyNN 0.13 wants NEGATIVE weights on current-based inhibitory receptors
(pyNN.standardmodels.base.check_weights) and positive ones on conductance receptors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from netbabel.converters import nest as nest_conv
from netbabel.converters.units import factor
from netbabel.description.catalogue import MODELS, defaults
from netbabel.description.model import Description
from netbabel.errors import UnsupportedFeature

@dataclass(frozen=True)
class CellMap:
    pynn: str
    params: dict[str, Callable[[dict], float]]  # PyNN parameter -> f(catalogue values)
    initial: dict[str, Callable[[dict], float]]  # PyNN state variable -> f(catalogue values)
    fixed: dict[str, Any]  # catalogue parameters PyNN cannot set -> the only value it supports
    neuron: bool = True  # available in pyNN.neuron


def _scaled(name: str, unit: str, pynn_unit: str) -> Callable[[dict], float]:
    f = factor(unit, pynn_unit)
    return lambda p: p[name] * f


def _same(name: str) -> Callable[[dict], float]:
    return lambda p: p[name]


def _tau_m(p: dict) -> float:
    return p["C_m"] / p["g_L"]  # pF / nS = ms


_LIF = {"v_rest": _same("E_L"), "v_reset": _same("V_reset"), "cm": _scaled("C_m", "pF", "nF"),
        "tau_refrac": _same("t_ref"), "v_thresh": _same("V_th"), "i_offset": _scaled("I_e", "pA", "nA")}
_PSC = {**_LIF, "tau_m": _same("tau_m"), "tau_syn_E": _same("tau_syn_ex"), "tau_syn_I": _same("tau_syn_in")}
_COND = {**_LIF, "tau_m": _tau_m, "tau_syn_E": _same("tau_syn_ex"), "tau_syn_I": _same("tau_syn_in"),
         "e_rev_E": _same("E_ex"), "e_rev_I": _same("E_in")}
_V = {"v": _same("V_m")}
INF = float("inf")

CELLS: dict[str, CellMap] = {
    "iaf_psc_exp": CellMap("IF_curr_exp", _PSC, _V, {}),
    "iaf_psc_alpha": CellMap("IF_curr_alpha", _PSC, _V, {"V_min": -INF}),
    "iaf_psc_delta": CellMap("IF_curr_delta", {**_LIF, "tau_m": _same("tau_m")}, _V,
                             {"V_min": -INF, "refractory_input": False}, neuron=False),
    "iaf_cond_exp": CellMap("IF_cond_exp", _COND, _V, {}),
    "iaf_cond_alpha": CellMap("IF_cond_alpha", _COND, _V, {}),
    "aeif_cond_exp": CellMap(
        "EIF_cond_exp_isfa_ista",
        {"cm": _scaled("C_m", "pF", "nF"), "tau_refrac": _same("t_ref"), "v_spike": _same("V_peak"),
         "v_reset": _same("V_reset"), "v_rest": _same("E_L"), "tau_m": _tau_m,
         "i_offset": _scaled("I_e", "pA", "nA"), "a": _same("a"), "b": _scaled("b", "pA", "nA"),
         "delta_T": _same("Delta_T"), "tau_w": _same("tau_w"), "v_thresh": _same("V_th"),
         "e_rev_E": _same("E_ex"), "tau_syn_E": _same("tau_syn_ex"), "e_rev_I": _same("E_in"),
         "tau_syn_I": _same("tau_syn_in")},
        {"v": _same("V_m"), "w": _scaled("w", "pA", "nA")}, {}),
    "izhikevich": CellMap(
        "Izhikevich",
        {"a": _same("a"), "b": _same("b"), "c": _same("c"), "d": _same("d"), "i_offset": _scaled("I_e", "pA", "nA")},
        {"v": _same("V_m"), "u": _same("U_m")}, {"V_th": 30.0, "V_min": -INF, "consistent_integration": True}),
    "hh_cond_exp_traub": CellMap(
        "HH_cond_exp",
        {"gbar_Na": _scaled("g_Na", "nS", "uS"), "gbar_K": _scaled("g_K", "nS", "uS"),
         "g_leak": _scaled("g_L", "nS", "uS"), "cm": _scaled("C_m", "pF", "nF"), "v_offset": _same("V_T"),
         "e_rev_Na": _same("E_Na"), "e_rev_K": _same("E_K"), "e_rev_leak": _same("E_L"),
         "e_rev_E": _same("E_ex"), "e_rev_I": _same("E_in"), "tau_syn_E": _same("tau_syn_ex"),
         "tau_syn_I": _same("tau_syn_in"), "i_offset": _scaled("I_e", "pA", "nA")},
        _V, {"t_ref": 2.0}),
}

CURRENT_FACTOR = factor("pA", "nA")  # injected currents (DCSource, StepCurrentSource)
WEIGHT_UNITS = {"current": ("pA", "nA"), "conductance": ("nS", "uS"), "delta": ("mV", "mV")}


def cell(d: Description, population: str, simulator: str | None = None) -> tuple[str, dict, dict]:
    """(PyNN cell class name, parameters, initial values) in PyNN units; refuses what PyNN cannot take."""
    model = nest_conv.check_point_model(d, population, "PyNN")
    if MODELS[model].kind == "source":
        raise UnsupportedFeature(f"population {population!r}: spike sources are handled by source_cell()")
    mapping = CELLS[model]
    if simulator == "neuron" and not mapping.neuron:
        raise UnsupportedFeature(f"population {population!r}: {model} ({mapping.pynn}) has no NEURON "
                                 "implementation in PyNN 0.13: use pynn-nest, nest or netpyne")
    values = {**defaults(model), **nest_conv.neuron_parameters(d, population)}
    for name, only in mapping.fixed.items():
        if values.get(name) != only:
            raise UnsupportedFeature(f"population {population!r}: {model} parameter {name} = {values.get(name)!r} "
                                     f"cannot be expressed by PyNN's {mapping.pynn} (it only supports {only!r})",
                                     pointer=f"/cell_types/{d.populations[population].cell_type}/params/{name}")
    params = {k: float(f(values)) for k, f in mapping.params.items()}
    initial = {k: float(f(values)) for k, f in mapping.initial.items()}
    return mapping.pynn, params, initial


def source_cell(d: Description, population: str) -> tuple[str, dict]:
    """SpikeSourcePoisson (rate, start, duration) or SpikeSourceArray for a spike source population."""
    model = nest_conv.cell_model(d, population)
    if model == "poisson_generator":
        p = {**defaults(model), **nest_conv.neuron_parameters(d, population)}
        if p["origin"] != 0.0:
            raise UnsupportedFeature(f"population {population!r}: poisson_generator origin {p['origin']} has no "
                                     "PyNN equivalent")
        duration = p["stop"] - p["start"]
        params = {"rate": p["rate"], "start": p["start"]}
        if duration != INF:
            params["duration"] = duration
        return "SpikeSourcePoisson", params
    return "SpikeSourceArray", {}


def synapse_kind(d: Description, target: str) -> str:
    return MODELS[nest_conv.check_point_model(d, target, "PyNN")].synapse


def weight_factor(d: Description, target: str) -> float:
    """Description weight unit -> PyNN weight unit for connections onto `target`."""
    unit, pynn_unit = WEIGHT_UNITS[synapse_kind(d, target)]
    return factor(unit, pynn_unit)


def receptor(d: Description, target: str, synapse_type: str | None, weight: nest_conv.Value, what: str) -> str:
    """PyNN receptor_type: the synapse type's receptor, or for signed weights the sign."""
    if synapse_type:
        name = d.synapse_types[synapse_type].receptor
        if name not in nest_conv.RECEPTORS:
            raise UnsupportedFeature(f"{what}: receptor {name!r} does not exist on PyNN standard cells")
        return name
    if synapse_kind(d, target) == "conductance":
        return "excitatory"
    lowest, highest = value_range(weight)
    if lowest < 0 < highest:
        raise UnsupportedFeature(f"{what}: weights of both signs in one projection cannot be given one PyNN receptor")
    return "inhibitory" if highest <= 0 and lowest < 0 else "excitatory"


def value_range(v: nest_conv.Value) -> tuple[float, float]:
    """Smallest and largest value a number or distribution can take (times its scale)."""
    if not isinstance(v, nest_conv.RandomValue):
        return float(v), float(v)
    if v.distribution == "uniform":
        low, high = v.a, v.b
    elif v.distribution == "lognormal":
        low, high = 0.0, INF
    else:
        low, high = -INF, INF
    if v.low is not None:
        low = max(low, v.low)
    if v.high is not None:
        high = min(high, v.high)
    return tuple(sorted((low * v.scale, high * v.scale)))  # type: ignore[return-value]


def check_weight_sign(d: Description, target: str, receptor_name: str, weight: nest_conv.Value, what: str) -> None:
    """PyNN's rule: current/delta inhibitory weights negative, all others positive."""
    lowest, highest = value_range(weight)
    kind = synapse_kind(d, target)
    if kind != "conductance" and receptor_name == "inhibitory":
        if highest > 0:
            raise UnsupportedFeature(f"{what}: PyNN needs negative weights on the inhibitory receptor of "
                                     f"current-based cells; the weights reach {highest}")
    elif lowest < 0:
        raise UnsupportedFeature(f"{what}: PyNN needs positive weights on {receptor_name} receptors of "
                                 f"{kind}-based cells; the weights reach {lowest} (bound the distribution)")


def scale(v: nest_conv.Value, f: float) -> nest_conv.Value:
    """A number or distribution multiplied by a positive unit factor `f` (bounds scale too)."""
    if not isinstance(v, nest_conv.RandomValue):
        return v * f
    low = None if v.low is None else v.low * f
    high = None if v.high is None else v.high * f
    if v.distribution == "lognormal":
        return replace(v, a=v.a + math.log(f), low=low, high=high)
    return replace(v, a=v.a * f, b=v.b * f, low=low, high=high)


def pynn_distribution(v: nest_conv.RandomValue, simulator: str = "neuron") -> tuple[str, dict]:
    """PyNN RandomDistribution name and parameters (numpy RNG), or UnsupportedFeature."""
    if v.scale != 1.0:
        raise UnsupportedFeature("a scaled lognormal distribution has no PyNN equivalent")
    if v.distribution == "uniform":
        return "uniform", {"low": v.a, "high": v.b}
    if v.distribution == "normal":
        if v.low is None and v.high is None:
            return "normal", {"mu": v.a, "sigma": v.b}
        name = "normal_clipped" if v.bounds != "clip" else "normal_clipped_to_boundary"
        return name, {"mu": v.a, "sigma": v.b, "low": -INF if v.low is None else v.low,
                      "high": INF if v.high is None else v.high}
    if v.low is not None or v.high is not None:
        raise UnsupportedFeature("a bounded lognormal distribution has no PyNN (numpy RNG) equivalent")
    return "lognormal", {"mu": v.a, "sigma": v.b}
