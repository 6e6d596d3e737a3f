"""The point-neuron and spike-source catalogue: parameter names, canonical units, defaults.

Names, units and defaults follow NEST 3.10 (the models' documentation), so a
point-neuron description reads like a NEST script. The table is the single
source for the schema, the docs and the exporters' parameter checks.
"""

from __future__ import annotations

from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True)
class Param:
    unit: str
    default: float | bool | list | None
    description: str


@dataclass(frozen=True)
class Model:
    name: str
    kind: str  # "neuron" | "source"
    synapse: str  # "current" | "conductance" | "delta" | "none"
    weight_unit: str  # unit of weights of connections onto this model
    description: str
    params: dict[str, Param]


def _p(unit: str, default, description: str) -> Param:
    return Param(unit, default, description)


_LIF_COMMON = {
    "V_m": _p("mV", -70.0, "Initial membrane potential"),
    "E_L": _p("mV", -70.0, "Leak reversal (resting) potential"),
    "C_m": _p("pF", 250.0, "Membrane capacitance"),
    "tau_m": _p("ms", 10.0, "Membrane time constant"),
    "t_ref": _p("ms", 2.0, "Absolute refractory period"),
    "V_th": _p("mV", -55.0, "Spike threshold"),
    "V_reset": _p("mV", -70.0, "Reset potential"),
    "I_e": _p("pA", 0.0, "Constant external input current"),
}
_PSC_SYN = {
    "tau_syn_ex": _p("ms", 2.0, "Time constant of excitatory synaptic current"),
    "tau_syn_in": _p("ms", 2.0, "Time constant of inhibitory synaptic current"),
}
_COND_COMMON = {
    "V_m": _p("mV", -70.0, "Initial membrane potential"),
    "E_L": _p("mV", -70.0, "Leak reversal potential"),
    "C_m": _p("pF", 250.0, "Membrane capacitance"),
    "t_ref": _p("ms", 2.0, "Absolute refractory period"),
    "V_th": _p("mV", -55.0, "Spike threshold"),
    "V_reset": _p("mV", -60.0, "Reset potential"),
    "E_ex": _p("mV", 0.0, "Excitatory reversal potential"),
    "E_in": _p("mV", -85.0, "Inhibitory reversal potential"),
    "g_L": _p("nS", 16.6667, "Leak conductance"),
    "tau_syn_ex": _p("ms", 0.2, "Time constant of excitatory synaptic conductance"),
    "tau_syn_in": _p("ms", 2.0, "Time constant of inhibitory synaptic conductance"),
    "I_e": _p("pA", 0.0, "Constant external input current"),
}

MODELS: dict[str, Model] = {
    "iaf_psc_delta": Model(
        "iaf_psc_delta", "neuron", "delta", "mV",
        "Leaky integrate-and-fire neuron with delta-shaped synaptic input: a spike of weight w makes V_m jump by w.",
        {**_LIF_COMMON,
         "V_min": _p("mV", -INF, "Lower bound of the membrane potential"),
         "refractory_input": _p("", False, "If true, input arriving during refractoriness is added after it")},
    ),
    "iaf_psc_exp": Model(
        "iaf_psc_exp", "neuron", "current", "pA",
        "Leaky integrate-and-fire neuron with exponentially decaying synaptic currents, integrated exactly.",
        {**_LIF_COMMON, **_PSC_SYN},
    ),
    "iaf_psc_alpha": Model(
        "iaf_psc_alpha", "neuron", "current", "pA",
        "Leaky integrate-and-fire neuron with alpha-shaped synaptic currents, integrated exactly.",
        {**_LIF_COMMON, **_PSC_SYN, "V_min": _p("mV", -INF, "Lower bound of the membrane potential")},
    ),
    "iaf_cond_exp": Model(
        "iaf_cond_exp", "neuron", "conductance", "nS",
        "Leaky integrate-and-fire neuron with exponentially decaying synaptic conductances.",
        dict(_COND_COMMON),
    ),
    "iaf_cond_alpha": Model(
        "iaf_cond_alpha", "neuron", "conductance", "nS",
        "Leaky integrate-and-fire neuron with alpha-shaped synaptic conductances.",
        dict(_COND_COMMON),
    ),
    "aeif_cond_exp": Model(
        "aeif_cond_exp", "neuron", "conductance", "nS",
        "Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005) with exponential conductances.",
        {
            "V_m": _p("mV", -70.6, "Initial membrane potential"),
            "w": _p("pA", 0.0, "Initial adaptation current"),
            "C_m": _p("pF", 281.0, "Membrane capacitance"),
            "g_L": _p("nS", 30.0, "Leak conductance"),
            "E_L": _p("mV", -70.6, "Leak reversal potential"),
            "V_th": _p("mV", -50.4, "Spike initiation threshold"),
            "Delta_T": _p("mV", 2.0, "Slope factor"),
            "tau_w": _p("ms", 144.0, "Adaptation time constant"),
            "a": _p("nS", 4.0, "Subthreshold adaptation"),
            "b": _p("pA", 80.5, "Spike-triggered adaptation"),
            "V_reset": _p("mV", -60.0, "Reset potential"),
            "V_peak": _p("mV", 0.0, "Spike detection threshold"),
            "t_ref": _p("ms", 0.0, "Absolute refractory period"),
            "E_ex": _p("mV", 0.0, "Excitatory reversal potential"),
            "E_in": _p("mV", -85.0, "Inhibitory reversal potential"),
            "tau_syn_ex": _p("ms", 0.2, "Excitatory synaptic time constant"),
            "tau_syn_in": _p("ms", 2.0, "Inhibitory synaptic time constant"),
            "I_e": _p("pA", 0.0, "Constant external input current"),
        },
    ),
    "izhikevich": Model(
        "izhikevich", "neuron", "delta", "mV",
        "Izhikevich (2003) neuron; a spike of weight w makes V_m jump by w.",
        {
            "V_m": _p("mV", -65.0, "Initial membrane potential"),
            "U_m": _p("mV", -13.0, "Initial recovery variable"),
            "a": _p("1/ms", 0.02, "Time scale of the recovery variable"),
            "b": _p("1/ms", 0.2, "Sensitivity of the recovery variable"),
            "c": _p("mV", -65.0, "After-spike reset value of V_m"),
            "d": _p("mV", 8.0, "After-spike increment of U_m"),
            "V_th": _p("mV", 30.0, "Spike threshold"),
            "V_min": _p("mV", -INF, "Lower bound of the membrane potential"),
            "I_e": _p("pA", 0.0, "Constant external input current"),
            "consistent_integration": _p("", True, "Use the standard (consistent) integration of NEST"),
        },
    ),
    "izhikevich2007_cond_beta": Model(
        "izhikevich2007_cond_beta", "neuron", "conductance", "nS",
        "Izhikevich (2007) neuron as NeuroML2's izhikevich2007Cell, C_m dV/dt = k (V-V_r)(V-V_t) - U + I, "
        "dU/dt = a (b (V-V_r) - U); when V > V_peak: V = V_reset, U += d. Conductance synapses with a "
        "difference-of-exponentials (beta) time course normalised to a peak of the weight (NeuroML2 "
        "expTwoSynapse, NEURON Exp2Syn). No NEST model: runs in the netpyne and neuroml backends.",
        {
            "V_m": _p("mV", -60.0, "Initial membrane potential (NeuroML2 v0)"),
            "U_m": _p("pA", 0.0, "Initial recovery variable (NeuroML2 starts it at 0)"),
            "C_m": _p("pF", 100.0, "Membrane capacitance"),
            "k": _p("nS/mV", 0.7, "Scale of the quadratic membrane current"),
            "V_r": _p("mV", -60.0, "Resting membrane potential"),
            "V_t": _p("mV", -40.0, "Instantaneous threshold potential"),
            "V_peak": _p("mV", 35.0, "Spike cut-off: a spike when V_m exceeds it"),
            "V_reset": _p("mV", -50.0, "After-spike reset value of V_m (Izhikevich's c)"),
            "a": _p("1/ms", 0.03, "Time scale of the recovery variable"),
            "b": _p("nS", -2.0, "Sensitivity of the recovery variable to V_m - V_r"),
            "d": _p("pA", 100.0, "After-spike increment of U_m"),
            "E_ex": _p("mV", 0.0, "Excitatory reversal potential"),
            "E_in": _p("mV", -80.0, "Inhibitory reversal potential"),
            "tau_rise_ex": _p("ms", 0.5, "Rise time constant of the excitatory conductance"),
            "tau_decay_ex": _p("ms", 5.0, "Decay time constant of the excitatory conductance"),
            "tau_rise_in": _p("ms", 1.0, "Rise time constant of the inhibitory conductance"),
            "tau_decay_in": _p("ms", 10.0, "Decay time constant of the inhibitory conductance"),
            "I_e": _p("pA", 0.0, "Constant external input current"),
        },
    ),
    "hh_cond_exp_traub": Model(
        "hh_cond_exp_traub", "neuron", "conductance", "nS",
        "Hodgkin-Huxley neuron after Traub and Miles (1991) with exponential conductances.",
        {
            "V_m": _p("mV", -60.0, "Initial membrane potential"),
            "E_L": _p("mV", -60.0, "Leak reversal potential"),
            "C_m": _p("pF", 200.0, "Membrane capacitance"),
            "g_Na": _p("nS", 20000.0, "Sodium peak conductance"),
            "g_K": _p("nS", 6000.0, "Potassium peak conductance"),
            "g_L": _p("nS", 10.0, "Leak conductance"),
            "E_Na": _p("mV", 50.0, "Sodium reversal potential"),
            "E_K": _p("mV", -90.0, "Potassium reversal potential"),
            "V_T": _p("mV", -63.0, "Voltage offset of the gating dynamics"),
            "E_ex": _p("mV", 0.0, "Excitatory reversal potential"),
            "E_in": _p("mV", -80.0, "Inhibitory reversal potential"),
            "tau_syn_ex": _p("ms", 5.0, "Excitatory synaptic time constant"),
            "tau_syn_in": _p("ms", 10.0, "Inhibitory synaptic time constant"),
            "t_ref": _p("ms", 2.0, "Refractory period (spike counting only)"),
            "I_e": _p("pA", 0.0, "Constant external input current"),
        },
    ),
    "poisson_generator": Model(
        "poisson_generator", "source", "none", "",
        "Source population of independent Poisson spike trains.",
        {
            "rate": _p("Hz", 0.0, "Mean firing rate"),
            "start": _p("ms", 0.0, "Start of activity (relative to origin)"),
            "stop": _p("ms", INF, "End of activity (relative to origin)"),
            "origin": _p("ms", 0.0, "Time origin"),
        },
    ),
    "spike_generator": Model(
        "spike_generator", "source", "none", "",
        "Source population emitting given spike times (one list shared by all, or one per neuron).",
        {
            "spike_times": _p("ms", [], "Spike times: a list, or a list of lists (one per neuron)"),
            "spike_file": _p("", None, "SONATA spike file (relative path) with one train per node id"),
        },
    ),
}

NEURON_MODELS = [m for m, spec in MODELS.items() if spec.kind == "neuron"]
SOURCE_MODELS = [m for m, spec in MODELS.items() if spec.kind == "source"]
MULTICOMPARTMENT = "multicompartment"
ALL_CELL_MODELS = [*MODELS, MULTICOMPARTMENT]


def weight_unit(model: str) -> str:
    """Unit of the weight of a connection onto a cell of `model`."""
    if model == MULTICOMPARTMENT:
        return "uS"
    return MODELS[model].weight_unit


def defaults(model: str) -> dict:
    """The catalogue defaults of a point model."""
    return {name: p.default for name, p in MODELS[model].params.items()}
