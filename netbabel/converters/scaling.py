"""Rate-preserving down-scaling of a network (van Albada, Helias & Diesmann 2015).

Neuron numbers are multiplied by `n_scaling`, in-degrees by `k_scaling`, and
every synaptic weight is divided by sqrt(k_scaling), which keeps the variance
of the synaptic input. The mean input lost by the smaller in-degrees,

    I_DC = (1 - sqrt(k_scaling)) * sum_j K_j * q_j * nu_j,

is given back as a constant current, from the full-scale in-degrees K_j, the
charge q_j that one spike of source j deposits and the full-scale rate nu_j.
The charge is the weight times the integral of the unit synaptic kernel:
tau_syn for exponential currents (iaf_psc_exp), e * tau_syn for alpha currents
(iaf_psc_alpha, whose kernel peaks at the weight) and C_m for delta synapses
(iaf_psc_delta, weights in mV). Conductance-based synapses have no fixed
charge per spike, so they are refused.

Two layers use the same arithmetic:
- array functions (`compensating_current`, `scale_weights`) for connectomes
  held as matrices (the multi-area importer, which reproduces the upstream
  `MultiAreaModel.scale_network` exactly);
- `scale_description`, the transform of any Description (Potjans-Diesmann,
  Brunel, ...), which returns a new Description with `dc` inputs named
  `dc_scaling_POP`.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping

import numpy as np

from netbabel.description.catalogue import MODELS
from netbabel.description.model import Description, Distribution, Input, Provenance, Rule
from netbabel.errors import NetbabelError, UnsupportedFeature

#: models whose synaptic kernel integral is known (charge per spike = weight * factor)
CURRENT_KERNELS = ("iaf_psc_exp", "iaf_psc_alpha", "iaf_psc_delta")


# -- the arithmetic -----------------------------------------------------------------

def kernel_integral(model: str, params: Mapping[str, float], excitatory: bool) -> float:
    """Charge (fC) deposited by one spike of weight 1 onto a neuron of `model`.

    iaf_psc_exp: tau_syn (ms); iaf_psc_alpha: e * tau_syn (ms); iaf_psc_delta: C_m (pF,
    as weights are mV jumps). Other models raise UnsupportedFeature.
    """
    if model not in CURRENT_KERNELS:
        raise UnsupportedFeature(f"rate-preserving scaling needs current-based synapses with a known kernel "
                                 f"({', '.join(CURRENT_KERNELS)}); {model!r} is not one of them")
    defaults = {k: p.default for k, p in MODELS[model].params.items()}
    get = lambda key: float(params.get(key, defaults[key]))  # noqa: E731
    if model == "iaf_psc_delta":
        return get("C_m")
    tau = get("tau_syn_ex" if excitatory else "tau_syn_in")
    return tau if model == "iaf_psc_exp" else math.e * tau


def compensating_current(indegree: np.ndarray, weight: np.ndarray, kernel: np.ndarray | float,
                         rate: np.ndarray, k_scaling: float) -> np.ndarray:
    """DC (pA) per target that restores the mean input lost by scaling in-degrees by `k_scaling`.

    `indegree`, `weight` (full scale, signed) and `kernel` (charge per unit weight, fC) are
    target x source arrays, `rate` (Hz) has one entry per source:
    I = (1 - sqrt(k_scaling)) * 1e-3 * sum_j K_ij w_ij q_ij nu_j.
    """
    mean_input = 1e-3 * ((np.asarray(indegree) * np.asarray(weight) * kernel) @ np.asarray(rate, dtype=float))
    return (1.0 - math.sqrt(k_scaling)) * mean_input


def scale_weights(weight: np.ndarray | float, k_scaling: float) -> np.ndarray | float:
    """Weights of the scaled network: w / sqrt(k_scaling)."""
    return weight / math.sqrt(k_scaling)


def check_factors(n_scaling: float, k_scaling: float) -> None:
    for name, value in (("N_scaling", n_scaling), ("K_scaling", k_scaling)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise NetbabelError(f"{name} must be a positive number, got {value!r}")


# -- the transform of a Description --------------------------------------------------

def scale_description(description: Description, n_scaling: float, k_scaling: float,
                      rates: Mapping[str, float] | None = None, *, rounding: str = "round",
                      scale_weight_sd: bool = True) -> Description:
    """A down- (or up-) scaled copy of `description` with the same mean input to every neuron.

    - population sizes x n_scaling (`rounding`: "round", as NEST's microcircuit example, or "floor");
    - fixed_indegree / fixed_outdegree x k_scaling, fixed_total_number x n_scaling * k_scaling
      (rounded), pairwise_bernoulli p x k_scaling / n_scaling, all_to_all becomes pairwise_bernoulli
      when the factors differ; one_to_one and explicit projections are refused when k_scaling != 1;
    - Poisson inputs: rate x k_scaling (the same total rate as k_scaling x the trains);
    - weights (and bounds, and sd unless `scale_weight_sd` is False) / sqrt(k_scaling);
    - a `dc` input `dc_scaling_POP` restoring the lost mean input, computed from the full-scale
      in-degrees and `rates` (Hz per source population; spike-source populations with a `rate`
      parameter need none).
    """
    check_factors(n_scaling, k_scaling)
    if rounding not in ("round", "floor"):
        raise NetbabelError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    out = copy.deepcopy(description)
    full_sizes = {name: description.size(name) for name in description.populations}
    dc = _lost_mean_input(description, full_sizes, rates or {}, k_scaling) if k_scaling != 1 else {}

    integer = (lambda x: int(math.floor(x + 1e-9))) if rounding == "floor" else (lambda x: int(round(x)))
    for name, pop in out.populations.items():
        size = integer(full_sizes[name] * n_scaling)
        if size < 1:
            raise NetbabelError(f"population {name!r} of {full_sizes[name]} cells has no cell left at "
                                f"N_scaling {n_scaling}", pointer=f"/populations/{name}/size")
        pop.size = size
    for i, proj in enumerate(out.projections):
        _scale_rule(out, description, i, n_scaling, k_scaling, integer)
        proj.weight = _scaled_quantity(description, proj.weight, k_scaling, scale_weight_sd)
    for inp in out.inputs:
        if inp.type == "poisson":
            inp.rate = description.value(inp.rate) * k_scaling
            inp.weight = _scaled_quantity(description, inp.weight, k_scaling, scale_weight_sd)
    names = {out.input_name(i) for i in range(len(out.inputs))}
    for target, amplitude in dc.items():
        name = f"dc_scaling_{target}"
        if name in names:
            raise NetbabelError(f"the model already has an input named {name!r}: it was scaled before")
        if amplitude != 0.0:
            out.inputs.append(Input(type="dc", target=target, name=name, amplitude=float(amplitude)))
    out.metadata.provenance.append(Provenance(
        tool="netbabel.converters.scaling", format="rate-preserving scaling (van Albada et al. 2015)",
        options={"N_scaling": n_scaling, "K_scaling": k_scaling, "rounding": rounding,
                 "scale_weight_sd": scale_weight_sd, "rates": dict(rates or {})}))
    return out


def _lost_mean_input(description: Description, sizes: dict[str, int], rates: Mapping[str, float],
                     k_scaling: float) -> dict[str, float]:
    """Per target population: the DC that the scaled network must add (pA)."""
    from netbabel.description.summary import expected_synapses

    total: dict[str, float] = {}
    factor = 1.0 - math.sqrt(k_scaling)
    for i, proj in enumerate(description.projections):
        if proj.rule.type in ("one_to_one", "explicit"):
            raise UnsupportedFeature(f"projection {description.projection_name(i)!r}: a {proj.rule.type} "
                                     "rule cannot be scaled in in-degree", pointer=f"/projections/{i}/rule")
        weight = _mean(description, proj.weight)
        indegree = expected_synapses(description, i) / sizes[proj.target]
        if not math.isfinite(indegree):
            raise UnsupportedFeature("distance-dependent connection probabilities cannot be scaled",
                                     pointer=f"/projections/{i}/rule/p")
        rate = _source_rate(description, proj.source, rates, i)
        q = _charge(description, proj.target, proj.synapse_type, weight)
        total[proj.target] = total.get(proj.target, 0.0) + 1e-3 * indegree * weight * q * rate
    for inp in description.inputs:
        if inp.type != "poisson":
            continue
        weight = _mean(description, inp.weight)
        q = _charge(description, inp.target, inp.synapse_type, weight)
        indegree = description.value(inp.indegree) if inp.indegree is not None else 1.0
        total[inp.target] = total.get(inp.target, 0.0) + 1e-3 * indegree * description.value(inp.rate) * weight * q
    return {target: factor * value for target, value in total.items()}


def _source_rate(description: Description, source: str, rates: Mapping[str, float], index: int) -> float:
    if source in rates:
        return float(rates[source])
    cell = description.cell_types[description.populations[source].cell_type]
    if cell.model == "poisson_generator" and "rate" in cell.params:
        return description.value(cell.params["rate"])
    raise NetbabelError(f"scaling in-degrees needs the full-scale rate of population {source!r} "
                        f"(source of {description.projection_name(index)!r}): give it in the rates")


def _charge(description: Description, target: str, synapse_type: str | None, weight: float) -> float:
    cell = description.cell_types[description.populations[target].cell_type]
    params = {k: description.value(v) for k, v in cell.params.items() if isinstance(v, (int, float, str))
              and k in MODELS.get(cell.model, MODELS["iaf_psc_exp"]).params}
    receptor = description.synapse_types[synapse_type].receptor if synapse_type in description.synapse_types else None
    excitatory = receptor == "excitatory" if receptor in ("excitatory", "inhibitory") else weight >= 0
    return kernel_integral(cell.model, params, excitatory)


def _mean(description: Description, quantity) -> float:
    """Nominal mean of a weight (a number, an expression or a distribution)."""
    if isinstance(quantity, Distribution):
        d = quantity
        if d.distribution == "normal":
            return description.value(d.mean)
        if d.distribution == "uniform":
            return 0.5 * (description.value(d.low) + description.value(d.high))
        if d.distribution == "lognormal":
            return math.exp(description.value(d.mu) + 0.5 * description.value(d.sigma) ** 2)
        raise NetbabelError(f"unknown distribution {d.distribution!r}")
    if quantity is None:
        raise NetbabelError("a Poisson input without a weight cannot be scaled")
    return description.value(quantity)


def _scaled_quantity(description: Description, quantity, k_scaling: float, scale_sd: bool):
    """A weight divided by sqrt(k_scaling): numbers, distributions (mean, bounds, sd), expressions."""
    root = math.sqrt(k_scaling)
    if quantity is None or k_scaling == 1:
        return quantity
    if not isinstance(quantity, Distribution):
        return description.value(quantity) / root
    d = copy.copy(quantity)
    value = lambda v: None if v is None else description.value(v) / root  # noqa: E731
    if d.distribution == "lognormal":
        d.mu = description.value(d.mu) - math.log(root)
    else:
        d.mean = value(d.mean)
    d.low, d.high = value(d.low), value(d.high)
    if scale_sd and d.sd is not None:
        d.sd = value(d.sd)
    elif d.sd is not None:
        d.sd = description.value(d.sd)
    return d


def _scale_rule(out: Description, full: Description, index: int, n_scaling: float, k_scaling: float,
                integer) -> None:
    proj = out.projections[index]
    rule: Rule = proj.rule
    where = f"/projections/{index}/rule"
    kind = rule.type
    if kind == "fixed_indegree":
        rule.indegree = integer(full.value(rule.indegree) * k_scaling)
    elif kind == "fixed_outdegree":
        rule.outdegree = integer(full.value(rule.outdegree) * k_scaling)
    elif kind == "fixed_total_number":
        rule.n = integer(full.value(rule.n) * n_scaling * k_scaling)
    elif kind in ("pairwise_bernoulli", "all_to_all"):
        factor = k_scaling / n_scaling
        if kind == "all_to_all" and factor == 1:
            return
        p = 1.0 if kind == "all_to_all" else rule.p
        if isinstance(p, str) and "d" in _names(p):
            rule.p = f"({p}) * {factor!r}"
        else:
            rule.p = full.value(p) * factor
            if rule.p > 1.0:
                raise UnsupportedFeature(f"the scaled connection probability {rule.p:.3g} exceeds 1 "
                                         f"(K_scaling / N_scaling = {factor:.3g})", pointer=where)
        rule.type = "pairwise_bernoulli"
    elif kind == "one_to_one" and k_scaling == 1:
        return
    elif k_scaling != 1 or n_scaling != 1:
        raise UnsupportedFeature(f"a {kind} rule cannot be scaled", pointer=where)


def _names(expr: str) -> list[str]:
    from netbabel.description.expressions import parse

    return parse(expr).names
