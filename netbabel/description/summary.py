"""What `netbabel info` prints: sizes, expected synapse counts, memory estimate."""

from __future__ import annotations

from typing import Any

from netbabel.description.model import Description

BYTES_PER_EDGE = 8 + 8 + 8 + 8 + 2 + 2 + 8  # source, target (uint64), weight, delay (float64), type/group ids, group index
BYTES_PER_NEURON_NEST = 1500  # rough NEST memory per point neuron


def expected_synapses(description: Description, index: int) -> float:
    """Expected number of synapses of projection `index` (exact for every rule except pairwise_bernoulli with d)."""
    proj = description.projections[index]
    rule = proj.rule
    ns, nt = description.size(proj.source), description.size(proj.target)
    kind = rule.type
    if kind == "fixed_indegree":
        return description.value(rule.indegree) * nt
    if kind == "fixed_outdegree":
        return description.value(rule.outdegree) * ns
    if kind == "fixed_total_number":
        return description.value(rule.n)
    if kind == "one_to_one":
        return float(nt)
    pairs = ns * nt - (min(ns, nt) if proj.source == proj.target and not proj.autapses else 0)
    if kind == "all_to_all":
        return float(pairs)
    if kind == "pairwise_bernoulli":
        if isinstance(rule.p, str) and "d" in _names(rule.p):
            return float("nan")
        return description.value(rule.p) * pairs
    if kind == "explicit":
        return float(_explicit_count(description, proj))
    raise ValueError(kind)


def _names(expr: str) -> list[str]:
    from netbabel.description.expressions import parse

    return parse(expr).names


def _explicit_count(description: Description, proj: Any) -> int:
    import h5py

    with h5py.File(description.resolve_path(proj.rule.file), "r") as f:
        pops = list(f["edges"])
        name = proj.rule.population or pops[0]
        return int(f["edges"][name]["source_node_id"].shape[0])


def summarize(description: Description) -> dict[str, Any]:
    """The documented `info --json` object."""
    populations = {name: {"size": description.size(name), "cell_type": pop.cell_type,
                          "model": description.cell_types[pop.cell_type].model,
                          "annotations": pop.annotations}
                   for name, pop in description.populations.items()}
    projections = []
    for i, proj in enumerate(description.projections):
        projections.append({"name": description.projection_name(i), "source": proj.source, "target": proj.target,
                            "rule": proj.rule.type, "expected_synapses": expected_synapses(description, i)})
    n_neurons = sum(p["size"] for p in populations.values())
    n_syn = sum(p["expected_synapses"] for p in projections if p["expected_synapses"] == p["expected_synapses"])
    inputs = [{"name": description.input_name(i), "type": inp.type, "target": inp.target}
              for i, inp in enumerate(description.inputs)]
    return {
        "name": description.name,
        "populations": populations,
        "projections": projections,
        "inputs": inputs,
        "totals": {"neurons": n_neurons, "synapses": n_syn, "populations": len(populations),
                   "projections": len(projections),
                   "explicit_edges_bytes": int(n_syn * BYTES_PER_EDGE),
                   "nest_memory_bytes_estimate": int(n_neurons * BYTES_PER_NEURON_NEST + n_syn * 48)},
    }


def _human(n: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"model {summary['name']}", "", f"{'population':<24}{'cell type':<20}{'model':<20}{'size':>12}"]
    for name, p in summary["populations"].items():
        lines.append(f"{name:<24}{p['cell_type']:<20}{p['model']:<20}{p['size']:>12,}")
    lines += ["", f"{'projection':<32}{'rule':<22}{'expected synapses':>20}"]
    for p in summary["projections"]:
        lines.append(f"{p['name']:<32}{p['rule']:<22}{p['expected_synapses']:>20,.1f}")
    t = summary["totals"]
    lines += ["", f"totals: {t['populations']} populations, {t['neurons']:,} neurons, "
                  f"{t['projections']} projections, {t['synapses']:,.1f} synapses",
              f"explicit instantiation needs about {_human(t['explicit_edges_bytes'])}B on disk; "
              f"NEST needs about {_human(t['nest_memory_bytes_estimate'])}B of memory"]
    return "\n".join(lines)
