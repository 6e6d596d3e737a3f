"""Exact verdict: spikes matched one to one within a tolerance.

Two spikes match when they come from the same neuron (same population, same
node id) and their times differ by at most `tolerance` ms (default: half a
time step, so spikes on the same dt grid point match and spikes one step apart
do not). Matching is one to one: per neuron both trains are walked in time
order and each spike is paired with the earliest unpaired spike of the other
train within the tolerance. On a line this greedy walk finds a largest
possible matching.

Per population the verdict gives the number of spikes in each report, the
number matched, the fraction matched (matched / max(n_a, n_b)), the largest
time difference among matched pairs, the first divergence time (the earliest
unmatched spike in either report) and the neurons that diverged first (those
whose first unmatched spike lies within one tolerance-widened step of that
time, at most `MAX_FIRST_NEURONS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from netbabel.spikereport import Spikes

MAX_FIRST_NEURONS = 10


@dataclass
class ExactPopulation:
    """The exact comparison of one population."""

    population: str
    n_a: int
    n_b: int
    matched: int
    max_shift: float  # largest |t_a - t_b| among matched pairs, ms
    first_divergence: float | None  # ms, None when every spike matched
    first_neurons: list[int] = field(default_factory=list)
    missing_in: str | None = None  # "a" or "b" when the population is absent from one report

    @property
    def fraction(self) -> float:
        most = max(self.n_a, self.n_b)
        return 1.0 if most == 0 else self.matched / most

    @property
    def identical(self) -> bool:
        return self.matched == self.n_a == self.n_b

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fraction"] = self.fraction
        out["identical"] = self.identical
        return out


@dataclass
class ExactResult:
    tolerance: float
    populations: dict[str, ExactPopulation]

    @property
    def identical(self) -> bool:
        return all(p.identical for p in self.populations.values())

    @property
    def first_divergence(self) -> float | None:
        times = [p.first_divergence for p in self.populations.values() if p.first_divergence is not None]
        return min(times) if times else None

    def to_dict(self) -> dict:
        return {"tolerance": self.tolerance, "identical": self.identical,
                "first_divergence": self.first_divergence,
                "populations": {k: v.to_dict() for k, v in self.populations.items()}}


def match_train(a: np.ndarray, b: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Match two sorted spike trains; returns (a unmatched mask, b unmatched mask, largest matched shift)."""
    unmatched_a = np.ones(len(a), dtype=bool)
    unmatched_b = np.ones(len(b), dtype=bool)
    if len(a) == len(b) and len(a) and np.all(np.abs(a - b) <= tolerance):
        return ~unmatched_a, ~unmatched_b, float(np.max(np.abs(a - b)))
    la, lb = a.tolist(), b.tolist()
    i = j = 0
    shift = 0.0
    while i < len(la) and j < len(lb):
        d = la[i] - lb[j]
        if -tolerance <= d <= tolerance:
            unmatched_a[i] = unmatched_b[j] = False
            shift = max(shift, abs(d))
            i += 1
            j += 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return unmatched_a, unmatched_b, shift


def _by_neuron(ids: np.ndarray, times: np.ndarray) -> dict[int, np.ndarray]:
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    return {int(chunk_ids[0]): chunk_t for chunk_ids, chunk_t in zip(np.split(ids, cuts), np.split(times, cuts))
            if len(chunk_ids)}


def compare_population(name: str, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                       tolerance: float) -> ExactPopulation:
    """Exact comparison of one population's spikes (node_ids, times) in two reports."""
    trains_a, trains_b = _by_neuron(*a), _by_neuron(*b)
    empty = np.empty(0)
    matched, shift = 0, 0.0
    first: dict[int, float] = {}
    for neuron in sorted(set(trains_a) | set(trains_b)):
        ta, tb = trains_a.get(neuron, empty), trains_b.get(neuron, empty)
        ua, ub, s = match_train(ta, tb, tolerance)
        matched += int(len(ta) - ua.sum())
        shift = max(shift, s)
        lost = np.concatenate([ta[ua], tb[ub]])
        if len(lost):
            first[neuron] = float(lost.min())
    divergence = min(first.values()) if first else None
    neurons: list[int] = []
    if divergence is not None:
        window = max(tolerance, 1e-9) * 2
        early = sorted((t, n) for n, t in first.items() if t <= divergence + window)
        neurons = [n for _, n in early[:MAX_FIRST_NEURONS]]
    return ExactPopulation(name, len(a[1]), len(b[1]), matched, shift, divergence, neurons)


def compare_exact(a: Spikes, b: Spikes, tolerance: float) -> ExactResult:
    """Spike-by-spike comparison of two reports (a population missing from one report counts as silent)."""
    empty = (np.empty(0, dtype=np.int64), np.empty(0))
    out: dict[str, ExactPopulation] = {}
    for name in sorted(set(a) | set(b)):
        result = compare_population(name, a.get(name, empty), b.get(name, empty), tolerance)
        if name not in a:
            result.missing_in = "a"
        elif name not in b:
            result.missing_in = "b"
        out[name] = result
    return ExactResult(tolerance, out)
