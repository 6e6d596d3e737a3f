"""Random streams, per-edge values (weights, delays) and the delay grid.

Random numbers
--------------
Every random number comes from a numpy ``Generator`` (SFC64 for per-edge weights and delays, PCG64
otherwise) seeded by
``SeedSequence(entropy=simulation.seed, spawn_key=(kind, index, block))``:
`kind` says what is drawn (see the constants below), `index` is the projection,
input or population index in the description and `block` the fixed block of
targets (see `rules.py`). Blocks are fixed by the description alone, so the
numbers do not depend on the chunk size, the number of processes or the order
in which blocks are computed.

Delay rounding
--------------
A delay `d` (ms) becomes ``steps = floor(d / dt + 0.5)`` steps (round half up,
NEST's rule for converting a time to steps), at least one step, and is stored as
``steps * dt`` (computed as ``steps / (1/dt)`` when 1/dt is an integer, so that
1.5 ms stays exactly 1.5). A delay never falls below dt.

`StepSampler` draws a distributed delay directly as a whole number of steps: the
probability of each step (the distribution, truncated or clipped to its bounds, then
rounded as above) is computed once, and steps are drawn from it with a table of 2^16
equally likely slots (16 random bits per delay) plus, for the few slots left over by
rounding the probabilities down to multiples of 2^-16, an inverse-CDF draw from the
remainders: every step keeps its exact probability (to double precision).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import numpy.random  # noqa: F401 - loaded with the module, not lazily at the first draw

from netbabel.description.model import Description, Distribution, Quantity
from netbabel.errors import NetbabelError
from netbabel.instantiate import kernels

# spawn-key kinds
CONNECT = 1
WEIGHT = 2
DELAY = 3
POISSON = 4
V_INIT = 5
POSITIONS = 6
SPLIT = 7  # projection-level splits of fixed_total_number / fixed_outdegree counts over blocks

MAX_REDRAW_ROUNDS = 1000
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def evaluator(description: Description) -> Callable[[object], float]:
    """`description.value` with the parameters resolved once (value() re-checks them on every call)."""
    from netbabel.description.expressions import evaluate_value

    params = description.resolved_parameters()
    return lambda v: evaluate_value(v, params)


BIT_GENERATORS = {WEIGHT: np.random.SFC64, DELAY: np.random.SFC64}  # one word per value: the fastest of numpy's
# generators (a normal weight costs 12 ns instead of 15 with PCG64 on the development machine); others PCG64


def generator(seed: int, kind: int, index: int, *more: int) -> np.random.Generator:
    """The Generator of one (kind, index, block...) stream."""
    bits = BIT_GENERATORS.get(kind, np.random.PCG64)
    return np.random.Generator(bits(np.random.SeedSequence(entropy=int(seed), spawn_key=(kind, index, *more))))


def is_constant(q: Quantity | None) -> bool:
    return not isinstance(q, Distribution)


class ValueSampler:
    """Draws n values of one quantity (number, expression or distribution), evaluated once."""

    def __init__(self, description: Description, q: Quantity, where: str, what: str,
                 value: Callable[[object], float] | None = None):
        self.where, self.what = where, what
        value = value or description.value
        if not isinstance(q, Distribution):
            self.constant: float | None = value(q)
            return
        self.constant = None
        self.kind = q.distribution
        ev = lambda v: None if v is None else value(v)  # noqa: E731
        self.mean, self.sd, self.mu, self.sigma = ev(q.mean), ev(q.sd), ev(q.mu), ev(q.sigma)
        low, high = ev(q.low), ev(q.high)
        if self.kind == "uniform":
            if low is None or high is None or high < low:
                raise NetbabelError(f"uniform {what} needs low <= high", pointer=where)
            self.low, self.high, self.bounds = low, high, None
        else:
            need = ("mean", "sd") if self.kind == "normal" else ("mu", "sigma")
            for name in need:
                if getattr(self, name) is None:
                    raise NetbabelError(f"{self.kind} {what} needs {name}", pointer=where)
            if (self.sd if self.kind == "normal" else self.sigma) < 0:
                raise NetbabelError(f"{what}: negative standard deviation", pointer=where)
            self.low = -math.inf if low is None else low
            self.high = math.inf if high is None else high
            if self.high < self.low:
                raise NetbabelError(f"{what}: high bound {self.high} below low bound {self.low}", pointer=where)
            self.bounds = q.bounds or "redraw"

    def _raw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "normal":
            return rng.normal(self.mean, self.sd, n)
        if self.kind == "lognormal":
            return rng.lognormal(self.mu, self.sigma, n)
        return rng.uniform(self.low, self.high, n)

    def draw(self, rng: np.random.Generator | None, n: int) -> np.ndarray:
        """n values (float64); bounded normal/lognormal are redrawn or clipped (normal values by
        `kernels.normal_fill` when compiled: numpy's numbers, faster)."""
        if self.constant is not None:
            return np.full(n, self.constant)
        if self.kind == "normal" and kernels.AVAILABLE:
            x = np.empty(n)
            if kernels.normal_fill(rng, self.mean, self.sd, self.low, self.high, x) == 0:
                return x
        else:
            x = self._raw(rng, n)
        if self.kind == "uniform" or (self.low == -math.inf and self.high == math.inf):
            return x
        if self.bounds == "clip":
            return np.clip(x, self.low, self.high, out=x)
        bad = np.flatnonzero(self._outside(x))
        rounds = 0
        while bad.size:
            rounds += 1
            if rounds > MAX_REDRAW_ROUNDS:
                raise self._never()
            y = self._raw(rng, bad.size)
            x[bad] = y
            bad = bad[self._outside(y)]
        return x

    def _outside(self, x: np.ndarray) -> np.ndarray:
        if self.high == math.inf:
            return x < self.low
        if self.low == -math.inf:
            return x > self.high
        return (x < self.low) | (x > self.high)

    def _never(self) -> NetbabelError:
        return NetbabelError(f"{self.what}: almost no values of the {self.kind} distribution fall in "
                             f"[{self.low}, {self.high}]; redrawing does not terminate", pointer=self.where)

    def cdf(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(X < x), P(X >= x)) of the distribution before bounds (both tails accurate)."""
        x = np.asarray(x, dtype=float)
        if self.kind == "uniform":
            width = self.high - self.low
            below = np.clip((x - self.low) / width, 0.0, 1.0)
            return below, 1.0 - below
        if self.kind == "normal":
            z = (x - self.mean) / (self.sd * math.sqrt(2.0))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(x > 0, (np.log(np.maximum(x, 1e-300)) - self.mu) / (self.sigma * math.sqrt(2.0)), -np.inf)
        return 0.5 * _ERFC(-z).astype(float), 0.5 * _ERFC(z).astype(float)

    def degenerate(self) -> float | None:
        """The single value of a distribution of width 0 (sd 0, sigma 0, low == high), else None."""
        if self.constant is not None:
            return self.constant
        if self.kind == "uniform":
            return self.low if self.high == self.low else None
        if self.kind == "normal" and self.sd == 0:
            v = self.mean
        elif self.kind == "lognormal" and self.sigma == 0:
            v = math.exp(self.mu)
        else:
            return None
        if self.bounds == "clip":
            return min(max(v, self.low), self.high)
        if not self.low <= v <= self.high:
            raise self._never()
        return v


def steps_per_ms(dt: float) -> float:
    """1/dt, snapped to an integer when it is one (0.1 ms -> 10)."""
    r = 1.0 / dt
    return float(round(r)) if abs(r - round(r)) < 1e-9 * r else r


def round_delays(d: np.ndarray, dt: float) -> np.ndarray:
    """Delays rounded half up to the dt grid, at least one step (see the module docstring)."""
    r = steps_per_ms(dt)
    steps = np.floor(d * r + 0.5)
    np.maximum(steps, 1.0, out=steps)
    if r == round(r):
        return np.divide(steps, r, out=steps)
    return np.multiply(steps, dt, out=steps)


def delay_steps(d: float, dt: float) -> int:
    """The whole number of steps of one delay (see the module docstring)."""
    return max(1, int(math.floor(d * steps_per_ms(dt) + 0.5)))


def steps_to_ms(steps: np.ndarray, dt: float) -> np.ndarray:
    """Delays (float64 ms) of whole steps, the same doubles as `round_delays` gives."""
    r = steps_per_ms(dt)
    out = steps.astype(np.float64)
    if r == round(r):
        return np.divide(out, r, out=out)
    return np.multiply(out, dt, out=out)


TABLE_BITS = 16
MAX_TABULATED_STEPS = 1 << 16
TAIL_SD = 10.0  # normal / lognormal tables extend this many standard deviations beyond the mean


class StepSampler:
    """Delays drawn as whole steps of dt with their exact probabilities (see the module docstring).

    Distributions with more than MAX_TABULATED_STEPS possible steps fall back to drawing the
    value and rounding it.
    """

    def __init__(self, sampler: ValueSampler, dt: float):
        self.sampler, self.dt = sampler, dt
        self.r = steps_per_ms(dt)
        value = sampler.degenerate()
        self.constant = None if value is None else delay_steps(value, dt)
        self.table = None
        if self.constant is None:
            self._tabulate()
        last = self.constant if self.constant is not None else (self.first + self.table_size if self.table is not None
                                                                 else 2**32)
        self.dtype = np.uint16 if last < 2**16 else np.uint32

    def _step_of(self, x: float) -> int:
        if x == math.inf:
            return 2**62
        return max(1, int(math.floor(x * self.r + 0.5))) if x != -math.inf else 1

    def _tabulate(self) -> None:
        s = self.sampler
        if s.kind == "uniform":
            lo, hi = s.low, s.high
        elif s.kind == "normal":
            lo, hi = max(s.low, s.mean - TAIL_SD * s.sd), min(s.high, s.mean + TAIL_SD * s.sd)
        else:
            lo = max(s.low, math.exp(s.mu - TAIL_SD * s.sigma))
            hi = min(s.high, math.exp(min(s.mu + TAIL_SD * s.sigma, 700.0)))
        if hi < lo:  # the bounds lie beyond the tails
            if s.bounds == "clip" or s.kind == "uniform":
                lo = hi = s.low if hi < s.low else s.high
            else:
                raise s._never()
        first, last = self._step_of(lo), self._step_of(hi)
        if last - first + 1 > MAX_TABULATED_STEPS:
            return
        k = np.arange(first, last + 1, dtype=float)
        a = np.maximum((k - 0.5) / self.r, s.low)  # step k holds [(k - 1/2)/r, (k + 1/2)/r)
        b = np.minimum((k + 0.5) / self.r, s.high)
        a[0], b[-1] = s.low, s.high  # the first and last steps take the tails
        below_a, above_a = s.cdf(a)
        below_b, above_b = s.cdf(b)
        p = np.maximum(np.where(below_b <= 0.5, below_b - below_a, above_a - above_b), 0.0)  # the accurate tail
        if s.kind != "uniform" and s.bounds == "clip":  # values beyond a bound take the bound's step
            for bound, mass in ((s.low, s.cdf([s.low])[0][0]), (s.high, s.cdf([s.high])[1][0])):
                p[min(max(self._step_of(bound), first), last) - first] += float(mass)
        total = float(p.sum())
        if not total > 1e-12:
            raise s._never()
        p /= total
        self.first, self.table_size = first, p.size
        slots = np.floor(p * (1 << TABLE_BITS)).astype(np.int64)
        table = np.repeat(np.arange(first, last + 1, dtype=np.int64), slots)
        self.n_main = table.size
        self.table = np.empty(1 << TABLE_BITS, np.uint32 if last >= 2**16 else np.uint16)
        self.table[:self.n_main] = table
        rest = p * (1 << TABLE_BITS) - slots
        self.rest_cdf = np.cumsum(rest) / max(float(rest.sum()), 1e-300)
        self.rest_cdf[-1] = 1.0

    def draw(self, rng: np.random.Generator | None, n: int) -> np.ndarray:
        """n delays as whole steps (uint16 or uint32)."""
        if self.constant is not None:
            return np.full(n, self.constant, self.dtype)
        if self.table is None:
            d = self.sampler.draw(rng, n)
            steps = np.floor(d * self.r + 0.5)
            np.maximum(steps, 1.0, out=steps)
            return steps.astype(self.dtype)
        slot = self._slots(rng, n)
        out = np.take(self.table, slot)
        rest, steps = self._remainders(rng, slot)
        out[rest] = steps
        return out.astype(self.dtype, copy=False)

    def draw_ms(self, rng: np.random.Generator | None, n: int) -> np.ndarray:
        """n delays in ms (float64): `steps_to_ms` of `draw`, the same numbers (when compiled, the lookup
        and the conversion in one pass of `kernels.delays_from_slots`)."""
        if self.table is None or not kernels.AVAILABLE:
            return steps_to_ms(self.draw(rng, n), self.dt)
        slot = self._slots(rng, n)
        out = np.empty(n)
        integral = self.r == round(self.r)
        if kernels.delays_from_slots(slot, self.table, self.n_main, self.r if integral else self.dt, integral,
                                     out):
            rest, steps = self._remainders(rng, slot)
            out[rest] = steps_to_ms(steps, self.dt)
        return out

    def _slots(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n table slots: the stream's raw 64-bit words as four little-endian 16-bit slots each."""
        raw = rng.bit_generator.random_raw((n + 3) // 4)
        if not np.little_endian:
            raw = raw.astype("<u8")
        return raw.view("<u2")[:n]

    def _remainders(self, rng: np.random.Generator, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions of the slots beyond the table's equally likely ones and their steps (drawn from the
        remainders)."""
        rest = np.flatnonzero(slot >= self.n_main) if self.n_main < self.table.size else np.empty(0, np.int64)
        if not rest.size:
            return rest, np.empty(0, np.int64)
        k = np.searchsorted(self.rest_cdf, rng.random(rest.size), side="right")
        return rest, self.first + np.minimum(k, self.table_size - 1)


def round_delay(d: float, dt: float) -> float:
    return float(round_delays(np.array([d]), dt)[0])
