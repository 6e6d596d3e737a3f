"""The comparison on synthetic spike data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from netbabel.compare.exact import compare_exact, match_train
from netbabel.compare.stats import (CORR_SAMPLE, compare_statistics, correlation_sample, cvs, infer_window,
                                    rates)

DT = 0.1


def poisson_report(rate_hz: float, n: int, t_stop: float, seed: int, pop: str = "E") -> dict:
    """Independent Poisson trains on the dt grid (at most one spike per neuron and step)."""
    rng = np.random.default_rng(seed)
    steps = int(t_stop / DT)
    fired = rng.random((n, steps)) < rate_hz * DT / 1000.0
    ids, idx = np.nonzero(fired)
    return {pop: (ids.astype(np.int64), np.round(idx * DT + DT, 10))}


def test_identical_trains_match_exactly():
    a = poisson_report(20, 50, 500, seed=1)
    result = compare_exact(a, a, tolerance=DT / 2)
    pop = result.populations["E"]
    assert result.identical and pop.fraction == 1.0
    assert pop.first_divergence is None and pop.max_shift == 0.0
    stat = compare_statistics(a, [a], infer_window([a, a], t_stop=500))
    assert stat.equivalent
    assert stat.populations["E"].measures["rate"].ks == 0.0


def test_shift_by_one_step_breaks_exact_match_but_not_statistics():
    a = poisson_report(20, 50, 500, seed=2)
    ids, times = a["E"]
    b = {"E": (ids, times + DT)}
    strict = compare_exact(a, b, tolerance=DT / 2)
    assert not strict.identical
    # only spikes of a neuron that also fired one step later can still pair up
    assert strict.populations["E"].matched < 0.02 * len(times)
    assert strict.populations["E"].first_divergence == pytest.approx(times.min())
    loose = compare_exact(a, b, tolerance=DT * 1.01)
    assert loose.identical
    assert loose.populations["E"].max_shift == pytest.approx(DT)
    window = infer_window([a, b], t_stop=600)
    assert compare_statistics(b, [a], window).equivalent


def test_one_dropped_spike_is_located():
    a = poisson_report(20, 50, 500, seed=3)
    ids, times = a["E"]
    drop = len(times) // 2
    b = {"E": (np.delete(ids, drop), np.delete(times, drop))}
    result = compare_exact(a, b, tolerance=DT / 2)
    pop = result.populations["E"]
    assert pop.matched == len(times) - 1
    assert pop.fraction == pytest.approx((len(times) - 1) / len(times))
    assert pop.first_divergence == pytest.approx(times[drop])
    assert pop.first_neurons[0] == ids[drop]
    assert result.first_divergence == pytest.approx(times[drop])


def test_missing_population_counts_as_silent():
    a = poisson_report(20, 10, 200, seed=4)
    result = compare_exact(a, {}, tolerance=DT / 2)
    assert result.populations["E"].missing_in == "b"
    assert result.populations["E"].matched == 0 and not result.identical


def test_greedy_matching_is_one_to_one():
    a = np.array([1.0, 1.05, 3.0])
    b = np.array([1.02, 3.04, 3.06])
    ua, ub, shift = match_train(a, b, 0.05)
    assert ua.tolist() == [False, True, False]
    assert ub.tolist() == [False, False, True]
    assert shift == pytest.approx(0.04)


def test_poisson_trains_with_different_rates_are_not_equivalent():
    references = [poisson_report(10, 200, 1000, seed=s) for s in (10, 11, 12)]
    same = poisson_report(10, 200, 1000, seed=13)
    faster = poisson_report(15, 200, 1000, seed=13)
    window = infer_window(references + [same, faster], sizes={"E": 200}, t_stop=1000)
    assert compare_statistics(same, references, window).equivalent
    result = compare_statistics(faster, references, window)
    assert not result.equivalent
    rate = result.populations["E"].measures["rate"]
    assert rate.judged and not rate.agrees and rate.ks > rate.ks_tolerance
    assert result.populations["E"].means["rate"] == pytest.approx(15, rel=0.1)


def test_regular_versus_poisson_differs_in_cv():
    poisson = [poisson_report(20, 100, 1000, seed=s) for s in (20, 21)]
    ids = np.repeat(np.arange(100), 20)
    times = np.tile(np.arange(20) * 50.0 + 1.0, 100) + (ids % 50) * DT
    regular = {"E": (ids, times)}
    window = infer_window(poisson + [regular], sizes={"E": 100}, t_stop=1000)
    result = compare_statistics(regular, poisson, window)
    cv = result.populations["E"].measures["cv"]
    assert cv.judged and not cv.agrees
    assert result.populations["E"].means["cv"] == pytest.approx(0.0, abs=1e-9)


def test_synchrony_shows_in_correlations():
    rng = np.random.default_rng(5)
    n = 60
    independent = [poisson_report(10, n, 1000, seed=s) for s in (30, 31, 32)]
    events = np.sort(rng.choice(np.arange(1, 9990), 10, replace=False)) * DT
    ids = np.repeat(np.arange(n), len(events))
    sync = {"E": (ids, np.tile(events, n) + DT * (ids % 3))}
    sync = {"E": (np.concatenate([sync["E"][0], independent[0]["E"][0]]),
                  np.concatenate([sync["E"][1], independent[0]["E"][1]]))}
    window = infer_window(independent + [sync], sizes={"E": n}, t_stop=1000)
    result = compare_statistics(sync, independent, window)
    corr = result.populations["E"].measures["corr"]
    assert corr.judged and not corr.agrees
    assert result.populations["E"].means["corr"] > 0.3


def test_rates_cv_and_sample_helpers():
    window = infer_window([], sizes={"E": 3}, t_stop=1000)
    r = rates(np.array([0, 0, 2]), np.array([1.0, 2.0, 3.0]), 3, window)
    assert r.tolist() == [2.0, 0.0, 1.0]
    assert cvs(np.array([0, 0, 0, 1]), np.array([0.0, 10.0, 20.0, 5.0]), window).tolist() == [0.0]
    sample = correlation_sample("E", 1000)
    assert len(sample) == CORR_SAMPLE and np.array_equal(sample, correlation_sample("E", 1000))
    assert np.array_equal(correlation_sample("E", 20), np.arange(20))


def network_like(seed: int, n: int = 200, t_stop: float = 1000.0, rate: float = 20.0, spread: float = 0.3,
                 run_sd: float = 0.02, factor: float = 1.0) -> dict:
    """A population whose neurons have heterogeneous rates (lognormal, CV `spread`) and whose mean rate also
    varies from seed to seed (a run factor of sd `run_sd`), as in a recurrent network; Poisson trains on the grid."""
    rng = np.random.default_rng(seed)
    run = 1.0 + run_sd * rng.standard_normal()
    rate_of = rate * factor * run * rng.lognormal(-spread ** 2 / 2, spread, n)
    counts = rng.poisson(rate_of * t_stop / 1000.0)
    times = np.ceil(rng.uniform(0.0, t_stop, counts.sum()) / DT) * DT
    return {"E": (np.repeat(np.arange(n), counts), np.round(times, 10))}


def test_mean_test_sees_a_rate_shift_that_the_distributions_hide():
    # 10% faster: the per-neuron rate distributions overlap (Poisson counts of 1 s), the population mean
    # moves by about 6 seed-to-seed standard deviations
    references = [network_like(100 + s, n=400, spread=0.1, run_sd=0.01) for s in range(10)]
    window = infer_window(references, sizes={"E": 400}, t_stop=1000)
    same = compare_statistics(network_like(200, n=400, spread=0.1, run_sd=0.01), references, window).populations["E"]
    assert same.agrees
    assert all(abs(m.mean_t) < m.mean_t_critical for m in same.measures.values())
    faster = compare_statistics(network_like(201, n=400, spread=0.1, run_sd=0.01, factor=1.1), references,
                                window).populations["E"]
    rate = faster.measures["rate"]
    assert not faster.agrees and not rate.agrees
    assert rate.distribution_agrees and rate.mean_t > rate.mean_t_critical
    # the Bonferroni family: 3 measures of one population at 1%, Student t with 9 degrees of freedom
    assert rate.mean_t_critical == pytest.approx(3.954, abs=0.001)


def test_mean_test_is_not_judged_without_a_seed_spread():
    one = [poisson_report(10, 50, 500, seed=40)]
    window = infer_window(one, sizes={"E": 50}, t_stop=500)
    rate = compare_statistics(poisson_report(10, 50, 500, seed=41), one, window).populations["E"].measures["rate"]
    assert rate.judged and rate.mean_t != rate.mean_t  # nan: one reference run has no spread
    same = [one[0], one[0], one[0]]
    rate = compare_statistics(poisson_report(10, 50, 500, seed=41), same, window).populations["E"].measures["rate"]
    assert rate.mean_t != rate.mean_t and "same mean" in rate.note
    assert rate.agrees == rate.distribution_agrees


def test_false_alarms_and_power_of_the_verdict():
    """Calibration (docs/comparison.md): 20 trials of 10 reference seeds, a candidate of the same model and one
    20% faster, in a population of 100 neurons whose mean rate also varies from seed to seed (1%). Measured:
    no false alarm; the faster candidate caught 20 times in 20 (distribution tests alone: 3 in 20)."""
    alarms = detected = detected_by_distributions = 0
    trials = 20
    for t in range(trials):
        references = [network_like(1000 * t + s, n=100, spread=0.1, run_sd=0.01) for s in range(10)]
        window = infer_window(references, sizes={"E": 100}, t_stop=1000)
        same = network_like(1000 * t + 500, n=100, spread=0.1, run_sd=0.01)
        alarms += not compare_statistics(same, references, window).equivalent
        faster = network_like(1000 * t + 501, n=100, spread=0.1, run_sd=0.01, factor=1.2)
        verdict = compare_statistics(faster, references, window).populations["E"]
        detected += not verdict.agrees
        detected_by_distributions += not all(m.distribution_agrees for m in verdict.measures.values())
    assert alarms <= 1
    assert detected >= 18
    assert detected_by_distributions <= 6
