"""Statistical verdict: distributions of activity measures compared against the seed-to-seed spread.

Measures, per population (after Gutzen et al. 2018, NetworkUnit, and van Albada et al. 2018):

- `rate`: firing rate of every neuron (spikes / window length, Hz; silent neurons count as 0 Hz).
- `cv`: coefficient of variation of the inter-spike intervals of every neuron with at least
  `MIN_SPIKES_CV` spikes in the window.
- `corr`: Pearson correlation coefficients of binned spike counts (bins of `CORR_BIN` ms) of all
  pairs among a sample of at most `CORR_SAMPLE` neurons. The sample is the same set of node ids
  in every report: drawn without replacement from 0..N-1 by a numpy Generator seeded with
  crc32(population name), so it depends on nothing but the population's name and size. Neurons
  silent in the window are left out of the pairs (their coefficient is undefined).

Decision rule (for each population and each measure with at least `MIN_SAMPLES` values in every run):

1. Distribution test. Distances between two runs are the two-sample Kolmogorov-Smirnov statistic D
   and the Earth Mover's (1-D Wasserstein) distance W of the measure's distributions. The tolerance
   of each distance is SPREAD_FACTOR (3) times the largest distance over all pairs of reference runs
   (seeds s0..s(k-1)), but never less than a floor: for D the critical value of the two-sample KS
   test at alpha = 0.001, c * sqrt(2/n) with c = 1.949 and n the mean number of values per reference
   run, and for W that same factor times the standard deviation of the measure pooled over the
   reference runs. With a single reference run the floor alone is the tolerance. The candidate's
   score is its mean distance to the reference runs; the test passes when score(D) <= tol(D) and
   score(W) <= tol(W). It catches changes of shape; it is deliberately coarse (few false alarms).
2. Mean test (with k >= 2 reference runs). The population mean of the measure in the candidate, m,
   is judged as one more draw from the distribution of the reference runs' means m_1..m_k (mean M,
   sample standard deviation S, ddof 1): t = (m - M) / (S * sqrt(1 + 1/k)) follows Student's t with
   k - 1 degrees of freedom when the candidate behaves as another seed (a prediction interval). The
   test fails when |t| exceeds the two-sided critical value at FAMILY_ALPHA / m_tests (Bonferroni
   over the m_tests mean tests of the run, so that a whole run is a false alarm with probability at
   most FAMILY_ALPHA = 1%). It uses the seed-to-seed spread of the means, which in a recurrent
   network is not the spread of the neurons (measured in Brunel's network: smaller for the
   inhibitory rate, larger for the excitatory one), so it needs no model of the network.
   Not judged when the reference means are all equal (the seed changes nothing: the distribution
   test and the exact verdict decide). Its power grows with k (the critical value falls from 24.5
   at k = 3 to 4.4 at k = 10 for 6 tests); see docs/comparison.md for measured figures.
3. A measure agrees when both tests pass. A population agrees when every judged measure agrees; a
   run is equivalent when every population agrees. Measures with too few values in some run are
   reported as not judged ("n/a"), unless the reference has enough values and the candidate has
   none (then it disagrees).
"""

from __future__ import annotations

import itertools
import math
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from netbabel.spikereport import Spikes

MEASURES = ("rate", "cv", "corr")
MIN_SPIKES_CV = 3
CORR_BIN = 2.0  # ms
CORR_SAMPLE = 200
MIN_SAMPLES = 5
KS_C_ALPHA = 1.949  # sqrt(-ln(0.001 / 2) / 2): two-sample KS critical value factor at alpha = 0.001
SPREAD_FACTOR = 3.0  # the tolerance is this multiple of the largest seed-to-seed distance
FAMILY_ALPHA = 0.01  # false-alarm probability of the mean tests of one run (Bonferroni)
MEAN_EPS = 1e-9  # reference means closer than this (relative) count as equal: no spread to judge against


@dataclass
class Window:
    """The analysis window in ms, and the size of every population."""

    t_start: float
    t_stop: float
    sizes: dict[str, int]

    @property
    def length_s(self) -> float:
        return max(self.t_stop - self.t_start, 1e-12) / 1000.0


def infer_window(reports: list[Spikes], sizes: dict[str, int] | None = None, t_stop: float | None = None,
                 t_start: float = 0.0) -> Window:
    """A window covering all reports; sizes default to the largest node id + 1 seen in any report."""
    sizes = dict(sizes or {})
    found: dict[str, int] = {}
    last = t_start
    for report in reports:
        for pop, (ids, times) in report.items():
            found[pop] = max(found.get(pop, 0), int(ids.max()) + 1 if len(ids) else 0)
            if len(times):
                last = max(last, float(times.max()))
    found.update(sizes)
    if t_stop is None:
        t_stop = math.ceil(last) if last > t_start else t_start + 1.0
    return Window(t_start, float(t_stop), found)


def _clip(ids: np.ndarray, times: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    keep = (times >= window.t_start) & (times < window.t_stop)
    return ids[keep], times[keep]


def rates(ids: np.ndarray, times: np.ndarray, size: int, window: Window) -> np.ndarray:
    ids, _ = _clip(ids, times, window)
    ids = ids[ids < size]
    return np.bincount(ids.astype(np.int64), minlength=size).astype(float) / window.length_s


def cvs(ids: np.ndarray, times: np.ndarray, window: Window) -> np.ndarray:
    ids, times = _clip(ids, times, window)
    if not len(ids):
        return np.empty(0)
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    out = []
    for train in np.split(times, cuts):
        if len(train) >= MIN_SPIKES_CV:
            intervals = np.diff(train)
            if intervals.mean() > 0:
                out.append(intervals.std() / intervals.mean())
    return np.asarray(out)


def correlation_sample(population: str, size: int) -> np.ndarray:
    """The documented sample of node ids used for pairwise correlations."""
    rng = np.random.default_rng(zlib.crc32(population.encode()))
    if size <= CORR_SAMPLE:
        return np.arange(size)
    return np.sort(rng.choice(size, CORR_SAMPLE, replace=False))


def correlations(population: str, ids: np.ndarray, times: np.ndarray, size: int, window: Window) -> np.ndarray:
    ids, times = _clip(ids, times, window)
    sample = correlation_sample(population, size)
    if len(sample) < 2:
        return np.empty(0)
    nbins = max(1, int(math.ceil((window.t_stop - window.t_start) / CORR_BIN)))
    row_of = np.full(max(size, 1), -1, dtype=np.int64)
    row_of[sample] = np.arange(len(sample))
    valid = ids < size
    rows = row_of[ids[valid].astype(np.int64)]
    cols = np.minimum(((times[valid] - window.t_start) // CORR_BIN).astype(np.int64), nbins - 1)
    keep = rows >= 0
    counts = np.zeros((len(sample), nbins))
    np.add.at(counts, (rows[keep], cols[keep]), 1.0)
    active = counts.std(axis=1) > 0
    counts = counts[active]
    if len(counts) < 2:
        return np.empty(0)
    cc = np.corrcoef(counts)
    return cc[np.triu_indices(len(counts), k=1)]


@dataclass
class PopulationMeasures:
    rate: np.ndarray
    cv: np.ndarray
    corr: np.ndarray

    def get(self, measure: str) -> np.ndarray:
        return getattr(self, measure)

    def means(self) -> dict[str, float]:
        return {m: float(np.mean(self.get(m))) if len(self.get(m)) else float("nan") for m in MEASURES}


def measure_report(report: Spikes, window: Window) -> dict[str, PopulationMeasures]:
    """Rates, CVs and correlations of every population of the window."""
    out = {}
    empty = (np.empty(0, dtype=np.int64), np.empty(0))
    for pop, size in window.sizes.items():
        ids, times = report.get(pop, empty)
        out[pop] = PopulationMeasures(rates(ids, times, size, window), cvs(ids, times, window),
                                      correlations(pop, ids, times, size, window))
    return out


def distances(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(KS statistic, Earth Mover's distance) of two samples (rounded to 1e-9: float noise is no difference)."""
    x, y = np.sort(np.round(x, 9)), np.sort(np.round(y, 9))
    return ks_statistic(x, y), float(sps.wasserstein_distance(x, y))


def ks_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of two sorted samples (scipy's, without its p-value)."""
    both = np.concatenate([x, y])
    gap = np.searchsorted(x, both, side="right") / len(x) - np.searchsorted(y, both, side="right") / len(y)
    return float(np.max(np.abs(gap)))


def ks_pvalue(x: np.ndarray, y: np.ndarray) -> float:
    return float(_ks(x, y).pvalue)


def _ks(x: np.ndarray, y: np.ndarray):
    """Two-sample KS test; scipy's fallback from the exact to the asymptotic p-value is not worth a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return sps.ks_2samp(x, y)


@dataclass
class MeasureVerdict:
    measure: str
    judged: bool
    agrees: bool
    ks: float = float("nan")
    emd: float = float("nan")
    ks_tolerance: float = float("nan")
    emd_tolerance: float = float("nan")
    p_value: float = float("nan")
    mean_t: float = float("nan")  # the mean test's statistic (nan: not judged)
    mean_t_critical: float = float("nan")
    note: str = ""

    @property
    def distribution_agrees(self) -> bool:
        return not self.judged or (self.ks <= self.ks_tolerance and self.emd <= self.emd_tolerance)

    @property
    def mean_agrees(self) -> bool:
        return not abs(self.mean_t) > self.mean_t_critical  # nan (not judged) agrees

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}


@dataclass
class PopulationVerdict:
    population: str
    measures: dict[str, MeasureVerdict] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)  # candidate's mean rate, cv, corr
    reference_means: dict[str, float] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return all(v.agrees for v in self.measures.values())

    def to_dict(self) -> dict:
        return {"population": self.population, "agrees": self.agrees,
                "means": _nan_none(self.means), "reference_means": _nan_none(self.reference_means),
                "measures": {k: v.to_dict() for k, v in self.measures.items()}}


def _nan_none(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else v) for k, v in d.items()}


@dataclass
class StatResult:
    populations: dict[str, PopulationVerdict]
    reference_runs: int

    @property
    def equivalent(self) -> bool:
        return all(p.agrees for p in self.populations.values())

    def to_dict(self) -> dict:
        return {"equivalent": self.equivalent, "reference_runs": self.reference_runs,
                "populations": {k: v.to_dict() for k, v in self.populations.items()}}


def tolerance(reference: list[np.ndarray]) -> tuple[float, float]:
    """(KS tolerance, EMD tolerance) from the spread of the reference runs (see the module doc)."""
    ks_spread = emd_spread = 0.0
    for x, y in itertools.combinations(reference, 2):
        d, w = distances(x, y)
        ks_spread, emd_spread = max(ks_spread, d), max(emd_spread, w)
    n = float(np.mean([len(r) for r in reference]))
    floor_factor = KS_C_ALPHA * math.sqrt(2.0 / n)
    sd = float(np.std(np.concatenate(reference)))
    return max(SPREAD_FACTOR * ks_spread, floor_factor), max(SPREAD_FACTOR * emd_spread, floor_factor * sd)


def mean_t(candidate_mean: float, reference_means: list[float]) -> float:
    """The prediction-interval statistic of the mean test (nan when it cannot be judged, see the module doc)."""
    k = len(reference_means)
    means = np.asarray(reference_means, dtype=float)
    if k < 2 or not np.all(np.isfinite(means)) or not math.isfinite(candidate_mean):
        return float("nan")
    spread = float(np.std(means, ddof=1))
    if spread <= MEAN_EPS * max(1.0, float(np.abs(means).max())):
        return float("nan")
    return (candidate_mean - float(means.mean())) / (spread * math.sqrt(1.0 + 1.0 / k))


def t_critical(k: int, tests: int) -> float:
    """Two-sided critical value of Student's t (k - 1 degrees of freedom) at FAMILY_ALPHA / tests."""
    return float(sps.t.ppf(1.0 - FAMILY_ALPHA / max(tests, 1) / 2.0, k - 1))


def judge_measure(measure: str, candidate: np.ndarray, reference: list[np.ndarray],
                  mean_tests: int = 1) -> MeasureVerdict:
    """The decision rule for one measure of one population (`mean_tests`: the Bonferroni family size)."""
    if any(len(r) < MIN_SAMPLES for r in reference):
        return MeasureVerdict(measure, False, True, note="too few values in the reference")
    if len(candidate) < MIN_SAMPLES:
        agrees = len(candidate) > 0
        return MeasureVerdict(measure, not agrees, agrees,
                              note=f"{len(candidate)} values (reference {len(reference[0])})")
    pairs = [distances(candidate, r) for r in reference]
    ks = float(np.mean([p[0] for p in pairs]))
    emd = float(np.mean([p[1] for p in pairs]))
    ks_tol, emd_tol = tolerance(reference)
    t = mean_t(float(np.mean(candidate)), [float(np.mean(r)) for r in reference])
    verdict = MeasureVerdict(measure, True, True, ks, emd, ks_tol, emd_tol, ks_pvalue(candidate, reference[0]),
                             t, t_critical(len(reference), mean_tests) if t == t else float("nan"))
    verdict.agrees = verdict.distribution_agrees and verdict.mean_agrees
    if len(reference) > 1 and t != t:
        verdict.note = "mean test not judged: the reference seeds give the same mean"
    return verdict


def mean_test_count(candidate: dict[str, PopulationMeasures], references: list[dict[str, PopulationMeasures]],
                    populations) -> int:
    """How many mean tests a run gets (the Bonferroni family): measures with enough values everywhere."""
    if len(references) < 2:
        return 0
    return sum(1 for pop in populations for m in MEASURES
               if all(len(r[pop].get(m)) >= MIN_SAMPLES for r in references + [candidate]))


def compare_statistics(candidate: Spikes, references: list[Spikes], window: Window) -> StatResult:
    """Judge a candidate run against one or more runs of the reference simulator (seeds s0, s1, ...)."""
    cand = measure_report(candidate, window)
    refs = [measure_report(r, window) for r in references]
    tests = mean_test_count(cand, refs, window.sizes)
    out = {}
    for pop in window.sizes:
        verdict = PopulationVerdict(pop, means=cand[pop].means(), reference_means=refs[0][pop].means())
        for m in MEASURES:
            verdict.measures[m] = judge_measure(m, cand[pop].get(m), [r[pop].get(m) for r in refs], tests)
        out[pop] = verdict
    return StatResult(out, len(references))
