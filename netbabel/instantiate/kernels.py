"""Compiled loops (numba) for what numpy can only do with a sort: a SONATA index built by counting.

Used only for large models (see `writer.COMPILED_EDGES`): importing numba costs about 0.4 s of CPU, more
than these loops save on a small one. Compiled functions are cached on disk
(`cache=True`) and release the GIL, so an index is built while other threads draw and write.

The index of a column of node ids in edge order (SONATA ``indices/*``): every maximal run of equal ids
(consecutive edges of one node) is one range [first edge, last edge + 1), and a node's ranges are listed
in edge order, which is the order of a stable sort of the edges by node id. `index_ranges` gets it with
two counting passes (a least-significant-digit radix sort) instead of a sort: edges are first spread by
the low bits of their node id, then each is placed at its node's next free range. Each pass writes to a
few dozen places at a time, so it works in the cache; one direct pass over tens of thousands of nodes
would miss it at every edge (measured: 4.5 + 2.5 ns per edge against 10.4).
"""

from __future__ import annotations

import numba
import numpy as np

LOW_BITS = 6  # bits of the node id the first pass spreads by (64 places)
RUN_FLAG = np.uint64(1 << 63)  # marks an edge that continues its node's run (the same node as the edge before)


@numba.njit(cache=True, nogil=True)
def count_runs(keys: np.ndarray, counts: np.ndarray) -> int:
    """counts[node] += the runs of `node` in `keys`; returns the number of runs."""
    runs = 0
    previous = -1
    for e in range(keys.size):
        k = np.int64(keys[e])
        if k != previous:
            counts[k] += 1
            runs += 1
            previous = k
    return runs


@numba.njit(cache=True, nogil=True)
def place_runs(keys: np.ndarray, first: int, stop: int, free: np.ndarray, ranges: np.ndarray,
               scratch: np.ndarray) -> None:
    """Place the edges first..stop-1 of `keys` in `ranges` (one row per run of the whole column, grouped by
    node in node order, in edge order within a node). free: each node's next free row (`node_slots`),
    advanced; scratch: uint64, at least stop - first. Needs fewer than 2^32 edges and 2^31 nodes (an edge
    and its node share a uint64)."""
    mask = (1 << LOW_BITS) - 1
    n_high = free.size >> LOW_BITS
    low_free = np.zeros(mask + 1, np.int64)  # first pass: next place of each low digit
    for e in range(first, stop):
        low_free[np.int64(keys[e]) & mask] += 1
    total = 0
    for d in range(mask + 1):
        c = low_free[d]
        low_free[d] = total
        total += c
    previous = np.int64(keys[first - 1]) if first > 0 else -1
    for e in range(first, stop):
        k = np.int64(keys[e])
        d = k & mask
        slot = low_free[d]
        low_free[d] = slot + 1
        item = np.uint64((k << 32) | e)
        if k == previous:
            item |= RUN_FLAG
        scratch[slot] = item
        previous = k
    for r in range(stop - first):  # second pass: each edge to its node's next free row
        item = scratch[r]
        e = np.int64(item & np.uint64(0xFFFFFFFF))
        node = np.int64((item & ~RUN_FLAG) >> np.uint64(32))
        i = (node & mask) * n_high + (node >> LOW_BITS)
        if item & RUN_FLAG:
            ranges[free[i] - 1, 1] = e + 1
        else:
            slot = free[i]
            free[i] = slot + 1
            ranges[slot, 0] = e
            ranges[slot, 1] = e + 1


def node_slots(counts: np.ndarray) -> np.ndarray:
    """The first row of every node's runs (`counts`: runs per node), stored digit-major as `place_runs` reads
    it: the nodes of one low digit adjacent, so that its second pass touches few cache lines."""
    mask = (1 << LOW_BITS) - 1
    n_high = max(1, (counts.size + mask) >> LOW_BITS)
    nodes = np.arange(counts.size)
    free = np.zeros((mask + 1) * n_high, np.int64)
    free[(nodes & mask) * n_high + (nodes >> LOW_BITS)] = np.cumsum(counts) - counts
    return free


@numba.njit(cache=True, nogil=True)
def normal_fill(rng: np.random.Generator, mean: float, sd: float, low: float, high: float, out: np.ndarray) -> int:
    """out[i] = mean + sd * z_i, the numbers `rng.normal(mean, sd, out.size)` gives (numba runs numpy's
    algorithm on the same bit generator, whose state advances as numpy's would); returns how many fall
    outside [low, high]."""
    outside = 0
    for i in range(out.size):
        x = mean + sd * rng.standard_normal()
        out[i] = x
        if x < low or x > high:
            outside += 1
    return outside


@numba.njit(cache=True, nogil=True)
def delays_from_slots(slots: np.ndarray, table: np.ndarray, n_main: int, factor: float, divide: bool,
                      out: np.ndarray) -> int:
    """out[i] = table[slots[i]] / factor (or * factor), in ms: `values.StepSampler`'s table lookup and
    `values.steps_to_ms` in one pass, the same doubles. Returns how many slots are >= n_main (left to the
    caller: their steps come from the remainder draw)."""
    rest = 0
    for i in range(slots.size):
        s = slots[i]
        if s >= n_main:
            rest += 1
        steps = np.float64(table[s])
        out[i] = steps / factor if divide else steps * factor
    return rest
