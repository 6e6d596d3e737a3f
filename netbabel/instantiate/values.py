"""Random streams, per-edge values (weights, delays) and the delay grid.

Random numbers
--------------
Every random number comes from a numpy ``Generator(PCG64)`` seeded by
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
"""

from __future__ import annotations

import math

import numpy as np

from netbabel.description.model import Description, Distribution, Quantity
from netbabel.errors import NetbabelError

# spawn-key kinds
CONNECT = 1
WEIGHT = 2
DELAY = 3
POISSON = 4
V_INIT = 5
POSITIONS = 6
SPLIT = 7  # projection-level splits of fixed_total_number / fixed_outdegree counts over blocks

MAX_REDRAW_ROUNDS = 1000


def generator(seed: int, kind: int, index: int, *more: int) -> np.random.Generator:
    """The Generator of one (kind, index, block...) stream."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=(kind, index, *more))))


def is_constant(q: Quantity | None) -> bool:
    return not isinstance(q, Distribution)


class ValueSampler:
    """Draws n values of one quantity (number, expression or distribution), evaluated once."""

    def __init__(self, description: Description, q: Quantity, where: str, what: str):
        self.where, self.what = where, what
        if not isinstance(q, Distribution):
            self.constant: float | None = description.value(q)
            return
        self.constant = None
        self.kind = q.distribution
        ev = lambda v: None if v is None else description.value(v)  # noqa: E731
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
        """n values (float64); bounded normal/lognormal are redrawn or clipped."""
        if self.constant is not None:
            return np.full(n, self.constant)
        x = self._raw(rng, n)
        if self.kind == "uniform" or (self.low == -math.inf and self.high == math.inf):
            return x
        if self.bounds == "clip":
            return np.clip(x, self.low, self.high, out=x)
        bad = np.flatnonzero((x < self.low) | (x > self.high))
        rounds = 0
        while bad.size:
            rounds += 1
            if rounds > MAX_REDRAW_ROUNDS:
                raise NetbabelError(f"{self.what}: almost no values of the {self.kind} distribution fall in "
                                    f"[{self.low}, {self.high}]; redrawing does not terminate", pointer=self.where)
            y = self._raw(rng, bad.size)
            x[bad] = y
            bad = bad[(y < self.low) | (y > self.high)]
        return x


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


def round_delay(d: float, dt: float) -> float:
    return float(round_delays(np.array([d]), dt)[0])
