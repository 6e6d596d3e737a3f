"""SONATA HDF5 writers: edge populations (streamed, with indices), nodes and spike trains.

Edge population layout (`/edges/<name>/`), as libsonata reads it:
``source_node_id`` / ``target_node_id`` (uint32 when the ids fit, else uint64; attribute
``node_population``), ``edge_type_id`` (int64) and ``edge_group_id`` (int64, all 0),
``edge_group_index`` (uint32/uint64, 0..n-1), ``0/syn_weight`` and ``0/delay`` (float64,
ms), and ``indices/{source_to_target,target_to_source}/{node_id_to_ranges,
range_to_edge_id}`` (uint64). The constant columns are chunked datasets left at their
fill value, so they take no disk space. Edges appended in target order make the
target index one range per node; the source index is built afterwards from the
written column in bands of source ids (bounded memory).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

CHUNK = 1 << 18  # elements per HDF5 chunk of the per-edge columns
CACHE_BYTES = 64 << 20  # HDF5 chunk cache per open file: partly written chunks stay in memory
READ_CHUNK = 1 << 22  # elements read at once when building an index
BAND_EDGES = 1 << 23  # edges held in memory at once when building an index
BAND_NODES = 1 << 16  # node ids per band (uint16 keys: numpy's radix sort)


SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")


def chunk_length(expected: float | None) -> int:
    """HDF5 chunk length for a column of about `expected` elements (small files stay small)."""
    if expected is None:
        return CHUNK
    n = 1024
    while n < expected and n < CHUNK:
        n *= 2
    return n


def id_dtype(n: int) -> type:
    return np.uint32 if n < 2**32 else np.uint64


class EdgePopulationWriter:
    """Append edges (in any order; in target order for the fast target index) and finish with the indices."""

    def __init__(self, h5: h5py.File, name: str, source_population: str, target_population: str,
                 n_source: int, n_target: int, edge_type_id: int = 0, extra_float_attributes: tuple[str, ...] = (),
                 expected_size: float | None = None):
        self.chunk = chunk_length(expected_size)
        self.group = h5.require_group("edges").create_group(name)
        self.n_source, self.n_target = n_source, n_target
        self.edge_type_id = edge_type_id
        self.size = 0
        self.target_sorted = True
        self._last_target = -1
        self._sources_in_memory: list[np.ndarray] | None = []  # kept for the source index while small
        self.source_counts = np.zeros(n_source, np.int64)
        self.target_counts = np.zeros(n_target, np.int64)
        g = self.group
        self.src = self._column(g, "source_node_id", id_dtype(n_source))
        self.src.attrs["node_population"] = source_population
        self.tgt = self._column(g, "target_node_id", id_dtype(n_target))
        self.tgt.attrs["node_population"] = target_population
        self.gidx = self._column(g, "edge_group_index", np.uint32)
        attrs = g.create_group("0")
        self.weight = self._column(attrs, "syn_weight", np.float64)
        self.delay = self._column(attrs, "delay", np.float64)
        self.delay.attrs["units"] = "ms"
        self.extra = {k: self._column(attrs, k, np.float64) for k in extra_float_attributes}

    def _column(self, g: h5py.Group, name: str, dtype) -> h5py.Dataset:
        return g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(self.chunk,))

    def append(self, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, delays: np.ndarray,
               **extra: np.ndarray) -> None:
        n = int(sources.size)
        if n == 0:
            return
        a, b = self.size, self.size + n
        if b >= 2**32 and self.gidx.dtype == np.uint32:
            self._widen_group_index()
        for ds, values in ((self.src, sources), (self.tgt, targets), (self.weight, weights), (self.delay, delays),
                           (self.gidx, np.arange(a, b, dtype=self.gidx.dtype)), *((self.extra[k], v) for k, v in extra.items())):
            ds.resize((b,))
            ds[a:b] = values.astype(ds.dtype, copy=False)
        if self.target_sorted:
            if targets[0] < self._last_target or np.any(targets[1:] < targets[:-1]):
                self.target_sorted = False
            self._last_target = int(targets[-1])
        if self._sources_in_memory is not None:
            if b <= BAND_EDGES:
                self._sources_in_memory.append(sources.astype(self.src.dtype, copy=True))
            else:
                self._sources_in_memory = None
        self.source_counts += np.bincount(sources, minlength=self.n_source)
        self.target_counts += np.bincount(targets, minlength=self.n_target)
        self.size = b

    def _widen_group_index(self) -> None:
        old = self.gidx
        data = old[()]
        del self.group["edge_group_index"]
        self.gidx = self._column(self.group, "edge_group_index", np.uint64)
        self.gidx.resize((data.size,))
        self.gidx[:] = data

    def finish(self) -> None:
        """Constant columns and both indices."""
        g = self.group
        for name, value in (("edge_type_id", self.edge_type_id), ("edge_group_id", 0)):
            g.create_dataset(name, shape=(self.size,), maxshape=(None,), dtype=np.int64, chunks=(self.chunk,),
                             fillvalue=value)
        idx = g.create_group("indices")
        if self.target_sorted:
            _write_sorted_index(idx.create_group("target_to_source"), self.target_counts)
        else:
            _write_index(idx.create_group("target_to_source"), self.tgt, self.target_counts)
        column = self.src
        if self._sources_in_memory is not None:
            column = np.concatenate(self._sources_in_memory) if self._sources_in_memory else np.empty(0, np.uint32)
            self._sources_in_memory = None
        _write_index(idx.create_group("source_to_target"), column, self.source_counts)


def _write_sorted_index(g: h5py.Group, counts: np.ndarray) -> None:
    """Index of a column sorted by node: one range per node with edges."""
    ends = np.cumsum(counts, dtype=np.uint64)
    has = counts > 0
    ranges = np.stack([ends[has] - counts[has].astype(np.uint64), ends[has]], axis=1)
    r_end = np.cumsum(has, dtype=np.uint64)
    node = np.stack([r_end - has, r_end], axis=1)
    g.create_dataset("node_id_to_ranges", data=node.reshape(-1, 2).astype(np.uint64))
    g.create_dataset("range_to_edge_id", data=ranges.reshape(-1, 2).astype(np.uint64))


def _bands(counts: np.ndarray) -> list[tuple[int, int]]:
    cum = np.cumsum(counts)
    bands, lo = [], 0
    while lo < counts.size:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + BAND_EDGES, side="right"))
        hi = min(max(hi, lo + 1), lo + BAND_NODES, counts.size)
        bands.append((lo, hi))
        lo = hi
    return bands


def _band_edges(column, lo: int, hi: int, n_nodes: int, total: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(edge ids or None for all edges, stable order by node) of the edges whose node is in [lo, hi)."""
    key = np.uint16 if hi - lo <= BAND_NODES else np.int64
    if lo == 0 and hi == n_nodes:
        nodes = np.asarray(column[:], dtype=key) if total else np.empty(0, key)
        return None, np.argsort(nodes, kind="stable")
    ids_parts, node_parts = [], []
    for e0 in range(0, total, READ_CHUNK):
        col = column[e0:e0 + READ_CHUNK]
        sel = np.flatnonzero((col >= lo) & (col < hi))
        ids_parts.append(sel + e0)
        node_parts.append((col[sel] - np.asarray(lo, col.dtype)).astype(key))
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int64)
    nodes = np.concatenate(node_parts) if node_parts else np.empty(0, key)
    return ids, np.argsort(nodes, kind="stable")


def _ranges(sorted_ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranges [start, stop) of consecutive edge ids within each node's group, and ranges per node.

    Each edge starts a range unless it directly follows the previous edge id of the same node
    (rare when edges are sorted by the other end), so the merges are found first.
    """
    n = sorted_ids.size
    counts = counts.astype(np.int64)
    if n == 0:
        return np.empty((0, 2), np.uint64), counts
    follows = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1] + 1) + 1  # candidates to merge with i-1
    if follows.size:
        node_start = np.cumsum(counts) - counts
        follows = follows[~np.isin(follows, node_start)]  # the first edge of a node always starts a range
    ranges = np.empty((n - follows.size, 2), np.uint64)
    if follows.size == 0:
        ranges[:, 0] = sorted_ids
        ranges[:, 1] = sorted_ids
    else:
        keep = np.ones(n, bool)
        keep[follows] = False
        starts = np.flatnonzero(keep)
        ranges[:, 0] = sorted_ids[starts]
        ranges[:-1, 1] = sorted_ids[starts[1:] - 1]
        ranges[-1, 1] = sorted_ids[-1]
        merged_node = np.searchsorted(np.cumsum(counts), follows, side="right")
        counts = counts - np.bincount(merged_node, minlength=counts.size)
    ranges[:, 1] += 1
    return ranges, counts


def _write_index(g: h5py.Group, column: h5py.Dataset | np.ndarray, counts: np.ndarray) -> None:
    """node_id_to_ranges / range_to_edge_id of any column: consecutive edge ids of one node form one range.

    Works in bands of node ids (at most BAND_NODES ids and about BAND_EDGES edges each), reading the
    column once per band, so memory stays bounded for any size.
    """
    n_nodes, total = counts.size, int(column.shape[0])
    node_ranges = np.zeros((n_nodes, 2), np.uint64)
    out = g.create_dataset("range_to_edge_id", shape=(0, 2), maxshape=(None, 2), dtype=np.uint64,
                           chunks=(chunk_length(total) // 2, 2))
    n_ranges = 0
    for lo, hi in _bands(counts):
        ids, order = _band_edges(column, lo, hi, n_nodes, total)
        sorted_ids = order if ids is None else ids[order]  # edge ids grouped by node, ascending within a node
        band_counts = counts[lo:hi]
        ranges, per_node = _ranges(sorted_ids, band_counts)
        ends = n_ranges + np.cumsum(per_node)
        node_ranges[lo:hi, 0] = ends - per_node
        node_ranges[lo:hi, 1] = ends
        out.resize((n_ranges + ranges.shape[0], 2))
        out[n_ranges:] = ranges
        n_ranges += ranges.shape[0]
    g.create_dataset("node_id_to_ranges", data=node_ranges)


def write_nodes(path: Path, populations: dict[str, tuple[int, np.ndarray | None]]) -> None:
    """A SONATA nodes file: {population: (size, positions N x 3 or None)}, node_type_id 0 (x, y, z in um)."""
    with h5py.File(path, "w") as f:
        root = f.create_group("nodes")
        for name, (n, xyz) in populations.items():
            g = root.create_group(name)
            g.create_dataset("node_type_id", data=np.zeros(n, np.int64))
            g.create_dataset("node_group_id", data=np.zeros(n, np.int64))
            g.create_dataset("node_group_index", data=np.arange(n, dtype=np.uint64))
            attrs = g.create_group("0")
            if xyz is not None:
                for axis, key in enumerate("xyz"):
                    attrs.create_dataset(key, data=xyz[:, axis])


class SpikeWriter:
    """Streamed SONATA spikes: /spikes/<population>/{node_ids, timestamps (ms)}, sorted by id."""

    def __init__(self, h5: h5py.File, population: str, expected_size: float | None = None):
        chunk = chunk_length(expected_size)
        root = h5.require_group("spikes")
        root.attrs["magic"] = np.uint32(0x0A7A)
        self.group = root.create_group(population)
        self.group.attrs.create("sorting", 1, dtype=SORTING)
        self.ids = self.group.create_dataset("node_ids", shape=(0,), maxshape=(None,), dtype=np.uint64,
                                             chunks=(chunk,))
        self.times = self.group.create_dataset("timestamps", shape=(0,), maxshape=(None,), dtype=np.float64,
                                               chunks=(chunk,))
        self.times.attrs["units"] = "ms"
        self.size = 0

    def append(self, node_ids: np.ndarray, times: np.ndarray) -> None:
        n = int(node_ids.size)
        if n == 0:
            return
        b = self.size + n
        for ds, v in ((self.ids, node_ids), (self.times, times)):
            ds.resize((b,))
            ds[self.size:b] = v.astype(ds.dtype, copy=False)
        self.size = b
