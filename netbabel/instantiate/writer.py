"""SONATA HDF5 writers: edge populations (streamed, with indices), nodes and spike trains.

Edge population layout (`/edges/<name>/`), as libsonata reads it:
``source_node_id`` / ``target_node_id`` (uint32 when the ids fit, else uint64; attribute
``node_population``), ``edge_type_id`` (int64) and ``edge_group_id`` (int64, all 0),
``edge_group_index`` (uint32/uint64, 0..n-1), ``0/syn_weight`` and ``0/delay`` (float64,
ms), and ``indices/{source_to_target,target_to_source}/{node_id_to_ranges,
range_to_edge_id}`` (uint32, uint64 beyond 2^32 edges).

Bytes on disk per edge: 4 + 4 node ids, 8 + 8 weight and delay, 8 for the source index
(one range per edge: edges are sorted by target, so a source's edges are rarely adjacent).
The per-edge columns are contiguous datasets written once (no chunking, no fill) when the
edge count is known in advance (`exact_size`), else chunked and grown; large ones (and the source
index's ranges) are written with O_DIRECT when the file was opened with FILE_ALIGNMENT (see
`_DirectColumn`). ``edge_type_id`` and
``edge_group_id`` are contiguous datasets never written (HDF5 allocates no storage and reads
return their fill value), and ``edge_group_index``
(0..n-1) is written as deflate-compressed chunks assembled from cached pieces: none of
them takes measurable space or time. Edges appended in target order make the target index
one range per node; for the source index the source ids are kept in memory (2 bytes per edge for
populations up to 65536 cells, in a pooled page-aligned buffer) and at `finish` placed by the
compiled counting passes of `kernels.place_runs` (or, without the C extension, a stable sort);
beyond MEMORY_EDGES edges they are read back from the file in bands of source ids.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
import zlib
from pathlib import Path

import h5py
import numpy as np

from netbabel.instantiate import kernels

CHUNK = 1 << 18  # elements per HDF5 chunk of the per-edge columns (unknown size)
CACHE_BYTES = 64 << 20  # HDF5 chunk cache per open file: partly written chunks stay in memory
READ_CHUNK = 1 << 22  # elements read at once when building an index from the file
BAND_EDGES = 1 << 21  # edges per band when building an index (bounded memory; temporaries small enough
#                        for malloc to reuse them instead of mapping fresh pages for every band)
BAND_NODES = 1 << 16  # node ids per band (uint16 keys: numpy's radix sort)
SORT_EDGES = 1 << 26  # up to this many edges the source ids are sorted at once
MEMORY_EDGES = 1 << 28  # up to this many edges the source ids are kept in memory for the index
GROUP_INDEX_CHUNK = 1 << 16  # elements per compressed chunk of edge_group_index


SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")


RECYCLE_BYTES = 64 << 20  # written bytes between two page-cache recycling calls
DIRECT_ALIGN = 4096  # O_DIRECT alignment of file offsets, lengths and memory
DIRECT_BUFFER = 8 << 20  # bytes per O_DIRECT write (one staging buffer per column)
DIRECT_MIN_BYTES = 1 << 20  # columns at least this large are written with O_DIRECT
DIRECT_PIECE = 64 << 20  # bytes per O_DIRECT write straight from an array (`_write_aligned`)
FILE_ALIGNMENT = {"alignment_threshold": DIRECT_MIN_BYTES, "alignment_interval": DIRECT_ALIGN}  # h5py.File kwargs


def direct_io_possible(h5: h5py.File) -> bool:
    """Whether columns of this file can be written with O_DIRECT (Linux, sec2 driver, aligned datasets)."""
    if not hasattr(os, "O_DIRECT") or h5.driver != "sec2" or h5.mode == "r":
        return False
    threshold, interval = h5.id.get_access_plist().get_alignment()
    return interval % DIRECT_ALIGN == 0 and threshold <= DIRECT_MIN_BYTES


def _anonymous(nbytes: int, huge: bool = True) -> mmap.mmap:
    """Page-aligned private anonymous memory, in huge pages where the kernel offers them (`huge`), else in
    small pages.

    Huge pages suit memory written all over (a scatter touches few of them: few TLB misses) and the
    O_DIRECT staging buffers (a write pins its pages: one huge page costs the kernel what one small page
    does). Memory read and written in order is cheaper in small pages: on this virtual machine the kernel
    spends ~2.5 ns per byte zeroing a huge page at its first touch, ~0.7 ns for small pages.
    """
    buffer = mmap.mmap(-1, -(-nbytes // DIRECT_ALIGN) * DIRECT_ALIGN, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_HUGEPAGE" if huge else "MADV_NOHUGEPAGE", None)
    if advice is not None:
        try:
            buffer.madvise(advice)
        except OSError:
            pass
    return buffer


_BUFFERS: list[mmap.mmap] = []  # staging buffers, reused (fresh memory costs more than the copy)


class _DirectColumn:
    """The raw data of one contiguous dataset, written with O_DIRECT in aligned pieces.

    Writing through the page cache costs the kernel ~3 ns per byte on virtual machines (every page
    is fresh memory the host backs on first touch) and the data reach the disk only later; O_DIRECT
    hands the pages of a reused staging buffer straight to the disk. The dataset is allocated at
    creation (offset known, aligned by the file's alignment); the last, unaligned bytes go through
    the page cache. Falls back to ordinary writes where the file system refuses O_DIRECT.
    """

    def __init__(self, ds: h5py.Dataset, direct_fd: int, plain_fd: int, dtype=None):
        self.offset = int(ds.id.get_offset())
        self.dtype = ds.dtype if dtype is None else np.dtype(dtype)
        self.fd, self.plain_fd = direct_fd, plain_fd
        self.buffer = _BUFFERS.pop() if _BUFFERS else _anonymous(DIRECT_BUFFER)
        self.view = np.frombuffer(self.buffer, np.uint8)
        self.filled = 0  # bytes in the buffer
        self.done = 0  # bytes written to the file

    def append(self, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, self.dtype).reshape(-1).view(np.uint8)
        pos = 0
        while pos < data.size:
            k = min(DIRECT_BUFFER - self.filled, data.size - pos)
            self.view[self.filled:self.filled + k] = data[pos:pos + k]
            self.filled += k
            pos += k
            if self.filled == DIRECT_BUFFER:
                self._flush(DIRECT_BUFFER)

    def _flush(self, n: int) -> None:
        """Write the first n bytes of the buffer (n a multiple of DIRECT_ALIGN) and keep the rest."""
        piece = memoryview(self.buffer)[:n]
        self.fd = _direct_write(self.fd, self.plain_fd, piece, self.offset + self.done)
        piece.release()
        self.done += n
        rest = self.filled - n
        if rest:
            self.view[:rest] = self.view[n:self.filled].copy()
        self.filled = rest

    def close(self) -> None:
        """Write what is left (aligned part with O_DIRECT, the tail through the page cache)."""
        aligned = self.filled - self.filled % DIRECT_ALIGN
        if aligned:
            self._flush(aligned)
        if self.filled:
            tail = bytes(self.view[:self.filled])
            if os.pwrite(self.plain_fd, tail, self.offset + self.done) != len(tail):
                raise OSError(errno.EIO, "short write")
            self.done += self.filled
            self.filled = 0
        _BUFFERS.append(self.buffer)
        self.buffer = self.view = None


def _direct_write(fd: int, plain_fd: int, piece: memoryview, offset: int) -> int:
    """One aligned piece written with O_DIRECT (`fd`); where the file system refuses O_DIRECT (EINVAL),
    through the page cache (`plain_fd`). Returns the descriptor to use from now on."""
    try:
        written = os.pwritev(fd, [piece], offset)
    except OSError as exc:
        if exc.errno != errno.EINVAL or fd == plain_fd:
            raise
        fd = plain_fd
        written = os.pwritev(fd, [piece], offset)
    if written != piece.nbytes:
        raise OSError(errno.EIO, f"short write ({written} of {piece.nbytes} bytes)")
    return fd


def _write_aligned(ds: h5py.h5d.DatasetID | h5py.Dataset, fds: list[int], data: np.ndarray) -> None:
    """The whole raw data of a contiguous dataset allocated at creation, from page-aligned memory (a pooled
    buffer): with O_DIRECT in pieces, without a staging copy, the unaligned tail through the page cache."""
    dsid = ds.id if isinstance(ds, h5py.Dataset) else ds
    offset, raw = int(dsid.get_offset()), memoryview(data.reshape(-1).view(np.uint8))
    fd, plain = fds
    if offset % DIRECT_ALIGN:
        fd = plain
    done, aligned = 0, raw.nbytes - raw.nbytes % DIRECT_ALIGN
    while done < aligned:
        n = min(DIRECT_PIECE, aligned - done)
        fd = _direct_write(fd, plain, raw[done:done + n], offset + done)
        done += n
    if done < raw.nbytes:
        tail = raw[done:]
        if os.pwrite(plain, tail, offset + done) != tail.nbytes:
            raise OSError(errno.EIO, "short write")


class PageCacheRecycler:
    """Hands an output file's pages to writeback early and drops the ones already on disk (Linux).

    Every RECYCLE_BYTES written, `posix_fadvise(DONTNEED)` over the whole file starts the writeback of
    dirty pages and frees the clean ones, so new writes reuse recently freed memory instead of fresh
    pages: on virtual machines a fresh page costs ~3 ns per byte of kernel time (the host backs it on
    first touch), a recycled one ~0.3 ns, and the disk works from the start instead of after the dirty
    limit. Nothing is lost or changed: dirty pages are never dropped, only written.
    """

    def __init__(self, h5: h5py.File):
        self.fd = None
        if hasattr(os, "posix_fadvise") and h5.driver == "sec2":
            try:
                self.fd = int(h5.id.get_vfd_handle())
            except (TypeError, ValueError, RuntimeError):
                self.fd = None
        self.pending = 0

    def written(self, nbytes: int) -> None:
        self.pending += nbytes
        if self.fd is None or self.pending < RECYCLE_BYTES:
            return
        self.pending = 0
        try:
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            self.fd = None


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


# -- low-level creation: h5py's high-level API costs ~3x more per object, which dominates small populations

_TYPES: dict = {}


def _type(dtype) -> h5py.h5t.TypeID:
    dtype = np.dtype(dtype)
    if dtype not in _TYPES:
        _TYPES[dtype] = h5py.h5t.py_create(dtype)
    return _TYPES[dtype]


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    return h5py.Group(h5py.h5g.create(parent.id, name.encode()))


_DCPLS: dict = {}


def _dcpl(dtype, chunks: tuple | None, fill, deflate: bool, early: bool = False) -> h5py.h5p.PropDCID:
    key = (np.dtype(dtype), chunks, fill, deflate, early)
    if key not in _DCPLS:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        if early:
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        if chunks is not None:
            dcpl.set_chunk(chunks)
            if deflate:
                dcpl.set_shuffle()
                dcpl.set_deflate(1)
        if fill is not None:
            dcpl.set_fill_value(np.array(fill, dtype))
        elif chunks is None:
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        _DCPLS[key] = dcpl
    return _DCPLS[key]


def _dataset(parent: h5py.Group, name: str, dtype, shape: tuple, chunks: tuple | None = None, fill=None,
             deflate: bool = False, data: np.ndarray | None = None, early: bool = False,
             wrap: bool = True) -> h5py.Dataset | h5py.h5d.DatasetID:
    """A dataset: contiguous (written once, never filled; with `fill` and never written it takes no space and
    reads as the fill value), or chunked and growable (`chunks`). `wrap=False`: the low-level id (h5py's
    Dataset object costs several HDF5 calls to build)."""
    dcpl = _dcpl(dtype, chunks, fill, deflate, early)
    if chunks is None:
        space = h5py.h5s.create_simple(shape)
    else:
        space = h5py.h5s.create_simple(shape, (h5py.h5s.UNLIMITED,) + tuple(shape[1:]))
    dsid = h5py.h5d.create(parent.id, name.encode(), _type(dtype), space, dcpl=dcpl)
    if data is not None and data.size:
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data, dtype))
    return h5py.Dataset(dsid) if wrap else dsid


_TEXT = h5py.string_dtype()
_TEXT_TYPES: list = []


def _text_attribute(obj: h5py.HLObject, name: str, value: str) -> None:
    """A scalar variable-length UTF-8 string attribute (as h5py writes a str)."""
    if not _TEXT_TYPES:
        _TEXT_TYPES.extend((h5py.h5t.py_create(_TEXT, logical=True), h5py.h5t.py_create(_TEXT)))
    aid = h5py.h5a.create(obj.id, name.encode(), _TEXT_TYPES[0], h5py.h5s.create(h5py.h5s.SCALAR))
    aid.write(np.array(value, dtype=_TEXT), mtype=_TEXT_TYPES[1])


def _write(ds: h5py.Dataset, start: int, values: np.ndarray, dtype=None) -> None:
    """values -> ds[start:start + n] (1-D), without h5py's selection machinery."""
    values = np.ascontiguousarray(values, ds.dtype if dtype is None else dtype)
    fspace = ds.id.get_space()
    fspace.select_hyperslab((start,), (values.size,))
    ds.id.write(h5py.h5s.create_simple((values.size,)), fspace, values)


def _key_dtype(n: int) -> type:
    return np.uint16 if n <= 1 << 16 else id_dtype(n)


class EdgePopulationWriter:
    """Append edges (in any order; in target order for the fast target index) and finish with the indices.

    With `exact_size` (the number of edges that will be appended) the columns are contiguous datasets.
    The source ids are kept in memory (2 bytes per edge up to 65536 sources) for the source index.
    """

    def __init__(self, h5: h5py.File, name: str, source_population: str, target_population: str,
                 n_source: int, n_target: int, edge_type_id: int = 0, extra_float_attributes: tuple[str, ...] = (),
                 expected_size: float | None = None, exact_size: int | None = None):
        self.exact = exact_size
        self.chunk = chunk_length(expected_size if exact_size is None else exact_size)
        self._direct = exact_size is not None and exact_size * 4 >= DIRECT_MIN_BYTES and direct_io_possible(h5)
        self._fds: list[int] = []
        if self._direct:
            try:
                self._fds = [os.open(h5.filename, os.O_WRONLY | os.O_DIRECT), os.open(h5.filename, os.O_WRONLY)]
            except OSError:
                self._direct = False
        self._columns: dict[int, _DirectColumn] = {}  # by id() of the dataset object
        self._dtypes: dict[int, np.dtype] = {}
        edges = h5["edges"] if "edges" in h5 else _group(h5, "edges")
        self.group = _group(edges, name)
        self.n_source, self.n_target = n_source, n_target
        self.edge_type_id = edge_type_id
        self.size = 0
        self.target_sorted = True
        self._last_target = -1
        self._keys = _SourceKeys(n_source, exact_size)  # source ids for the source index (None: too many)
        self.target_counts = np.zeros(n_target, np.int64)
        g = self.group
        self.src = self._column(g, "source_node_id", id_dtype(n_source))
        _text_attribute(self.src, "node_population", source_population)
        self.tgt = self._column(g, "target_node_id", id_dtype(n_target))
        _text_attribute(self.tgt, "node_population", target_population)
        attrs = _group(g, "0")
        self.weight = self._column(attrs, "syn_weight", np.float64)
        self.delay = self._column(attrs, "delay", np.float64)
        _text_attribute(self.delay, "units", "ms")
        self.extra = {k: self._column(attrs, k, np.float64) for k in extra_float_attributes}

    def _column(self, g: h5py.Group, name: str, dtype) -> h5py.Dataset:
        if self.exact is not None:
            ds = _dataset(g, name, dtype, (self.exact,), early=self._direct)
            if self._direct:
                self._columns[id(ds)] = _DirectColumn(ds, *self._fds, dtype)
        else:
            ds = _dataset(g, name, dtype, (0,), chunks=(self.chunk,))
        self._dtypes[id(ds)] = np.dtype(dtype)
        return ds

    def append(self, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, delays: np.ndarray,
               **extra: np.ndarray) -> None:
        n = int(sources.size)
        if n == 0:
            return
        a, b = self.size, self.size + n
        if self.exact is not None and b > self.exact:
            raise ValueError(f"edge population {self.group.name}: more than the announced {self.exact} edges")
        for ds, values in ((self.src, sources), (self.tgt, targets), (self.weight, weights), (self.delay, delays),
                           *((self.extra[k], v) for k, v in extra.items())):
            if self.exact is None:
                ds.resize((b,))
            direct = self._columns.get(id(ds))
            if direct is not None:
                direct.append(values)
            else:
                _write(ds, a, values, self._dtypes[id(ds)])
        self._count_targets(np.asarray(targets))
        if self._keys is not None and not self._keys.append(a, sources):
            self._keys = None
        self.size = b

    def _count_targets(self, targets: np.ndarray) -> None:
        if self.target_sorted and (targets[0] < self._last_target or np.any(targets[1:] < targets[:-1])):
            self.target_sorted = False
        if self.target_sorted:
            lo, hi = int(targets[0]), int(targets[-1])
            edges = np.searchsorted(targets, np.arange(lo, hi + 2, dtype=targets.dtype))
            self.target_counts[lo:hi + 1] += np.diff(edges)
            self._last_target = hi
        else:
            self.target_counts += np.bincount(targets, minlength=self.n_target)

    def finish(self) -> None:
        """Constant columns, edge_group_index and both indices."""
        try:
            for column in self._columns.values():
                column.close()
            self._columns = {}
            self._finish()
        finally:
            for fd in self._fds:
                os.close(fd)
            self._fds = []

    def _finish(self) -> None:
        if self.exact is not None and self.size != self.exact:
            raise ValueError(f"edge population {self.group.name}: {self.size} edges appended, {self.exact} announced")
        g = self.group
        for name, value in (("edge_type_id", self.edge_type_id), ("edge_group_id", 0)):
            _dataset(g, name, np.int64, (self.size,), fill=value, wrap=False)  # never written: no space, reads `value`
        write_group_index(g, self.size)
        idx = _group(g, "indices")
        index_type = np.uint32 if self.size < 2**32 else np.uint64
        if self.target_sorted:
            _write_sorted_index(_group(idx, "target_to_source"), self.target_counts, index_type)
        else:
            _write_index(_group(idx, "target_to_source"), self.tgt, self.target_counts, index_type)
        keys, self._keys = self._keys, None
        source_index = _group(idx, "source_to_target")
        if keys is not None:
            column = keys.column(self.size)
            if kernels.AVAILABLE and self.size < 2**32 and self.n_source < 2**31:
                _write_compiled_index(source_index, column, self.n_source, index_type, self._fds or None)
            else:
                _write_index(source_index, column, np.bincount(column, minlength=self.n_source), index_type,
                             self._fds or None)
            del column
            keys.release()
        else:
            counts = np.zeros(self.n_source, np.int64)
            for e0 in range(0, self.size, READ_CHUNK):
                counts += np.bincount(self.src[e0:e0 + READ_CHUNK], minlength=self.n_source)
            _write_index(source_index, self.src, counts, index_type)


class _GroupIndexChunks:
    """Deflate streams of shuffled chunks of 0..n-1 (uint32 or uint64), assembled from cached pieces.

    With chunks of 2^16 elements, the shuffled bytes of chunk k are two fixed planes (bytes 0 and 1 of
    0..65535) followed by planes of one repeated byte (the higher bytes of k * 2^16). Each piece is a
    raw deflate stream ended by a full flush (no reference to earlier data), so the pieces concatenate
    into one valid zlib stream, closed by an empty final block and the Adler-32 of the data.
    """

    def __init__(self, itemsize: int):
        self.itemsize = itemsize
        j = np.arange(GROUP_INDEX_CHUNK, dtype=np.uint32)
        fixed = (j & 255).astype(np.uint8).tobytes() + (j >> 8).astype(np.uint8).tobytes()
        self.fixed, self.fixed_adler = self._deflate(fixed), zlib.adler32(fixed)
        self.planes: dict[int, tuple[bytes, bytes]] = {}

    @staticmethod
    def _deflate(data: bytes) -> bytes:
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    def _plane(self, byte: int) -> tuple[int, bytes]:
        """The Adler-32 and the deflate stream of a plane of one repeated byte."""
        if byte not in self.planes:
            data = bytes([byte]) * GROUP_INDEX_CHUNK
            self.planes[byte] = (zlib.adler32(data), self._deflate(data))
        return self.planes[byte]

    def chunk(self, k: int) -> bytes:
        base = k * GROUP_INDEX_CHUNK
        parts, adler = [b"\x78\x01", self.fixed], self.fixed_adler
        for p in range(2, self.itemsize):
            plane_adler, packed = self._plane((base >> (8 * p)) & 255)
            parts.append(packed)
            adler = adler32_combine(adler, plane_adler, GROUP_INDEX_CHUNK)
        parts += [b"\x03\x00", adler.to_bytes(4, "big")]
        return b"".join(parts)


ADLER_BASE = 65521


def adler32_combine(adler_a: int, adler_b: int, length_b: int) -> int:
    """The Adler-32 of a + b from those of a and b (length_b bytes), without reading the data.

    Adler-32 is (B << 16) | A with A = 1 + sum of the bytes and B = sum of the successive A values, both
    mod 65521. Appending b adds A_b - 1 to A, and adds to B both B_b and length_b times A_a - 1 (each of
    b's running sums starts A_a - 1 higher).
    """
    a_a, b_a = adler_a & 0xFFFF, adler_a >> 16
    a_b, b_b = adler_b & 0xFFFF, adler_b >> 16
    a = (a_a + a_b - 1) % ADLER_BASE
    b = (b_a + b_b + length_b * (a_a - 1)) % ADLER_BASE
    return (b << 16) | a


def write_group_index(g: h5py.Group, n: int) -> None:
    """`edge_group_index` = 0..n-1 (one group), as compressed chunks (shuffle + deflate) written directly."""
    dtype = np.dtype("<u4" if n < 2**32 else "<u8")
    ds = _dataset(g, "edge_group_index", dtype, (n,), chunks=(GROUP_INDEX_CHUNK,), deflate=True, wrap=False)
    chunks = _GROUP_INDEX_CHUNKS.get(dtype.itemsize)
    if chunks is None:
        chunks = _GROUP_INDEX_CHUNKS[dtype.itemsize] = _GroupIndexChunks(dtype.itemsize)
    for k in range(-(-n // GROUP_INDEX_CHUNK)):
        ds.write_direct_chunk((k * GROUP_INDEX_CHUNK,), chunks.chunk(k), 0)


_GROUP_INDEX_CHUNKS: dict[int, _GroupIndexChunks] = {}


def _write_sorted_index(g: h5py.Group, counts: np.ndarray, dtype=np.uint64) -> None:
    """Index of a column sorted by node: one range per node with edges."""
    ends = np.cumsum(counts, dtype=np.uint64)
    has = counts > 0
    ranges = np.stack([ends[has] - counts[has].astype(np.uint64), ends[has]], axis=1)
    r_end = np.cumsum(has, dtype=np.uint64)
    node = np.stack([r_end - has, r_end], axis=1)
    _dataset(g, "node_id_to_ranges", dtype, node.shape, data=node, wrap=False)
    _dataset(g, "range_to_edge_id", dtype, ranges.shape, data=ranges, wrap=False)


def _bands(counts: np.ndarray, band_edges: int, band_nodes: int) -> list[tuple[int, int]]:
    cum = np.cumsum(counts)
    bands, lo = [], 0
    while lo < counts.size:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + band_edges, side="right"))
        hi = min(max(hi, lo + 1), lo + band_nodes, counts.size)
        bands.append((lo, hi))
        lo = hi
    return bands


def _band_edges(column, lo: int, hi: int, total: int) -> np.ndarray:
    """Edge ids whose node is in [lo, hi), grouped by node, ascending within a node (a stable sort)."""
    key = np.uint16 if hi - lo <= BAND_NODES else np.int64
    ids_parts, node_parts = [], []
    for e0 in range(0, total, READ_CHUNK):
        col = column[e0:e0 + READ_CHUNK]
        sel = np.flatnonzero((col >= lo) & (col < hi))
        ids_parts.append(sel + e0)
        node_parts.append((col[sel] - np.asarray(lo, col.dtype)).astype(key))
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int64)
    nodes = np.concatenate(node_parts) if node_parts else np.empty(0, key)
    return ids[np.argsort(nodes, kind="stable")]


def _follows(sorted_ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Positions whose edge id directly follows the previous one of the same node (merged into its range)."""
    if sorted_ids.size == 0:
        return np.empty(0, np.int64)
    follows = np.flatnonzero(np.diff(sorted_ids) == 1) + 1  # candidates to merge with i-1
    if follows.size:
        node_start = np.cumsum(counts) - counts  # the first edge of a node always starts a range
        at = np.minimum(np.searchsorted(node_start, follows), node_start.size - 1)
        follows = follows[node_start[at] != follows]
    return follows


def _ranges(sorted_ids: np.ndarray, counts: np.ndarray, dtype=np.uint64,
            follows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ranges [start, stop) of consecutive edge ids within each node's group, and ranges per node.

    Each edge starts a range unless it directly follows the previous edge id of the same node
    (rare when edges are sorted by the other end), so the merges are found first.
    """
    n = sorted_ids.size
    counts = counts.astype(np.int64)
    if n == 0:
        return np.empty((0, 2), dtype), counts
    if follows is None:
        follows = _follows(sorted_ids, counts)
    starts = np.delete(sorted_ids, follows) if follows.size else sorted_ids
    ranges = np.empty((starts.size, 2), dtype)
    ranges[:, 0] = starts
    np.add(starts, 1, out=ranges[:, 1], casting="unsafe")
    if follows.size:
        # the range of position f - 1 has index f - 1 - (follows before f); runs of 3+ ids repeat an index
        np.add.at(ranges[:, 1], follows - 1 - np.arange(follows.size), dtype(1))
        merged_node = np.searchsorted(np.cumsum(counts), follows, side="right")
        counts = counts - np.bincount(merged_node, minlength=counts.size)
    return ranges, counts


_POOLS: dict[bool, list[mmap.mmap]] = {True: [], False: []}  # page-aligned buffers (huge pages or not) for the
# source ids and the index, reused by later populations
_POOL_LOCK = threading.Lock()
POOL_MIN_BYTES = 2 << 20  # smallest pooled buffer (one huge page)


def _pooled(n: int, dtype, huge: bool) -> tuple[mmap.mmap, np.ndarray]:
    """An uninitialised, page-aligned array of n elements in a reused buffer (fresh memory costs the kernel
    more than the work on it), in huge pages or not (see `_anonymous`); give the buffer back with
    `_release`. Buffers are mapped in power-of-two sizes (pages never touched cost nothing), and a request
    no pooled buffer holds replaces the largest smaller one: the pool keeps a few buffers, sized by the
    largest populations."""
    nbytes = max(n * np.dtype(dtype).itemsize, 1)
    pool = _POOLS[huge]
    with _POOL_LOCK:
        fitting = [b for b in pool if len(b) >= nbytes]
        buffer = min(fitting, key=len) if fitting else None
        if buffer is not None:
            pool.remove(buffer)
        elif pool:
            pool.remove(max(pool, key=len))  # unmapped when no longer referenced
    if buffer is None:
        buffer = _anonymous(max(1 << (nbytes - 1).bit_length(), POOL_MIN_BYTES), huge)
    return buffer, np.frombuffer(buffer, dtype, n)


def _release(buffer: mmap.mmap, huge: bool) -> None:
    """Give a `_pooled` buffer back (every array on it must be gone)."""
    with _POOL_LOCK:
        _POOLS[huge].append(buffer)


class _SourceKeys:
    """The source ids of an edge population, kept for its source index (2 bytes per edge up to 65536
    sources): in one pooled buffer when the edge count is known, else as a list of arrays."""

    def __init__(self, n_source: int, exact_size: int | None):
        self.dtype = _key_dtype(n_source)
        self.buffer, self.array = (None, None) if exact_size is None or exact_size > MEMORY_EDGES else _pooled(
            exact_size, self.dtype, huge=False)  # written and read in order
        self.parts: list[np.ndarray] = []

    def append(self, at: int, sources: np.ndarray) -> bool:
        """Keep sources of edges at..; False when there are too many to keep."""
        if at + sources.size > MEMORY_EDGES:
            self.release()
            return False
        if self.array is not None:
            np.copyto(self.array[at:at + sources.size], sources, casting="unsafe")
        else:
            self.parts.append(np.asarray(sources).astype(self.dtype))
        return True

    def column(self, n: int) -> np.ndarray:
        if self.array is not None:
            return self.array[:n]
        return np.concatenate(self.parts) if self.parts else np.empty(0, self.dtype)

    def release(self) -> None:
        if self.buffer is not None:
            self.array = None
            _release(self.buffer, huge=False)
            self.buffer = None
        self.parts = []


INDEX_PIECE = 1 << 23  # edges placed at once by `kernels.place_runs` (its scratch: 8 bytes per edge)


def _write_compiled_index(g: h5py.Group, keys: np.ndarray, n_nodes: int, dtype,
                          direct_fds: list[int] | None) -> None:
    """node_id_to_ranges / range_to_edge_id of a column in memory, by the compiled counting passes
    (`kernels.place_runs`; the same result as `_write_index`)."""
    counts = np.zeros(n_nodes, np.int64)
    n_ranges = kernels.count_runs(keys, counts)
    free = kernels.node_slots(counts)
    piece = min(keys.size, INDEX_PIECE)
    scratch_buffer, scratch = _pooled(piece, np.uint64, huge=False)  # spread to 64 places, read in order
    ranges_buffer, ranges = _pooled(2 * n_ranges, dtype, huge=True)  # written all over
    ranges = ranges.reshape(n_ranges, 2)
    try:
        for first in range(0, keys.size, piece):
            kernels.place_runs(keys, first, min(keys.size, first + piece), free, ranges, scratch)
        del scratch
        _release(scratch_buffer, huge=False)
        out = _dataset(g, "range_to_edge_id", dtype, ranges.shape, early=direct_fds is not None)
        if direct_fds is not None:
            _write_aligned(out, direct_fds, ranges)
        elif n_ranges:
            out.write_direct(ranges)
    finally:
        del ranges
        _release(ranges_buffer, huge=True)
    ends = np.cumsum(counts)
    node_ranges = np.stack([ends - counts, ends], axis=1).astype(dtype)
    _dataset(g, "node_id_to_ranges", dtype, node_ranges.shape, data=node_ranges, wrap=False)


def _write_index(g: h5py.Group, column: h5py.Dataset | np.ndarray, counts: np.ndarray, dtype=np.uint64,
                 direct_fds: list[int] | None = None) -> None:
    """node_id_to_ranges / range_to_edge_id of any column: consecutive edge ids of one node form one range.

    A column in memory with up to SORT_EDGES edges is sorted at once (numpy's radix sort for uint16 ids);
    its ranges are counted first, so range_to_edge_id is a contiguous dataset (written with O_DIRECT when
    `direct_fds` are given). Otherwise the work goes in bands of node ids (at most BAND_NODES ids and about
    BAND_EDGES edges each), reading the column once per band, so memory stays bounded for any size.
    """
    n_nodes, total = counts.size, int(column.shape[0])
    node_ranges = np.zeros((n_nodes, 2), dtype)
    at_once = isinstance(column, np.ndarray) and column.dtype.itemsize <= 2 and total <= SORT_EDGES
    order = np.argsort(column, kind="stable") if at_once else None
    starts = np.concatenate(([0], np.cumsum(counts)))
    bands = _bands(counts, BAND_EDGES, n_nodes if at_once else BAND_NODES)
    direct = None
    if at_once:
        merges = [_follows(order[starts[lo]:starts[hi]], counts[lo:hi]) for lo, hi in bands]
        shape = (total - sum(m.size for m in merges), 2)
        big = direct_fds is not None and shape[0] * 2 * np.dtype(dtype).itemsize >= DIRECT_MIN_BYTES
        out = _dataset(g, "range_to_edge_id", dtype, shape, early=big)
        direct = _DirectColumn(out, *direct_fds) if big else None
    else:
        out = _dataset(g, "range_to_edge_id", dtype, (0, 2), chunks=(max(chunk_length(total) // 2, 1), 2))
    n_ranges = 0
    for k, (lo, hi) in enumerate(bands):
        sorted_ids = order[starts[lo]:starts[hi]] if at_once else _band_edges(column, lo, hi, total)
        ranges, per_node = _ranges(sorted_ids, counts[lo:hi], dtype, merges[k] if at_once else None)
        ends = n_ranges + np.cumsum(per_node)
        node_ranges[lo:hi, 0] = ends - per_node
        node_ranges[lo:hi, 1] = ends
        if direct is not None:
            direct.append(ranges)
        elif at_once:
            if ranges.size:
                out[n_ranges:n_ranges + ranges.shape[0]] = ranges
        else:
            out.resize((n_ranges + ranges.shape[0], 2))
            out[n_ranges:] = ranges
        n_ranges += ranges.shape[0]
    if direct is not None:
        direct.close()
    _dataset(g, "node_id_to_ranges", dtype, node_ranges.shape, data=node_ranges, wrap=False)


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
