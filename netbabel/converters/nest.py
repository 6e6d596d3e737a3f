"""Description -> NEST 3.10: model names, parameters, weights, connection rules, inputs.

The catalogue already uses NEST's names and units (pA, pF, nS, mV, ms), so
parameters pass through unchanged; what is translated here is structure:
signs of weights (NEST marks inhibition with negative weights, also for
conductances), connection rules (NEST rule dictionaries), random values
(`nest.random` / `nest.math` parameters, written as source text) and inputs.

Choices:
- bounded distributions: `redraw` -> `nest.math.redraw(d, min, max)` (NEST redraws
  up to 1000 times, then stops with an error), `clip` -> `nest.math.min/max`;
- delays: NEST rounds delays to the dt grid; a random delay is clipped below at dt;
- a population of `poisson_generator` cells is one generator feeding N
  `parrot_neuron`s (N independent trains, each shared by all its targets);
- a Poisson input of rate r and indegree K onto a population is one
  `poisson_generator` of rate K*r connected to all targets (NEST draws an
  independent train per target); with a random weight or delay it is K generators of rate r;
- dc / step_current inputs: the generator is connected with delay dt and its times are one
  step early, so the current is in the neuron from `start` (each `times[i]`) on, as with
  NEURON's IClamp; a dc or step time below 2 dt takes effect at 2 dt (`generator_time`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.model import Description, Distribution, Input, Projection
from netbabel.errors import UnsupportedFeature

RECEPTORS = ("excitatory", "inhibitory")
TIC = 0.001  # ms, NEST's default time base (tics_per_ms = 1000)
# catalogue models without a NEST (and so PyNN) counterpart, and the backends that do run them
NO_NEST_MODEL = {"izhikevich2007_cond_beta": "NeuroML2's izhikevich2007Cell with expTwoSynapse conductances"}
RUNS_ELSEWHERE = ("netpyne", "neuroml")


@dataclass(frozen=True)
class RandomValue:
    """A distribution in target units, with an overall sign (-1 for NEST inhibitory conductances)."""

    distribution: str
    a: float  # normal: mean, lognormal: mu, uniform: low
    b: float  # normal: sd, lognormal: sigma, uniform: high
    low: float | None = None
    high: float | None = None
    bounds: str | None = None
    scale: float = 1.0


Value = float | RandomValue


def cell_model(d: Description, population: str) -> str:
    """The catalogue model of a population's cell type."""
    return d.cell_types[d.populations[population].cell_type].model


def is_source(d: Description, population: str) -> bool:
    model = cell_model(d, population)
    return model != MULTICOMPARTMENT and MODELS[model].kind == "source"


def recorded(d: Description) -> tuple[list[str], dict[str, list[int]]]:
    """Populations whose spikes are recorded, and cells whose V_m is recorded (refused for spike sources)."""
    spikes = d.simulation.record.spikes
    pops = list(d.populations) if spikes == "all" else list(spikes)
    v: dict[str, list[int]] = {}
    for r in d.simulation.record.v:  # NEST connects a multimeter to node ids in ascending order only
        v[r.population] = sorted(set(v.get(r.population, [])) | set(r.ids))
    for pop in v:
        if is_source(d, pop):
            raise UnsupportedFeature(f"recording V_m of {pop!r}: a spike source has no membrane potential")
    return pops, v


def check_point_model(d: Description, population: str, target: str) -> str:
    """The population's catalogue model; UnsupportedFeature for a multicompartment cell."""
    model = cell_model(d, population)
    if model == MULTICOMPARTMENT:
        raise UnsupportedFeature(
            f"population {population!r} has multicompartment cells ({d.populations[population].cell_type!r}): "
            f"{target} takes point neurons only (export to netpyne or neuroml instead)",
            pointer=f"/populations/{population}/cell_type")
    if model in NO_NEST_MODEL:
        raise UnsupportedFeature(
            f"population {population!r}: {model} ({NO_NEST_MODEL[model]}) has no {target} model; it runs in "
            f"the {' and '.join(RUNS_ELSEWHERE)} backends (export to netpyne or neuroml instead)",
            pointer=f"/populations/{population}/cell_type")
    return model


def neuron_parameters(d: Description, population: str) -> dict[str, Any]:
    """NEST parameters of a neuron population (catalogue names and units: unchanged), V_m from v_init."""
    ct = d.cell_types[d.populations[population].cell_type]
    params: dict[str, Any] = {}
    for name, value in ct.params.items():
        if name not in MODELS[ct.model].params:
            raise UnsupportedFeature(f"cell type {d.populations[population].cell_type!r}: unknown parameter {name!r} "
                                     f"of {ct.model}", pointer=f"/cell_types/{d.populations[population].cell_type}/params/{name}")
        params[name] = value if isinstance(value, bool) else d.value(value)
    return params


def initial_v(d: Description, population: str) -> Value | None:
    """Population v_init as a number or a RandomValue (None: the model's V_m)."""
    v = d.populations[population].v_init
    if v is None:
        return None
    return quantity(d, v, f"population {population!r} v_init")


def quantity(d: Description, q: Any, what: str, scale: float = 1.0) -> Value:
    """A number or distribution from the description, times `scale` (a unit factor or a sign)."""
    if isinstance(q, Distribution):
        kind = q.distribution
        if kind == "normal":
            a, b = d.value(q.mean), d.value(q.sd)
        elif kind == "lognormal":
            a, b = d.value(q.mu), d.value(q.sigma)
        elif kind == "uniform":
            a, b = d.value(q.low), d.value(q.high)
        else:
            raise UnsupportedFeature(f"{what}: unknown distribution {kind!r}")
        low = None if q.low is None or kind == "uniform" else d.value(q.low)
        high = None if q.high is None or kind == "uniform" else d.value(q.high)
        bounds = q.bounds or ("redraw" if (low is not None or high is not None) else None)
        return RandomValue(kind, a, b, low, high, bounds, scale)
    return d.value(q) * scale


def weight_sign(d: Description, target: str, synapse_type: str | None, weight: Any, what: str) -> float:
    """NEST's sign factor for a weight onto `target`: -1 for inhibitory conductance synapses, else 1.

    Current and delta synapses carry signed weights already (negative = inhibitory)."""
    model = cell_model(d, target)
    receptor = d.synapse_types[synapse_type].receptor if synapse_type else None
    if receptor is not None and receptor not in RECEPTORS:
        raise UnsupportedFeature(f"{what}: receptor {receptor!r} does not exist on point neuron {model} "
                                 "(use excitatory or inhibitory)")
    if synapse_type and d.synapse_types[synapse_type].model != "static":
        raise UnsupportedFeature(f"{what}: synapse model {d.synapse_types[synapse_type].model!r} is not "
                                 "exported yet (only static synapses)")
    if MODELS[model].synapse == "conductance":
        return -1.0 if receptor == "inhibitory" else 1.0
    if receptor is not None and not isinstance(weight, Distribution):
        w = d.value(weight)
        if (receptor == "inhibitory" and w > 0) or (receptor == "excitatory" and w < 0):
            raise UnsupportedFeature(f"{what}: weight {w} has the wrong sign for receptor {receptor!r} on "
                                     f"{model} (current and delta synapses carry signed weights)")
    return 1.0


def projection_weight(d: Description, index: int) -> Value:
    p = d.projections[index]
    what = f"projection {d.projection_name(index)!r}"
    return quantity(d, p.weight, what, weight_sign(d, p.target, p.synapse_type, p.weight, what))


def input_weight(d: Description, index: int) -> Value:
    inp = d.inputs[index]
    what = f"input {d.input_name(index)!r}"
    return quantity(d, inp.weight if inp.weight is not None else 0.0, what,
                    weight_sign(d, inp.target, inp.synapse_type, inp.weight or 0.0, what))


def delay(d: Description, q: Any, what: str) -> Value:
    return quantity(d, q if q is not None else d.simulation.dt, what)


def connection_rule(d: Description, index: int) -> dict[str, Any]:
    """NEST's conn_spec for a projection's rule (explicit rules are loaded by the exporter)."""
    p: Projection = d.projections[index]
    rule = p.rule
    name = d.projection_name(index)
    spec: dict[str, Any] = {"rule": rule.type}
    if rule.type == "fixed_indegree":
        spec["indegree"] = int(round(d.value(rule.indegree)))
    elif rule.type == "fixed_outdegree":
        spec["outdegree"] = int(round(d.value(rule.outdegree)))
    elif rule.type == "fixed_total_number":
        spec["N"] = int(round(d.value(rule.n)))
    elif rule.type == "pairwise_bernoulli":
        try:
            spec["p"] = d.value(rule.p)
        except Exception:
            raise UnsupportedFeature(
                f"projection {name!r}: distance-dependent probability {rule.p!r} is not exported to native "
                "NEST/PyNN yet: use --mode frozen", pointer=f"/projections/{index}/rule/p") from None
    elif rule.type not in ("all_to_all", "one_to_one"):
        raise UnsupportedFeature(f"projection {name!r}: rule {rule.type!r} has no NEST equivalent",
                                 pointer=f"/projections/{index}/rule/type")
    if rule.type != "one_to_one":
        spec["allow_autapses"] = bool(p.autapses)
        spec["allow_multapses"] = bool(p.multapses)
    return spec


def check_input(d: Description, index: int) -> None:
    """UnsupportedFeature for inputs NEST cannot take."""
    inp: Input = d.inputs[index]
    if inp.section is not None:
        raise UnsupportedFeature(f"input {d.input_name(index)!r}: a section position applies to "
                                 "multicompartment cells only", pointer=f"/inputs/{index}/section")
    if inp.type == "poisson" and isinstance(inp.indegree, (int, float, str)):
        k = d.value(inp.indegree)
        if abs(k - round(k)) > 1e-9 or k < 0:
            raise UnsupportedFeature(f"input {d.input_name(index)!r}: indegree must be a whole number, got {k}")


def grid_step(t: float, dt: float) -> int:
    """The step in which a spike source emits a spike at time t (ms): off-grid times go to the end of their
    step, as NEST's spike_generator with allow_offgrid_times (and bmtk) does; times within tic/2 of the grid
    stay. Every export (NEST, PyNN, NetPyNE) puts spike-source times on the grid with this rule."""
    return math.ceil((float(t) - TIC / 2) / dt)


def grid_times(times: Any, dt: float) -> np.ndarray:
    """Spike-source times (ms) moved to the grid by the rule of `grid_step` (vectorised; 10 decimals)."""
    steps = np.ceil((np.asarray(times, dtype=float) - TIC / 2) / dt)
    return np.round(steps * dt, 10)


def spike_times_for_source(d: Description, population: str) -> list[list[float]]:
    """Per-cell spike times of a spike_generator population (one shared list, or one per cell)."""
    ct = d.cell_types[d.populations[population].cell_type]
    n = d.size(population)
    if ct.params.get("spike_file"):
        raise UnsupportedFeature(f"population {population!r}: spike_file sources are loaded by the exporter")
    times = ct.params.get("spike_times", [])
    if times and isinstance(times[0], list):
        if len(times) != n:
            raise UnsupportedFeature(f"population {population!r}: {len(times)} spike trains for {n} cells")
        return [[d.value(t) for t in train] for train in times]
    shared = [d.value(t) for t in times]
    return [shared for _ in range(n)]


# -- source text for generated scripts ----------------------------------------------

def generator_time(t: float, dt: float, earliest: float) -> float:
    """The time to give a dc_generator / step_current_generator connected with delay dt.

    NEST's current generators act for start < t <= stop and their event reaches the neuron
    after the connection delay, so a generator time of T - dt with delay dt puts the current
    into the neuron from T on (as NEURON's IClamp with del = T and NeuroML's pulseGenerator).
    Times that cannot be shifted are held at `earliest`. A generator emits nothing in the
    first step (measured: a dc_generator starting at 0 or at dt gives the same spikes), so a
    dc or step_current time below 2 dt takes effect at 2 dt (NEST accepts only amplitude
    times > 0).
    """
    return round(max(float(t) - dt, earliest), 10)


def py(value: Any) -> str:
    """Python source for a plain value (inf -> math.inf)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "math.inf" if value > 0 else "-math.inf"
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py(k)}: {py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py(v) for v in value) + "]"
    return repr(value)


def nest_source(v: Value, minimum: float | None = None) -> str:
    """Source text of a number or a nest.random parameter (bounded, scaled, floored at `minimum`)."""
    if not isinstance(v, RandomValue):
        return py(float(v) if minimum is None else max(float(v), minimum))
    if v.distribution == "normal":
        text = f"nest.random.normal(mean={py(v.a)}, std={py(v.b)})"
    elif v.distribution == "lognormal":
        text = f"nest.random.lognormal(mean={py(v.a)}, std={py(v.b)})"
    else:
        text = f"nest.random.uniform(min={py(v.a)}, max={py(v.b)})"
    if v.low is not None or v.high is not None:
        low = -math.inf if v.low is None else v.low
        high = math.inf if v.high is None else v.high
        if v.bounds == "clip":
            if v.low is not None:
                text = f"nest.math.max({text}, {py(low)})"
            if v.high is not None:
                text = f"nest.math.min({text}, {py(high)})"
        else:
            text = f"nest.math.redraw({text}, min={py(low)}, max={py(high)})"
    if v.scale != 1.0:
        text = f"{py(v.scale)} * {text}"
    if minimum is not None and not _rounds_to_at_least(v, minimum):
        text = f"nest.math.max({text}, {py(minimum)})"
    return text


def _rounds_to_at_least(v: RandomValue, step: float) -> bool:
    """True when every draw is >= step/2, so that NEST's rounding to the grid already gives >= step."""
    if v.scale != 1.0:
        return False
    if v.distribution == "uniform":
        return v.a >= step / 2
    return v.bounds in ("redraw", "clip") and v.low is not None and v.low >= step / 2
