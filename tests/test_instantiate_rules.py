"""Connection rules, value distributions, delays and Poisson trains of netbabel.instantiate (statistics)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from netbabel.description.model import (
    CellType, Description, Distribution, Input, Population, Positions, Projection, Rule, Simulation,
)
from netbabel.errors import NetbabelError
from netbabel.instantiate import initial_potentials, iter_edges, iter_spikes, plan_projection
from netbabel.instantiate.rules import distinct_draws


def model(ns: int, nt: int | None, rule: Rule, same: bool = False, autapses: bool = True, multapses: bool = True,
          weight=1.0, delay=1.0, seed: int = 7, positions: tuple | None = None) -> Description:
    pops = {"S": Population("c", ns)}
    if not same:
        pops["T"] = Population("c", nt)
    if positions:
        for name, pos in zip(pops, positions):
            pops[name].positions = pos
    proj = Projection("S", "S" if same else "T", rule, weight, delay, autapses=autapses, multapses=multapses, name="p")
    return Description("t", cell_types={"c": CellType("iaf_psc_exp")}, populations=pops, projections=[proj],
                       simulation=Simulation(duration=100.0, dt=0.1, seed=seed))


def edges(d: Description, index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    blocks = list(iter_edges(d, index))
    return tuple(np.concatenate([getattr(b, k) for b in blocks]) for k in ("sources", "targets", "weights", "delays"))


@pytest.mark.parametrize("multapses", [True, False])
def test_fixed_indegree_exactly_k_per_target_without_autapses(multapses):
    n, k = 600, 40
    s, t, _, _ = edges(model(n, None, Rule("fixed_indegree", indegree=k), same=True, autapses=False,
                             multapses=multapses))
    assert np.all(np.bincount(t, minlength=n) == k)
    assert not np.any(s == t)
    assert np.all(np.diff(t) >= 0), "edges are sorted by target"
    if not multapses:
        assert np.unique(t * n + s).size == s.size
    else:
        assert np.unique(t * n + s).size < s.size, "with multapses some pairs repeat (K^2/2N per target)"


def test_fixed_indegree_sources_uniform_chi_square():
    ns, nt, k = 150, 3000, 50
    s, t, _, _ = edges(model(ns, nt, Rule("fixed_indegree", indegree=k)))
    counts = np.bincount(s, minlength=ns)
    assert counts.sum() == nt * k
    assert stats.chisquare(counts).pvalue > 1e-4
    # the excluded self is spread uniformly too: each source is chosen by the others equally often
    s2, t2, _, _ = edges(model(ns, None, Rule("fixed_indegree", indegree=20), same=True, autapses=False))
    assert stats.chisquare(np.bincount(s2, minlength=ns)).pvalue > 1e-4


def test_fixed_indegree_dense_without_multapses_takes_distinct_sources():
    s, t, _, _ = edges(model(30, 200, Rule("fixed_indegree", indegree=25), multapses=False))
    for target in range(200):
        assert np.unique(s[t == target]).size == 25
    assert stats.chisquare(np.bincount(s, minlength=30)).pvalue > 1e-4


def test_distinct_draws_is_uniform_over_subsets():
    rng = np.random.default_rng(1)
    out = distinct_draws(rng, np.full(20000, 2), 4)  # dense: 6 possible pairs
    pairs = out.reshape(-1, 2)
    assert np.all(pairs[:, 0] < pairs[:, 1])
    codes = pairs[:, 0] * 4 + pairs[:, 1]
    assert stats.chisquare(np.unique(codes, return_counts=True)[1]).pvalue > 1e-4
    out = distinct_draws(rng, np.full(20000, 3), 10)  # sparse path with redraws
    triples = out.reshape(-1, 3)
    assert np.all(np.diff(triples, axis=1) > 0)
    assert stats.chisquare(np.bincount(out, minlength=10)).pvalue > 1e-4


@pytest.mark.parametrize("multapses", [True, False])
def test_fixed_total_number_exact_count_uniform_pairs(multapses):
    n_edges = 30000 if multapses else 3000
    s, t, _, _ = edges(model(80, None, Rule("fixed_total_number", n=n_edges), same=True, autapses=False,
                             multapses=multapses))
    assert s.size == n_edges
    assert not np.any(s == t)
    assert np.all(np.diff(t) >= 0)
    assert stats.chisquare(np.bincount(s, minlength=80)).pvalue > 1e-4
    assert stats.chisquare(np.bincount(t, minlength=80)).pvalue > 1e-4
    if not multapses:
        assert np.unique(t * 80 + s).size == n_edges


def test_fixed_total_number_split_over_many_blocks():
    d = model(5, 100000, Rule("fixed_total_number", n=4000000))
    plan = plan_projection(d, 0)
    assert plan.n_blocks > 4
    s, t, _, _ = edges(d)
    assert s.size == 4000000
    per_block = np.bincount(t // plan.block_targets)
    expected = 4000000 * np.bincount(np.arange(100000) // plan.block_targets) / 100000
    assert np.all(np.abs(per_block - expected) < 5 * np.sqrt(expected))


@pytest.mark.parametrize("multapses", [True, False])
def test_fixed_outdegree_exact_k_per_source(multapses):
    n, k = 500, 30
    d = model(n, None, Rule("fixed_outdegree", outdegree=k), same=True, autapses=False, multapses=multapses)
    s, t, _, _ = edges(d)
    assert np.all(np.bincount(s, minlength=n) == k)
    assert not np.any(s == t)
    assert np.all(np.diff(t) >= 0)
    assert stats.chisquare(np.bincount(t, minlength=n)).pvalue > 1e-4
    if not multapses:
        assert np.unique(s * n + t).size == s.size


def test_fixed_outdegree_across_blocks():
    d = model(3, 300000, Rule("fixed_outdegree", outdegree=1000000), multapses=True)
    assert plan_projection(d, 0).n_blocks > 2
    s, t, _, _ = edges(d)
    assert np.all(np.bincount(s) == 1000000)
    assert np.all(np.diff(t) >= 0)


def test_pairwise_bernoulli_count_within_four_sigma():
    n, p = 1500, 0.03
    s, t, _, _ = edges(model(n, None, Rule("pairwise_bernoulli", p=p), same=True, autapses=False))
    pairs = n * (n - 1)
    assert abs(s.size - p * pairs) < 4 * np.sqrt(pairs * p * (1 - p))
    assert not np.any(s == t)
    assert np.unique(t * n + s).size == s.size
    assert stats.chisquare(np.bincount(s, minlength=n)).pvalue > 1e-4


def test_pairwise_bernoulli_distance_dependent_grid_positions():
    grid = Positions("grid", shape=[30, 30], spacing=[10.0, 10.0])
    d = model(900, None, Rule("pairwise_bernoulli", p="0.8 * exp(-d / 40)"), same=True, autapses=False,
              positions=(grid,))
    s, t, _, _ = edges(d)
    xy = np.stack(np.unravel_index(np.arange(900), (30, 30)), axis=1) * 10.0
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    prob = 0.8 * np.exp(-dist / 40)
    np.fill_diagonal(prob, 0.0)
    mean, sd = prob.sum(), np.sqrt((prob * (1 - prob)).sum())
    assert abs(s.size - mean) < 4 * sd
    assert not np.any(s == t)
    for r in (10.0, 100.0):  # the fraction of connected pairs at one distance is p(d)
        pairs = np.isclose(dist, r).sum()
        connected = np.isclose(dist[t, s], r).sum()
        q = 0.8 * np.exp(-r / 40)
        assert abs(connected - q * pairs) < 4 * np.sqrt(pairs * q * (1 - q))


def test_random_positions_are_deterministic_and_in_the_box():
    from netbabel.instantiate import population_positions

    box = Positions("random", low=[0.0, 0.0, -50.0], high=[100.0, 200.0, 50.0])
    d = model(500, None, Rule("all_to_all"), same=True, positions=(box,))
    a, b = population_positions(d, "S"), population_positions(d, "S")
    assert np.array_equal(a, b)
    assert a.shape == (500, 3)
    assert np.all(a >= [0, 0, -50]) and np.all(a < [100, 200, 50])


def test_all_to_all_and_one_to_one():
    s, t, _, _ = edges(model(20, None, Rule("all_to_all"), same=True, autapses=False))
    assert s.size == 20 * 19 and not np.any(s == t)
    s, t, _, _ = edges(model(20, 30, Rule("all_to_all")))
    assert s.size == 600
    s, t, _, _ = edges(model(25, 25, Rule("one_to_one")))
    assert np.array_equal(s, np.arange(25)) and np.array_equal(t, np.arange(25))
    s, _, _, _ = edges(model(25, None, Rule("one_to_one"), same=True, autapses=False))
    assert s.size == 0


def test_delays_on_the_grid_and_never_below_dt():
    delay = Distribution("normal", mean=0.3, sd=0.5, low=-10.0, bounds="clip")
    _, _, _, d = edges(model(100, 200, Rule("fixed_indegree", indegree=50), delay=delay))
    steps = d * 10
    assert np.array_equal(steps, np.round(steps))
    assert np.array_equal(d, np.round(steps) / 10), "stored as steps / (1/dt), the nearest double to the grid value"
    assert d.min() == 0.1
    assert np.any(d > 1.0)
    # half-way values round up (NEST's rule)
    from netbabel.instantiate import round_delays

    assert list(round_delays(np.array([0.15, 0.149, 0.04, 1.25]), 0.1)) == [0.2, 0.1, 0.1, 1.3]


def _rounded_probabilities(dist: Distribution, k: np.ndarray) -> np.ndarray:
    """P(step k) of: draw, apply the bounds, round half up to 0.1 ms, at least one step (from scipy's CDFs)."""
    edges = np.concatenate([[-np.inf], (k[1:] - 0.5) / 10, [np.inf]])  # step k holds [(k - 1/2)/10, (k + 1/2)/10)
    if dist.distribution == "normal":
        cdf = stats.norm(dist.mean, dist.sd).cdf
    elif dist.distribution == "lognormal":
        cdf = stats.lognorm(dist.sigma, scale=np.exp(dist.mu)).cdf
    else:
        cdf = stats.uniform(dist.low, dist.high - dist.low).cdf
    lo = -np.inf if dist.low is None else dist.low
    hi = np.inf if dist.high is None else dist.high
    if dist.bounds == "redraw":  # truncated to [low, high]
        below = (cdf(np.clip(edges, lo, hi)) - cdf(lo)) / (cdf(hi) - cdf(lo))
    elif dist.bounds == "clip":  # the mass beyond a bound sits on it: P(X < x)
        below = np.where(edges <= lo, 0.0, np.where(edges > hi, 1.0, cdf(edges)))
    else:
        below = cdf(edges)
    return np.diff(below)


@pytest.mark.parametrize("dist", [
    Distribution("normal", mean=1.5, sd=0.75, low=0.05, bounds="redraw"),
    Distribution("normal", mean=1.0, sd=1.0, low=0.1, high=3.0, bounds="clip"),
    Distribution("lognormal", mu=0.0, sigma=0.5),
    Distribution("uniform", low=0.13, high=2.91),
], ids=["normal-redraw", "normal-clip", "lognormal", "uniform"])
def test_delay_steps_follow_the_rounded_distribution(dist):
    """Delays drawn as whole steps (a table of 2^16 slots + remainders) have the probabilities of drawing the
    value (redraw/clip) and rounding it: exact probabilities, and a chi-square test against rounded draws."""
    from netbabel.description.model import Description as Desc
    from netbabel.instantiate.values import StepSampler, ValueSampler, generator, round_delays

    values = ValueSampler(Desc("t"), dist, "/d", "delay")
    steps = StepSampler(values, 0.1)
    k = np.arange(steps.first, steps.first + steps.table_size)
    exact = _rounded_probabilities(dist, k)
    slots = np.bincount(steps.table[:steps.n_main].astype(int) - steps.first, minlength=k.size)
    table = slots / 2**16 + (1 - steps.n_main / 2**16) * np.diff(np.concatenate([[0.0], steps.rest_cdf]))
    assert np.allclose(table, exact, rtol=1e-9, atol=1e-13)
    n = 400_000
    drawn = steps.draw(generator(3, 3, 0, 0), n).astype(np.int64)
    rounded = np.rint(round_delays(values.draw(generator(4, 3, 0, 0), n), 0.1) * 10).astype(np.int64)
    assert drawn.min() >= 1 and rounded.min() >= 1
    counts = np.array([np.bincount(drawn - k[0], minlength=k.size), np.bincount(rounded - k[0], minlength=k.size)])
    keep = counts.sum(axis=0) > 40
    assert stats.chi2_contingency(counts[:, keep]).pvalue > 1e-4
    assert stats.chisquare(counts[0, keep], exact[keep] / exact[keep].sum() * counts[0, keep].sum()).pvalue > 1e-4


def test_delay_distributions_too_wide_for_a_table_are_drawn_and_rounded():
    from netbabel.description.model import Description as Desc
    from netbabel.instantiate.values import StepSampler, ValueSampler, generator

    steps = StepSampler(ValueSampler(Desc("t"), Distribution("normal", mean=5000.0, sd=1000.0), "/d", "delay"), 0.1)
    assert steps.table is None and steps.dtype == np.uint32
    drawn = steps.draw(generator(1, 3, 0, 0), 10000)
    assert drawn.min() >= 1 and abs(drawn.mean() / 10 - 5000.0) < 30


def test_weight_distributions_and_bounds():
    n = 20000
    rule = Rule("fixed_indegree", indegree=100)
    w = edges(model(50, n // 100, rule, weight=Distribution("normal", mean=1.0, sd=1.0, low=0.0, bounds="redraw")))[2]
    assert w.min() > 0.0 and abs(w.mean() - 1.288) < 0.03  # truncated normal mean: 1 + phi(1)/Phi(1)
    w = edges(model(50, n // 100, rule, weight=Distribution("normal", mean=1.0, sd=1.0, low=0.0, bounds="clip")))[2]
    assert w.min() == 0.0 and abs((w == 0).mean() - 0.1587) < 0.01
    w = edges(model(50, n // 100, rule, weight=Distribution("lognormal", mu=0.0, sigma=0.5)))[2]
    assert abs(np.log(w).mean()) < 0.02 and abs(np.log(w).std() - 0.5) < 0.02
    w = edges(model(50, n // 100, rule, weight=Distribution("uniform", low=-2.0, high=3.0)))[2]
    assert w.min() >= -2.0 and w.max() < 3.0 and abs(w.mean() - 0.5) < 0.05
    w = edges(model(50, n // 100, rule, weight="2 * 3"))[2]
    assert np.all(w == 6.0)


@pytest.mark.parametrize("bounds", [{}, {"low": 0.0, "bounds": "redraw"}, {"low": 0.2, "high": 1.5, "bounds": "clip"}])
def test_compiled_normal_weights_are_numpys_numbers(bounds, monkeypatch):
    """kernels.normal_fill draws the same numbers from the same stream as numpy, also when values are
    redrawn or clipped; the stream continues identically."""
    from netbabel.instantiate import kernels
    from netbabel.instantiate.values import ValueSampler, generator

    d = model(50, 10, Rule("fixed_indegree", indegree=5))
    sampler = ValueSampler(d, Distribution("normal", mean=1.0, sd=1.0, **bounds), "/w", "weight")
    numpy_rng, compiled_rng = generator(7, 2, 0, 3), generator(7, 2, 0, 3)
    assert kernels.AVAILABLE
    ours = sampler.draw(compiled_rng, 50_000)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    assert np.array_equal(ours, sampler.draw(numpy_rng, 50_000))
    assert np.array_equal(compiled_rng.random(10), numpy_rng.random(10))
    if bounds:
        low = bounds["low"]
        assert ours.min() >= low and (ours.min() > low) == (bounds["bounds"] == "redraw")


@pytest.mark.parametrize("high", [2, 3, 20683, 2**31 + 1, 2**32 - 1])
@pytest.mark.parametrize("half_buffered", [False, True])
def test_compiled_integers_are_numpys_numbers(high, half_buffered):
    """kernels.integers gives rng.integers(0, high, n, dtype=uint32): the same numbers and the same state
    after (also when numpy holds half a word from an earlier draw, and when it is left holding one)."""
    from netbabel.instantiate import kernels

    assert kernels.AVAILABLE
    for n in (0, 1, 1001, 100_000):
        ours, numpys = (np.random.Generator(np.random.PCG64(np.random.SeedSequence(high))) for _ in range(2))
        if half_buffered:
            ours.integers(0, 7, 1, dtype=np.uint32), numpys.integers(0, 7, 1, dtype=np.uint32)
        assert np.array_equal(kernels.integers(ours, high, n), numpys.integers(0, high, n, dtype=np.uint32))
        assert ours.bit_generator.state == numpys.bit_generator.state
        assert np.array_equal(ours.integers(0, 1000, 11, dtype=np.uint32), numpys.integers(0, 1000, 11, dtype=np.uint32))


@pytest.mark.parametrize("dt", [0.1, 0.3])
def test_compiled_delays_are_numpys_numbers(dt, monkeypatch):
    """kernels.delays_from_slots gives the delays numpy's lookup and conversion give, with the slots drawn
    from the remainders, for a 1/dt that is an integer and one that is not."""
    from netbabel.instantiate import kernels
    from netbabel.instantiate.values import StepSampler, ValueSampler, generator, steps_to_ms

    d = model(50, 10, Rule("fixed_indegree", indegree=5))
    sampler = ValueSampler(d, Distribution("normal", mean=1.5, sd=0.75, low=0.05, bounds="redraw"), "/d", "delay")
    steps = StepSampler(sampler, dt)
    assert steps.n_main < steps.table.size  # some slots take the remainder draw
    assert kernels.AVAILABLE
    compiled = steps.draw_ms(generator(3, 3, 0, 0), 100_000)
    expected = steps_to_ms(steps.draw(generator(3, 3, 0, 0), 100_000), dt)
    assert np.array_equal(compiled, expected)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    assert np.array_equal(steps.draw_ms(generator(3, 3, 0, 0), 100_000), expected)


def test_redraw_that_never_succeeds_is_an_error():
    weight = Distribution("normal", mean=0.0, sd=1.0, low=50.0, high=51.0, bounds="redraw")
    with pytest.raises(NetbabelError, match="redrawing does not terminate"):
        edges(model(10, 10, Rule("all_to_all"), weight=weight))


@pytest.mark.parametrize("rule, same, multapses, message", [
    (Rule("fixed_indegree", indegree=20), True, False, "cannot be satisfied without multapses"),
    (Rule("fixed_outdegree", outdegree=13), False, False, "cannot be satisfied without multapses"),
    (Rule("fixed_total_number", n=200), True, False, "exceeds the 90 possible pairs"),
    (Rule("one_to_one"), False, True, "one_to_one needs equal sizes"),
    (Rule("pairwise_bernoulli", p=1.5), False, True, "outside"),
    (Rule("pairwise_bernoulli", p="2 - d"), False, True, "has no positions"),
    (Rule("fixed_indegree", indegree=-3), False, True, "non-negative integer"),
])
def test_impossible_rules_are_errors(rule, same, multapses, message):
    d = model(10, 12, rule, same=same, autapses=False, multapses=multapses)
    with pytest.raises(NetbabelError, match=message):
        edges(d)


def test_distance_probability_outside_unit_interval_is_an_error():
    grid = Positions("grid", shape=[10], spacing=[100.0])
    d = model(10, None, Rule("pairwise_bernoulli", p="d / 100"), same=True, positions=(grid,))
    with pytest.raises(NetbabelError, match="outside \\[0, 1\\]"):
        edges(d)


def poisson_model(rate=500.0, indegree=4, start=None, stop=None, weight=2.0) -> Description:
    d = model(10, 300, Rule("one_to_one"), same=True)
    d.inputs = [Input("poisson", "S", name="bg", rate=rate, indegree=indegree, weight=weight, delay=1.0,
                      start=start, stop=stop)]
    d.populations["S"].size = 300
    return d


def test_poisson_trains_rate_grid_and_nest_timing():
    d = poisson_model()
    ids, times = (np.concatenate(x) for x in zip(*iter_spikes(d, 0)))
    expected = 500.0 * 4 * 0.1 * 300  # rate * indegree * 100 ms * cells
    assert abs(ids.size - expected) < 4 * np.sqrt(expected)
    assert np.array_equal(times * 10, np.round(times * 10))
    assert times.min() == 0.2 and times.max() == 100.0  # NEST: active steps (0, 100 - dt], stamped +dt
    assert np.all(np.diff(ids) >= 0)
    same_cell = ids[1:] == ids[:-1]
    assert np.all(np.diff(times)[same_cell] >= 0)
    assert np.any(np.diff(times)[same_cell] == 0), "several spikes in one step are repeated times"
    per_step = np.bincount(np.round(times * 10).astype(int))[2:]
    # counts per (cell, step) are Poisson(rate * K * dt): variance equals mean
    assert abs(per_step.var() / per_step.mean() - 1) < 0.1


def test_poisson_start_stop_window():
    d = poisson_model(rate=20000.0, indegree=1, start=10.0, stop=20.0)
    ids, times = (np.concatenate(x) for x in zip(*iter_spikes(d, 0)))
    assert times.min() == 10.2 and times.max() == 20.1


def test_poisson_input_with_distributed_weight_is_refused_in_frozen_mode():
    d = poisson_model(weight=Distribution("normal", mean=1.0, sd=0.1))
    with pytest.raises(NetbabelError, match="input 'bg'.*weight is a distribution"):
        list(iter_spikes(d, 0))


def test_initial_potentials():
    d = model(100, None, Rule("one_to_one"), same=True)
    assert initial_potentials(d, "S") is None
    d.populations["S"].v_init = Distribution("normal", mean=-58.0, sd=10.0)
    v = initial_potentials(d, "S")
    assert v.shape == (100,) and np.array_equal(v, initial_potentials(d, "S"))
    assert abs(v.mean() + 58) < 4 and 6 < v.std() < 14
    d.simulation.seed += 1
    assert not np.array_equal(v, initial_potentials(d, "S"))
