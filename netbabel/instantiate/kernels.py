"""Compiled loops for what numpy does slowly or only with a sort (the C extension `_kernels`, built at
install; without a C compiler `AVAILABLE` is False and the callers use numpy, with identical results).

- `normal_fill(rng, mean, sd, low, high, out)`: out = mean + sd * z with z from numpy's own
  `random_standard_normal` on the Generator's bit generator: the numbers `rng.normal(mean, sd, n)`
  gives, the stream left where numpy leaves it; returns how many fall outside [low, high].
- `integers(rng, high, n)`: `rng.integers(0, high, n, dtype=np.uint32)`, the same numbers and the
  same stream state (numpy's Lemire method on the 32-bit halves of the bit generator's words).
- `delays_from_slots(slots, table, n_main, factor, divide, out)`: a delay table lookup and the steps ->
  ms conversion in one pass (see `values.StepSampler`); returns how many slots are >= n_main.
- `count_runs(keys, counts)` and `place_runs(keys, first, stop, free, ranges, scratch)`: a SONATA index
  by counting instead of sorting.

The index of a column of node ids in edge order (SONATA ``indices/*``): every maximal run of equal ids
(consecutive edges of one node) is one range [first edge, last edge + 1), and a node's ranges are listed
in edge order, which is the order of a stable sort of the edges by node id. `count_runs` counts each
node's runs; `place_runs` then places edges in two passes (a least-significant-digit radix sort): edges
are spread by the low LOW_BITS bits of their node id, then each is placed at its node's next free range
(`node_slots`, stored digit-major so that the second pass touches few cache lines). Each pass writes to a
few hundred places at a time, so it works in the cache, where one direct pass over tens of thousands of
nodes would miss it at every edge. Limits: fewer than 2^32 edges and 2^31 nodes.
"""

from __future__ import annotations

import numpy as np

try:
    from netbabel.instantiate import _kernels
except ImportError:  # built without a C compiler
    _kernels = None

AVAILABLE = _kernels is not None
LOW_BITS = _kernels.LOW_BITS if AVAILABLE else 6


def normal_fill(rng: np.random.Generator, mean: float, sd: float, low: float, high: float,
                out: np.ndarray) -> int:
    with rng.bit_generator.lock:
        return _kernels.normal_fill(rng.bit_generator.capsule, mean, sd, low, high, out)


def integers(rng: np.random.Generator, high: int, n: int) -> np.ndarray:
    bits = rng.bit_generator
    if high < 2 or not isinstance(bits, (np.random.PCG64, np.random.SFC64)):
        return rng.integers(0, high, n, dtype=np.uint32)  # (high 1 draws nothing)
    out = np.empty(n, np.uint32)
    if n == 0:
        return out
    with bits.lock:
        state = bits.state
        buffer = _kernels.bounded_uint32(bits.capsule, high, out, state["has_uint32"], state["uinteger"])
        state = bits.state  # the generator's words drawn; its buffer of a 32-bit half as numpy leaves it
        state["has_uint32"], state["uinteger"] = buffer
        bits.state = state
    return out


def delays_from_slots(slots: np.ndarray, table: np.ndarray, n_main: int, factor: float, divide: bool,
                      out: np.ndarray) -> int:
    return _kernels.delays_from_slots(slots, table, n_main, factor, divide, out)


def count_runs(keys: np.ndarray, counts: np.ndarray) -> int:
    return _kernels.count_runs(keys, counts)


def place_runs(keys: np.ndarray, first: int, stop: int, free: np.ndarray, ranges: np.ndarray,
               scratch: np.ndarray) -> None:
    _kernels.place_runs(keys, first, stop, free, ranges, scratch)


def node_slots(counts: np.ndarray) -> np.ndarray:
    """The first range of every node (`counts`: ranges per node), digit-major as `place_runs` reads it."""
    mask = (1 << LOW_BITS) - 1
    n_high = max(1, (counts.size + mask) >> LOW_BITS)
    nodes = np.arange(counts.size)
    free = np.zeros((mask + 1) * n_high, np.int64)
    free[(nodes & mask) * n_high + (nodes >> LOW_BITS)] = np.cumsum(counts) - counts
    return free
