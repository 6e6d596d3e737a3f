"""The feature model: one small network where every catalogue feature has populations of its own.

Each feature (a cell model, a connection rule, an input type) owns one or two
populations that receive input from nothing but that feature (and a Poisson or
DC drive of its own), so a divergence in one feature cannot spread to the
populations of another, and the per-population verdicts of one simulation give
one verdict per feature. When a backend refuses a feature, the error's JSON
pointer names it: the feature is marked refused, removed, and the rest is run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from netbabel.description import Description
from netbabel.spikereport import write_report

N = 20  # cells per population
DURATION = 400.0

# model -> (params, poisson rate Hz, poisson weight in the model's weight unit, recurrent weight)
CELL_MODELS: dict[str, tuple[dict, float, float, float]] = {
    "iaf_psc_delta": ({}, 1700.0, 1.0, 0.5),
    "iaf_psc_exp": ({}, 8000.0, 30.0, 20.0),
    "iaf_psc_alpha": ({}, 8000.0, 11.0, 8.0),
    "iaf_cond_exp": ({}, 8000.0, 2.8, 1.0),
    "iaf_cond_alpha": ({}, 8000.0, 1.1, 0.5),
    "aeif_cond_exp": ({}, 8000.0, 9.0, 1.0),
    "izhikevich": ({}, 1000.0, 6.0, 2.0),
    "hh_cond_exp_traub": ({}, 1000.0, 1.5, 1.0),
}
RULES: dict[str, dict] = {
    "all_to_all": {"type": "all_to_all"},
    "one_to_one": {"type": "one_to_one"},
    "pairwise_bernoulli": {"type": "pairwise_bernoulli", "p": 0.3},
    "fixed_indegree": {"type": "fixed_indegree", "indegree": 5},
    "fixed_outdegree": {"type": "fixed_outdegree", "outdegree": 5},
    "fixed_total_number": {"type": "fixed_total_number", "n": 100},
}
RULE_WEIGHT = {"all_to_all": 30.0, "one_to_one": 600.0}  # pA; others 100 pA
INPUTS = ("poisson", "dc", "step_current", "spike_train")
# connection features beyond rules: name -> (rule, weight, delay)
CONNECTIONS: dict[str, tuple[dict, object, object]] = {
    "weights normal (redraw), delays uniform": (
        {"type": "fixed_indegree", "indegree": 5},
        {"distribution": "normal", "mean": 100.0, "sd": 25.0, "low": 0.0, "high": 200.0, "bounds": "redraw"},
        {"distribution": "uniform", "low": 1.0, "high": 3.0}),
    "weights lognormal (clip)": (
        {"type": "fixed_indegree", "indegree": 5},
        {"distribution": "lognormal", "mu": 4.5, "sigma": 0.3, "high": 200.0, "bounds": "clip"}, 1.2),
    "no autapses, no multapses": ({"type": "fixed_indegree", "indegree": 5}, 100.0, 1.2),
}
LIF = {"model": "iaf_psc_exp", "params": {}}


def feature_rows() -> list[tuple[str, str]]:
    """(group, feature) rows of the support matrix this model covers."""
    return ([("cell model", m) for m in CELL_MODELS] + [("connection rule", r) for r in RULES]
            + [("connection rule", c) for c in CONNECTIONS] + [("input", i) for i in INPUTS])


def build(directory: Path, seed: int = 4242, n: int = N, duration: float = DURATION) -> dict:
    """The feature model as plain data; writes the spike-train input file into `directory`."""
    cells, pops, projs, inputs, owner = {}, {}, [], [], {}
    syn = {"exc": {"model": "static", "receptor": "excitatory"}}
    for model, (params, rate, weight, recurrent) in CELL_MODELS.items():
        name = f"cell_{model}"
        cells[model] = {"model": model, "params": dict(params)}
        pops[name] = {"cell_type": model, "size": n}
        owner[name] = ("cell model", model)
        inputs.append({"name": f"drive_{model}", "type": "poisson", "target": name, "rate": rate, "indegree": 1,
                       "weight": weight, "delay": 1.0, "synapse_type": "exc"})
        projs.append({"name": f"rec_{model}", "source": name, "target": name, "synapse_type": "exc",
                      "rule": {"type": "fixed_indegree", "indegree": 3}, "weight": recurrent, "delay": 1.5})
    cells["lif"] = LIF
    pops["rule_source"] = {"cell_type": "lif", "size": n}
    owner["rule_source"] = ("connection rule", "*")
    inputs.append({"name": "drive_rule_source", "type": "poisson", "target": "rule_source", "rate": 8000.0,
                   "indegree": 1, "weight": 30.0, "delay": 1.0, "synapse_type": "exc"})
    for rule, spec in RULES.items():
        name = f"rule_{rule}"
        pops[name] = {"cell_type": "lif", "size": n}
        owner[name] = ("connection rule", rule)
        inputs.append(_background(f"bias_{rule}", name))
        projs.append({"name": f"proj_{rule}", "source": "rule_source", "target": name, "synapse_type": "exc",
                      "rule": dict(spec), "weight": RULE_WEIGHT.get(rule, 100.0), "delay": 1.2})
    for k, (feature, (spec, weight, delay)) in enumerate(CONNECTIONS.items()):
        name = f"conn_{k}"
        pops[name] = {"cell_type": "lif", "size": n}
        owner[name] = ("connection rule", feature)
        inputs.append(_background(f"bias_conn_{k}", name))
        proj = {"name": f"proj_conn_{k}", "source": "rule_source", "target": name, "synapse_type": "exc",
                "rule": dict(spec), "weight": weight, "delay": delay}
        if feature.startswith("no autapses"):
            proj.update(source=name, autapses=False, multapses=False, rule={"type": "fixed_indegree", "indegree": min(15, n - 1)})
            inputs[-1]["weight"] = 28.0
        projs.append(proj)
    for kind in INPUTS:
        name = f"input_{kind}"
        pops[name] = {"cell_type": "lif", "size": n}
        owner[name] = ("input", kind)
        inputs.append(_input(kind, name, directory, n, duration))
    data = {
        "netbabel": "1", "name": "features",
        "metadata": {"title": "netbabel feature model (round-trip suite)"},
        "cell_types": cells, "synapse_types": syn, "populations": pops, "projections": projs, "inputs": inputs,
        "simulation": {"duration": duration, "dt": 0.1, "seed": seed, "record": {"spikes": "all"}},
    }
    return {"data": data, "owner": owner}


def _background(name: str, target: str) -> dict:
    """Subthreshold Poisson drive (mean about 13 mV): frozen into identical spike trains everywhere."""
    return {"name": name, "type": "poisson", "target": target, "rate": 8000.0, "indegree": 1, "weight": 21.0,
            "delay": 1.0, "synapse_type": "exc"}


def _input(kind: str, target: str, directory: Path, n: int, duration: float) -> dict:
    if kind == "poisson":
        return {"name": "in_poisson", "type": "poisson", "target": target, "rate": 8000.0, "indegree": 1,
                "weight": 30.0, "delay": 1.0, "synapse_type": "exc"}
    if kind == "dc":
        return {"name": "in_dc", "type": "dc", "target": target, "amplitude": 420.0, "start": 0.125 * duration,
                "stop": 0.75 * duration}
    if kind == "step_current":
        return {"name": "in_step", "type": "step_current", "target": target, "amplitudes": [400.0, 600.0, 0.0],
                "times": [0.05 * duration, 0.375 * duration, 0.75 * duration]}
    rng = np.random.default_rng(7)
    ids = np.repeat(np.arange(n), int(duration / 10))
    times = np.round(rng.uniform(1.0, duration - 5.0, len(ids)) / 0.1) * 0.1
    write_report(directory / "train.h5", {"train": (ids, times)})
    return {"name": "in_train", "type": "spike_train", "target": target, "file": "train.h5", "population": "train",
            "weight": 2000.0, "delay": 1.0, "synapse_type": "exc"}


def load(directory: Path, seed: int = 4242, n: int = N, duration: float = DURATION
         ) -> tuple[Description, dict[str, tuple[str, str]]]:
    built = build(directory, seed, n, duration)
    return Description.from_dict(built["data"], base_dir=directory), built["owner"]


GENERATORS = {"step_current": ("step_current_generator", "step_current"), "dc": ("dc_generator",)}
POINTER_RE = re.compile(r"/(cell_types|projections|inputs|populations)/([^/]+)")


def refused_owner(description: Description, owner: dict[str, tuple[str, str]], pointer: str | None,
                  message: str) -> set[str]:
    """Populations a refusal is about: from the error's JSON pointer, or a population/model named in it."""
    hit: set[str] = set()
    m = POINTER_RE.search(pointer or "")
    if m:
        kind, key = m.groups()
        if kind == "cell_types":
            hit = {p for p, pop in description.populations.items() if pop.cell_type == key}
        elif kind == "populations":
            hit = {key} if key in description.populations else set()
        else:
            items = description.projections if kind == "projections" else description.inputs
            item = _find(items, key)
            if item is not None:
                hit = {item.target}
    if not hit:
        for kind, names in GENERATORS.items():
            if any(re.search(rf"\b{name}\b", message) for name in names):
                hit |= {x.target for x in description.inputs if x.type == kind}
    if not hit:
        for pop in description.populations:
            if re.search(rf"\b{re.escape(pop)}\b", message):
                hit.add(pop)
        for model in CELL_MODELS:
            if re.search(rf"\b{model}\b", message):
                hit |= {p for p, pop in description.populations.items()
                        if description.cell_types[pop.cell_type].model == model}
    return hit


def _find(items: list, key: str):
    if key.isdigit() and int(key) < len(items):
        return items[int(key)]
    for item in items:
        if item.name == key:
            return item
    return None


def without(description: Description, populations: set[str]) -> Description:
    """A copy without the populations (and everything touching them)."""
    d = copy.deepcopy(description)
    for p in populations:
        d.populations.pop(p, None)
    d.projections = [x for x in d.projections if x.source in d.populations and x.target in d.populations]
    d.inputs = [x for x in d.inputs if x.target in d.populations]
    used = {pop.cell_type for pop in d.populations.values()}
    d.cell_types = {k: v for k, v in d.cell_types.items() if k in used}
    return d
