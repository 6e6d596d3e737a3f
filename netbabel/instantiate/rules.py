"""Connection rules -> explicit edges, one fixed block of targets at a time.

Semantics follow NEST's connection rules:

- ``fixed_indegree`` K: every target draws K sources uniformly (with replacement
  when multapses are allowed, distinct otherwise), never itself when autapses
  are off and source and target are the same population.
- ``fixed_outdegree`` K: every source draws K targets in the same way.
- ``fixed_total_number`` N: N (source, target) pairs uniformly over all allowed
  pairs (with replacement when multapses are allowed).
- ``pairwise_bernoulli`` p: each allowed pair independently with probability p;
  p may be an expression of the distance ``d`` (um) between the cells'
  positions.
- ``all_to_all``, ``one_to_one``; ``explicit`` (edges copied from a SONATA file).

Blocks: the targets of a projection are cut into blocks of `block_targets`
consecutive cells, a power of two chosen from the description alone (about
EDGES_PER_BLOCK expected edges per block, see `plan_projection`). Block b uses
its own random streams (see values.py), so blocks can be computed in any order,
in any grouping, in any process, with identical results. Rules that are not
naturally per target (fixed_total_number, fixed_outdegree) first split their
counts over blocks with a binary tree of binomial (hypergeometric without
multapses) draws whose nodes have their own streams: a block finds its share
in O(log blocks) draws, without computing the other blocks.

Edges of a block are sorted by target (the order of sources within one target
is the order of the draws for fixed_indegree with multapses, ascending otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np

from netbabel.description.model import Description
from netbabel.errors import NetbabelError
from netbabel.instantiate import kernels
from netbabel.instantiate.values import (
    CONNECT, DELAY, SPLIT, WEIGHT, StepSampler, ValueSampler, evaluator, generator, round_delays,
)
from netbabel.instantiate.writer import id_dtype

EDGES_PER_BLOCK = 1 << 20
MAX_BLOCK_TARGETS = 1 << 14
PAIRS_PER_SUBBLOCK = 1 << 22  # distance-dependent probabilities: pairs evaluated at once
HYPERGEOMETRIC_LIMIT = 10**9 - 1  # numpy's limit on ngood + nbad


@dataclass
class EdgeBlock:
    """The edges of one block of targets (node ids are indices within the populations)."""

    projection: int
    block: int
    target_start: int
    target_stop: int
    sources: np.ndarray  # int64 (uint32 from `block_arrays`)
    targets: np.ndarray  # int64 (uint32 from `block_arrays`), non-decreasing
    weights: np.ndarray  # float64
    delays: np.ndarray  # float64 ms, on the dt grid, >= dt

    def __len__(self) -> int:
        return int(self.sources.size)


@dataclass
class ProjectionPlan:
    """Everything needed to compute any block of one projection."""

    index: int
    name: str
    kind: str
    source: str
    target: str
    ns: int
    nt: int
    same: bool
    autapses: bool
    multapses: bool
    seed: int
    dt: float
    weight: ValueSampler
    delay: ValueSampler
    steps: StepSampler | None = None  # the delay as whole steps of dt
    degree: int = 0  # K of fixed_indegree / fixed_outdegree, N of fixed_total_number
    p: float | str | None = None  # probability or an expression of d
    expected_edges: float = 0.0
    block_targets: int = 1
    n_blocks: int = 0
    description: Description | None = field(default=None, repr=False)
    _positions: tuple | None = field(default=None, repr=False)

    @property
    def exclude_self(self) -> bool:
        return self.same and not self.autapses

    @property
    def exact_edges(self) -> int | None:
        """The number of edges the rule makes, when it is fixed (not for pairwise_bernoulli)."""
        pool = self.ns - 1 if self.exclude_self else self.ns
        return {"fixed_total_number": self.degree, "fixed_indegree": self.degree * self.nt,
                "fixed_outdegree": self.degree * self.ns, "all_to_all": pool * self.nt,
                "one_to_one": 0 if self.exclude_self else self.nt}.get(self.kind)

    def block_range(self, block: int) -> tuple[int, int]:
        t0 = block * self.block_targets
        return t0, min(self.nt, t0 + self.block_targets)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        if self._positions is None:
            from netbabel.instantiate.positions import population_positions

            src = population_positions(self.description, self.source)
            tgt = population_positions(self.description, self.target)
            if src is None or tgt is None:
                missing = self.source if src is None else self.target
                raise NetbabelError(f"the probability depends on the distance d but population {missing!r} has no "
                                    "positions", pointer=f"/projections/{self.index}/rule/p")
            self._positions = (src, tgt)
        return self._positions


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def plan_projection(description: Description, index: int,
                    value: Callable[[object], float] | None = None) -> ProjectionPlan:
    """Evaluate a projection's rule and sizes and fix its blocks (`value`: an `evaluator` to share)."""
    proj = description.projections[index]
    where = f"/projections/{index}"
    rule = proj.rule
    value = value or evaluator(description)
    ns, nt = (int(round(value(description.populations[p].size))) for p in (proj.source, proj.target))
    name = description.projection_name(index)
    plan = ProjectionPlan(
        index=index, name=name, kind=rule.type, source=proj.source,
        target=proj.target, ns=ns, nt=nt, same=proj.source == proj.target, autapses=proj.autapses,
        multapses=proj.multapses, seed=description.simulation.seed, dt=value(description.simulation.dt),
        weight=ValueSampler(description, proj.weight, f"{where}/weight", f"weight of projection {name!r}", value),
        delay=ValueSampler(description, proj.delay, f"{where}/delay", f"delay of projection {name!r}", value),
        description=description,
    )
    plan.steps = StepSampler(plan.delay, plan.dt)
    if "/" in plan.name:
        raise NetbabelError(f"projection name {plan.name!r} contains '/', which HDF5 group names cannot hold",
                            pointer=f"{where}/name")
    pool = ns - 1 if plan.exclude_self else ns
    kind = rule.type
    if kind in ("fixed_indegree", "fixed_outdegree", "fixed_total_number"):
        key = {"fixed_indegree": "indegree", "fixed_outdegree": "outdegree", "fixed_total_number": "n"}[kind]
        raw = getattr(rule, key)
        if raw is None:
            raise NetbabelError(f"{kind} needs {key}", pointer=f"{where}/rule")
        count = value(raw)
        if count < 0 or abs(count - round(count)) > 1e-9:
            raise NetbabelError(f"{key} must be a non-negative integer, got {count}", pointer=f"{where}/rule/{key}")
        plan.degree = int(round(count))
        k = plan.degree
        if kind == "fixed_indegree":
            _check_degree(k, pool, plan.multapses, "indegree", "source", f"{where}/rule/indegree")
            indegree = float(k)
        elif kind == "fixed_outdegree":
            _check_degree(k, nt - 1 if plan.exclude_self else nt, plan.multapses, "outdegree", "target",
                          f"{where}/rule/outdegree")
            indegree = ns * k / nt
        else:
            pairs = nt * pool
            if k > 0 and pairs == 0:
                raise NetbabelError(f"n {k}: no allowed pairs", pointer=f"{where}/rule/n")
            if not plan.multapses and k > pairs:
                raise NetbabelError(f"n {k} exceeds the {pairs} possible pairs without multapses",
                                    pointer=f"{where}/rule/n")
            indegree = k / nt
        plan.expected_edges = indegree * nt
    elif kind == "pairwise_bernoulli":
        if rule.p is None:
            raise NetbabelError("pairwise_bernoulli needs p", pointer=f"{where}/rule")
        from netbabel.description.expressions import parse

        if isinstance(rule.p, str) and "d" in parse(rule.p).names:
            plan.p = rule.p
            indegree = float(pool)  # pairs to evaluate per target
            plan.expected_edges = _expected_distance_edges(plan, pool)
        else:
            p = value(rule.p)
            if not 0.0 <= p <= 1.0:
                raise NetbabelError(f"probability {p} is outside [0, 1]", pointer=f"{where}/rule/p")
            plan.p = p
            indegree = p * pool
            plan.expected_edges = indegree * nt
    elif kind == "all_to_all":
        indegree = float(pool)
        plan.expected_edges = indegree * nt
    elif kind == "one_to_one":
        if ns != nt:
            raise NetbabelError(f"one_to_one needs equal sizes, got {ns} and {nt}", pointer=f"{where}/rule/type")
        indegree = 0.0 if plan.exclude_self else 1.0
        plan.expected_edges = indegree * nt
    elif kind == "explicit":
        raise NetbabelError("explicit projections are copied, not planned", pointer=f"{where}/rule")
    else:
        raise NetbabelError(f"unknown rule {kind!r}", pointer=f"{where}/rule/type")
    plan.block_targets = min(MAX_BLOCK_TARGETS, _pow2_floor(EDGES_PER_BLOCK / max(indegree, 1.0)))
    plan.n_blocks = -(-nt // plan.block_targets)
    return plan


def _check_degree(k: int, available: int, multapses: bool, key: str, what: str, pointer: str) -> None:
    if k > 0 and available <= 0:
        raise NetbabelError(f"no {what} cells available for {key} {k}", pointer=pointer)
    if not multapses and k > available:
        raise NetbabelError(f"{key} {k} cannot be satisfied without multapses: only {available} {what} cells "
                            "available", pointer=pointer)


def _expected_distance_edges(plan: ProjectionPlan, pool: int) -> float:
    """Expected edge count of a distance-dependent rule, from up to 10^6 sampled pairs (for estimates only)."""
    src, tgt = plan.positions()
    rng = np.random.default_rng(0)
    m = 10**6
    i, j = rng.integers(0, plan.ns, m), rng.integers(0, plan.nt, m)
    p = _probability(plan, np.sqrt(((src[i] - tgt[j]) ** 2).sum(axis=1)))
    return float(np.mean(p)) * pool * plan.nt


def _probability(plan: ProjectionPlan, d: np.ndarray) -> np.ndarray:
    from netbabel.description.expressions import evaluate_value

    p = evaluate_value(plan.p, plan.description.resolved_parameters(), {"d": d})
    p = np.broadcast_to(np.asarray(p, dtype=float), d.shape)
    if p.size and (np.min(p) < 0.0 or np.max(p) > 1.0):
        raise NetbabelError(f"probability {plan.p!r} evaluates outside [0, 1] "
                            f"(range {np.min(p):g} to {np.max(p):g})", pointer=f"/projections/{plan.index}/rule/p")
    return p


# -- helpers ------------------------------------------------------------------

def _uniform_ids(rng: np.random.Generator, pool: int, n: int, dtype) -> np.ndarray:
    """n node ids uniform in [0, pool): `rng.integers`, by the compiled loop for uint32 (the same numbers)."""
    if dtype == np.uint32 and kernels.AVAILABLE:
        return kernels.integers(rng, pool, n)
    return rng.integers(0, pool, n, dtype=dtype)


def _skip_self(values: np.ndarray, excluded: np.ndarray | int) -> np.ndarray:
    """Map draws from [0, n-1) onto [0, n) minus `excluded` (a bijection, order preserving)."""
    values += values >= excluded
    return values


def distinct_draws(rng: np.random.Generator, counts: np.ndarray, pools: np.ndarray) -> np.ndarray:
    """For each group g, counts[g] distinct integers from [0, pools[g]), ascending, concatenated in group order.

    Every result set is uniform over the subsets of that size: draws with replacement whose duplicates are
    redrawn (a procedure symmetric under relabelling), or a random permutation for dense groups.
    """
    counts = np.asarray(counts, np.int64)
    pools = np.broadcast_to(np.asarray(pools, np.int64), counts.shape)
    out = np.empty(int(counts.sum()), np.int64)
    dense = counts * 2 > pools
    member = np.repeat(~dense, counts)
    sparse_counts = np.where(dense, 0, counts)
    if sparse_counts.any():
        group = np.repeat(np.arange(counts.size, dtype=np.int64), sparse_counts)
        pool = np.repeat(pools, sparse_counts)
        width = int(pools.max())
        values = rng.integers(0, pool)
        while True:
            key = group * width + values
            order = np.argsort(key, kind="stable")
            key, values = key[order], values[order]
            dup = np.flatnonzero(key[1:] == key[:-1]) + 1
            if dup.size == 0:
                break
            values[dup] = rng.integers(0, pool[dup])
        out[member] = values
    if dense.any():
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        for g in np.flatnonzero(dense):
            c = int(counts[g])
            out[starts[g]:starts[g] + c] = np.sort(rng.permutation(int(pools[g]))[:c])
    return out


def split_over_blocks(plan: ProjectionPlan, total, block: int, available: Callable[[int, int], object]):
    """This block's share of `total` draws (a number, or an array per source) spread over all blocks.

    `available(t_lo, t_hi)` gives the allowed slots among targets [t_lo, t_hi). Walks a binary tree over the
    blocks; each node splits its count between its halves with a binomial (with replacement) or
    hypergeometric (without) draw from its own stream.
    """
    lo, hi = 0, plan.n_blocks
    total = np.asarray(total, np.int64)
    bt = plan.block_targets
    while hi - lo > 1:
        mid = (lo + hi) // 2
        rng = generator(plan.seed, SPLIT, plan.index, lo, hi)
        a_left = np.asarray(available(lo * bt, min(mid * bt, plan.nt)), np.int64)
        a_all = np.asarray(available(lo * bt, min(hi * bt, plan.nt)), np.int64)
        a_left, a_all = np.broadcast_arrays(a_left, a_all)
        if plan.multapses or np.any(a_all > HYPERGEOMETRIC_LIMIT):
            prob = np.where(a_all > 0, a_left / np.maximum(a_all, 1), 0.0)
            left = rng.binomial(total, prob)
        else:
            left = rng.hypergeometric(a_left, a_all - a_left, total)
        if block < mid:
            total, hi = left, mid
        else:
            total, lo = total - left, mid
    return total


# -- rules --------------------------------------------------------------------

def _fixed_indegree(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    nb, k = t1 - t0, plan.degree
    targets = np.repeat(np.arange(t0, t1, dtype=id_dtype(plan.nt)), k)
    pool = plan.ns - 1 if plan.exclude_self else plan.ns
    if plan.multapses:
        sources = _uniform_ids(rng, pool, nb * k, id_dtype(plan.ns))
    else:
        sources = distinct_draws(rng, np.full(nb, k), pool)
    if plan.exclude_self:
        _skip_self(sources, targets)
    return sources, targets


def _fixed_total_number(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    pool = plan.ns - 1 if plan.exclude_self else plan.ns
    n = int(split_over_blocks(plan, plan.degree, t0 // plan.block_targets, lambda a, b: (b - a) * pool))
    nb = t1 - t0
    if plan.multapses:
        counts = rng.multinomial(n, np.full(nb, 1.0 / nb))
        sources = _uniform_ids(rng, pool, n, id_dtype(plan.ns))
    else:
        counts = rng.multivariate_hypergeometric(np.full(nb, pool, np.int64), n)
        sources = distinct_draws(rng, counts, pool)
    targets = np.repeat(np.arange(t0, t1, dtype=id_dtype(plan.nt)), counts)
    if plan.exclude_self:
        _skip_self(sources, targets)
    return sources, targets


def _fixed_outdegree(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    s_all = np.arange(plan.ns, dtype=np.int64)

    def available(a: int, b: int):
        if plan.exclude_self:
            return (b - a) - ((s_all >= a) & (s_all < b))
        return np.full(plan.ns, b - a, np.int64)

    counts = split_over_blocks(plan, np.full(plan.ns, plan.degree, np.int64), t0 // plan.block_targets, available)
    pools = available(t0, t1)
    sources = np.repeat(s_all, counts)
    if plan.multapses:
        local = rng.integers(0, np.repeat(pools, counts))
    else:
        local = distinct_draws(rng, counts, pools)
    if plan.exclude_self:
        inside = (sources >= t0) & (sources < t1)
        local += inside & (local >= sources - t0)
    order = np.argsort(local.astype(np.uint16) if t1 - t0 <= 1 << 16 else local, kind="stable")
    return sources[order], local[order] + t0


def _bernoulli_positions(rng: np.random.Generator, p: float, total: int) -> np.ndarray:
    """Indices in [0, total) each kept with probability p, by geometric skips."""
    if p <= 0.0 or total == 0:
        return np.empty(0, np.int64)
    if p >= 1.0:
        return np.arange(total, dtype=np.int64)
    parts, last = [], -1
    while True:
        m = (total - last - 1) * p
        gaps = rng.geometric(p, int(m + 6.0 * math.sqrt(m) + 16))
        pos = last + np.cumsum(gaps)
        if pos[-1] >= total:
            parts.append(pos[pos < total])
            break
        parts.append(pos)
        last = int(pos[-1])
    return np.concatenate(parts)


def _pairwise_bernoulli(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    pool = plan.ns - 1 if plan.exclude_self else plan.ns
    if not isinstance(plan.p, str):
        pos = _bernoulli_positions(rng, plan.p, (t1 - t0) * pool) if pool > 0 else np.empty(0, np.int64)
        targets, sources = np.divmod(pos, max(pool, 1))
        targets += t0
        if plan.exclude_self:
            _skip_self(sources, targets)
        return sources, targets
    src_pos, tgt_pos = plan.positions()
    step = max(1, PAIRS_PER_SUBBLOCK // max(plan.ns, 1))
    s_parts, t_parts = [], []
    for a in range(t0, t1, step):
        b = min(t1, a + step)
        d2 = np.zeros((b - a, plan.ns))
        for axis in range(3):
            d2 += (tgt_pos[a:b, axis, None] - src_pos[None, :, axis]) ** 2
        p = _probability(plan, np.sqrt(d2, out=d2))
        keep = rng.random((b - a, plan.ns)) < p
        if plan.exclude_self:
            rows = np.arange(b - a)
            keep[rows, rows + a] = False
        t, s = np.nonzero(keep)
        t_parts.append(t.astype(np.int64) + a)
        s_parts.append(s.astype(np.int64))
    return np.concatenate(s_parts), np.concatenate(t_parts)


def _all_to_all(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    pool = plan.ns - 1 if plan.exclude_self else plan.ns
    targets = np.repeat(np.arange(t0, t1, dtype=np.int64), pool)
    sources = np.tile(np.arange(pool, dtype=np.int64), t1 - t0)
    if plan.exclude_self:
        _skip_self(sources, targets)
    return sources, targets


def _one_to_one(plan: ProjectionPlan, rng: np.random.Generator, t0: int, t1: int):
    if plan.exclude_self:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ids = np.arange(t0, t1, dtype=np.int64)
    return ids.copy(), ids


RULES = {
    "fixed_indegree": _fixed_indegree,
    "fixed_total_number": _fixed_total_number,
    "fixed_outdegree": _fixed_outdegree,
    "pairwise_bernoulli": _pairwise_bernoulli,
    "all_to_all": _all_to_all,
    "one_to_one": _one_to_one,
}


def block_arrays(plan: ProjectionPlan, block: int) -> EdgeBlock:
    """One block in compact form: node ids uint32 (`id_dtype`), weights and delays float64 (ms, on the
    dt grid). Connectivity, weights and delays come from their own streams (CONNECT, WEIGHT, DELAY, block).
    """
    t0, t1 = plan.block_range(block)
    rng = generator(plan.seed, CONNECT, plan.index, block)
    sources, targets = RULES[plan.kind](plan, rng, t0, t1)
    sources = sources.astype(id_dtype(plan.ns), copy=False)
    targets = targets.astype(id_dtype(plan.nt), copy=False)
    n = sources.size
    w_rng = None if plan.weight.constant is not None else generator(plan.seed, WEIGHT, plan.index, block)
    d_rng = None if plan.steps.constant is not None else generator(plan.seed, DELAY, plan.index, block)
    weights = plan.weight.draw(w_rng, n)
    delays = plan.steps.draw_ms(d_rng, n)
    return EdgeBlock(plan.index, block, t0, t1, sources, targets, weights, delays)


def edge_block(plan: ProjectionPlan, block: int) -> EdgeBlock:
    """The edges of one block (int64 node ids, float64 ms delays): the values written to edges.h5."""
    e = block_arrays(plan, block)
    e.sources, e.targets = e.sources.astype(np.int64), e.targets.astype(np.int64)
    return e


def iter_edges(description: Description, projection_index: int,
               blocks: range | list[int] | None = None) -> Iterator[EdgeBlock]:
    """Stream a projection's edges block by block (all blocks, or the given ones), sorted by target.

    The result is the same as what `instantiate_to_directory` writes to edges.h5. For an `explicit`
    rule (e.g. the description `instantiate_to_directory` returns) the edges are read from its file in
    chunks of 2^20 edges (`blocks` then counts those chunks), with the file's syn_weight and delay.
    """
    if description.projections[projection_index].rule.type == "explicit":

        wanted = None if blocks is None else set(blocks)
        for k, (s, t, w, d) in enumerate(explicit_edges(description, projection_index)):
            if wanted is None or k in wanted:
                yield EdgeBlock(projection_index, k, int(t.min()) if t.size else 0,
                                int(t.max()) + 1 if t.size else 0, s, t, w, d)
        return
    plan = plan_projection(description, projection_index)
    for block in (range(plan.n_blocks) if blocks is None else blocks):
        yield edge_block(plan, block)


# -- explicit projections (edges read from a SONATA file) --------------------------------

EXPLICIT_CHUNK = 1 << 20


def explicit_population(description: Description, index: int) -> tuple[Path, str]:
    rule = description.projections[index].rule
    path = description.resolve_path(rule.file)
    name = rule.population or description.projection_name(index)
    return path, name


def explicit_size(description: Description, index: int) -> int:
    path, name = explicit_population(description, index)
    try:
        with h5py.File(path, "r") as f:
            return int(f[f"edges/{name}/source_node_id"].shape[0])
    except (OSError, KeyError) as exc:
        raise NetbabelError(f"cannot read edge population {name!r}: {exc}", str(path),
                            f"/projections/{index}/rule") from None


def explicit_edges(description: Description, index: int) -> Iterator[tuple]:
    """Edges of an explicit projection from its file; missing weights/delays drawn from the projection."""
    path, name = explicit_population(description, index)
    proj = description.projections[index]
    ns, nt = description.size(proj.source), description.size(proj.target)
    where = f"/projections/{index}"
    dt = description.value(description.simulation.dt)
    seed = description.simulation.seed
    weight = ValueSampler(description, proj.weight, f"{where}/weight", "weight")
    delay = ValueSampler(description, proj.delay, f"{where}/delay", "delay")
    with h5py.File(path, "r") as f:
        g = f[f"edges/{name}"]
        n = g["source_node_id"].shape[0]
        attrs = g.get("0", {})
        for k, e0 in enumerate(range(0, n, EXPLICIT_CHUNK)):
            e1 = min(n, e0 + EXPLICIT_CHUNK)
            s = g["source_node_id"][e0:e1].astype(np.int64)
            t = g["target_node_id"][e0:e1].astype(np.int64)
            if s.size and (s.min() < 0 or s.max() >= ns or t.min() < 0 or t.max() >= nt):
                raise NetbabelError(f"edge population {name!r} has node ids outside the populations "
                                    f"({ns} sources, {nt} targets)", str(path), f"{where}/rule")
            if "syn_weight" in attrs:
                w = attrs["syn_weight"][e0:e1].astype(np.float64)
            else:
                w = weight.draw(None if weight.constant is not None else generator(seed, WEIGHT, index, k), s.size)
            if "delay" in attrs:
                d = round_delays(attrs["delay"][e0:e1].astype(np.float64), dt)
            else:
                d = round_delays(delay.draw(None if delay.constant is not None else generator(seed, DELAY, index, k),
                                            s.size), dt)
            yield s, t, w, d


# -- estimates ----------------------------------------------------------------------
