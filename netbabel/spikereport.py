"""The common spike report: SONATA spike format (/spikes/<population>/timestamps, node_ids).

Timestamps are in ms, node ids are indices within the population; reports are
sorted by time (attribute `sorting = by_time`) and written atomically.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import h5py
import numpy as np

from netbabel.atomic import atomic_path
from netbabel.errors import NetbabelError

Spikes = dict[str, tuple[np.ndarray, np.ndarray]]  # population -> (node_ids, timestamps)
SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")  # SONATA's enum


def write_report(path: Path | str, spikes: Spikes, attrs: dict | None = None) -> Path:
    """Write spikes per population, sorted by time then node id."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        root = f.create_group("spikes")
        root.attrs["magic"] = np.uint32(0x0A7A)
        for key, value in (attrs or {}).items():
            root.attrs[key] = value
        for population, (ids, times) in spikes.items():
            ids = np.asarray(ids, dtype=np.uint64)
            times = np.asarray(times, dtype=np.float64)
            order = np.lexsort((ids, times))
            g = root.create_group(population)
            g.attrs.create("sorting", 2, dtype=SORTING)
            ts = g.create_dataset("timestamps", data=times[order])
            ts.attrs["units"] = "ms"
            g.create_dataset("node_ids", data=ids[order])
    return path


def write_voltage_population(f: "h5py.File", population: str, data: np.ndarray, ids: list[int], dt: float) -> None:
    """One population of a SONATA membrane report (/report/<population>: data in mV, samples at dt, 2 dt, ...,
    one column per cell in `ids`). The generated standalone scripts embed this function (`embed_voltage_writer`)."""
    n_steps = data.shape[0]
    group = f.create_group(f"report/{population}")
    group.create_dataset("data", data=data).attrs["units"] = "mV"
    group.create_dataset("mapping/node_ids", data=np.asarray(ids, dtype=np.uint64))
    group.create_dataset("mapping/element_ids", data=np.zeros(len(ids), dtype=np.uint32))
    group.create_dataset("mapping/index_pointers", data=np.arange(len(ids) + 1, dtype=np.uint64))
    group["mapping"].create_dataset("time", data=np.array([dt, n_steps * dt + dt / 2, dt]))
    group["mapping/time"].attrs["units"] = "ms"


VOLTAGE_WRITER_MARKER = "# <write_voltage_population>\n"  # where a generated script gets the function


def embed_voltage_writer(script: str) -> str:
    """A generated standalone script (run without netbabel) with `write_voltage_population`'s source at
    VOLTAGE_WRITER_MARKER (it needs numpy as np; h5py only through the file it is given)."""
    return script.replace(VOLTAGE_WRITER_MARKER, inspect.getsource(write_voltage_population))


def read_report(path: Path | str) -> Spikes:
    """Read a SONATA spike report into {population: (node_ids, timestamps in ms)}."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise NetbabelError(f"not a readable HDF5 spike report ({exc})", str(path)) from None
    with f:
        if "spikes" not in f:
            raise NetbabelError("no /spikes group: not a SONATA spike report", str(path))
        out: Spikes = {}
        for population, g in f["spikes"].items():
            if not isinstance(g, h5py.Group) or "timestamps" not in g or "node_ids" not in g:
                raise NetbabelError("expected datasets timestamps and node_ids", str(path), f"/spikes/{population}")
            times = np.asarray(g["timestamps"][()], dtype=np.float64)
            ids = np.asarray(g["node_ids"][()], dtype=np.int64)
            if times.shape != ids.shape:
                raise NetbabelError("timestamps and node_ids differ in length", str(path), f"/spikes/{population}")
            unit = g["timestamps"].attrs.get("units", "ms")
            if isinstance(unit, bytes):
                unit = unit.decode()
            if unit == "s":
                times = times * 1000.0
            out[population] = (ids, times)
    return out
