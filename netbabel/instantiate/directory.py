"""`instantiate_to_directory`: a whole model -> an explicit (frozen) model directory.

The directory holds `model.json` (every projection `explicit`, every Poisson input a
`spike_train`), `nodes.h5`, `edges.h5` (one SONATA edge population per projection) and
`inputs.h5` (one SONATA spike population per Poisson or spike-train input). It is
built in a temporary sibling and renamed when complete (model.json is written last),
so an interrupted or failed run leaves nothing that looks complete.

Work is cut into tasks of whole blocks (see rules.py); `chunk_size` (targets per task)
and `processes` change memory use and speed, never the result.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import shutil
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np

from netbabel.atomic import atomic_path
from netbabel.description.model import Description, Distribution
from netbabel.errors import NetbabelError
from netbabel.instantiate.inputs import PoissonPlan, check_constant, plan_poisson, spike_block
from netbabel.instantiate.positions import population_positions
from netbabel.instantiate.rules import (
    EDGES_PER_BLOCK, EdgeBlock, ProjectionPlan, block_arrays, explicit_edges, explicit_size, plan_projection,
)
from netbabel.instantiate.values import V_INIT, ValueSampler, evaluator, generator
from netbabel.instantiate.writer import (
    CACHE_BYTES, FILE_ALIGNMENT, INDEX_PIECE, EdgePopulationWriter, PageCacheRecycler,
    SpikeWriter, write_nodes,
)

TASK_EDGES = 1 << 21  # default work per task (edges or spikes)
PREFETCH = 3  # tasks computed ahead by the drawing threads (one process)
DRAWING_THREADS = 2  # threads drawing tasks (one process; numpy releases the GIL while drawing and sorting)
THREADED_ITEMS = 1 << 23  # one process uses helper threads from this many expected edges + spikes on (below,
# their hand-overs cost more CPU than the overlap saves: scale 0.1 of the microcircuit, 3e6 edges, 0.66 -> 0.51 CPU s)
BYTES_PER_EDGE = 4 + 4 + 8 + 8 + 8  # node ids, weight, delay, one source-index range (uint32 pair)
BYTES_PER_SPIKE = 16
DISK_MARGIN = 1.05


# -- plans and tasks ------------------------------------------------------------

@dataclass
class Job:
    """Everything to compute: plans per projection and Poisson input."""

    description: Description
    projections: list[ProjectionPlan | None]  # None: explicit rule, copied from its file
    poisson: dict[int, PoissonPlan]

    def expected_edges(self) -> float:
        total = 0.0
        for i, plan in enumerate(self.projections):
            if plan is not None:
                total += plan.expected_edges
            else:
                total += explicit_size(self.description, i)
        return total

    def expected_spikes(self) -> float:
        return sum(p.expected_spikes for p in self.poisson.values())


def make_job(description: Description) -> Job:
    value = evaluator(description)
    projections = [None if p.rule.type == "explicit" else plan_projection(description, i, value)
                   for i, p in enumerate(description.projections)]
    poisson = {}
    for i, inp in enumerate(description.inputs):
        if inp.type == "poisson":
            poisson[i] = plan_poisson(description, i)
        elif inp.type == "spike_train":
            check_constant(description, i)
    return Job(description, projections, poisson)


def _tasks(plan_blocks: int, block_items: int, block_targets: int, chunk_size: int | None) -> list[tuple[int, int]]:
    if chunk_size:
        per = max(1, int(chunk_size) // max(block_targets, 1))
    else:
        per = max(1, int(TASK_EDGES // max(block_items, 1)))
    return [(b, min(plan_blocks, b + per)) for b in range(0, plan_blocks, per)]


_STATE: dict[str, Any] = {}


def _init_worker(job: Job) -> None:
    _STATE["job"] = job


def _edge_task(index: int, b0: int, b1: int) -> list:
    """A task's blocks in compact form (uint32 ids; see `block_arrays`)."""
    plan = _STATE["job"].projections[index]
    return [block_arrays(plan, b) for b in range(b0, b1)]


def _spike_task(index: int, b0: int, b1: int) -> tuple:
    plan = _STATE["job"].poisson[index]
    parts = [spike_block(plan, b) for b in range(b0, b1)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _run(task: tuple) -> tuple:
    kind, index, b0, b1 = task
    return (_edge_task if kind == "edges" else _spike_task)(index, b0, b1)


SLOT_BYTES = 64 << 20  # shared memory per task result in flight (worker processes)


class _Slots:
    """Shared memory (anonymous MAP_SHARED, inherited by forked workers) that workers fill with their
    blocks, so that only a few numbers are pickled; results too large for a slot are pickled whole.

    Task j uses slot j % n; with n larger than the tasks in flight, a slot is refilled only after the
    writer has asked for the next result, when it is done with this one (it copies what it keeps).
    """

    def __init__(self, n: int):
        self.maps = [mmap.mmap(-1, SLOT_BYTES) for _ in range(n)]

    @staticmethod
    def _arrays(e: EdgeBlock) -> tuple:
        return e.sources, e.targets, e.weights, e.delays

    def put(self, slot: int, blocks: list) -> tuple | list:
        if sum(a.nbytes + 64 for e in blocks for a in self._arrays(e)) > SLOT_BYTES:
            return blocks
        buf, at, out = self.maps[slot], 0, []
        for e in blocks:
            described = []
            for a in self._arrays(e):
                np.frombuffer(buf, a.dtype, a.size, at)[:] = a
                described.append((a.dtype.str, a.size, at))
                at += -(-a.nbytes // 64) * 64
            out.append((e.projection, e.block, e.target_start, e.target_stop, described))
        return ("slot", slot, out)

    def get(self, result: tuple | list) -> list:
        if not (isinstance(result, tuple) and len(result) == 3 and isinstance(result[0], str)):
            return result
        buf, blocks = self.maps[result[1]], []
        for p, b, t0, t1, described in result[2]:
            arrays = [np.frombuffer(buf, np.dtype(dt), n, at) for dt, n, at in described]
            blocks.append(EdgeBlock(p, b, t0, t1, *arrays))
        return blocks


def _run_in_slot(task: tuple, slot: int | None) -> tuple | list:
    result = _run(task)
    slots = _STATE.get("slots")
    return slots.put(slot, result) if slots is not None and slot is not None and task[0] == "edges" else result


def _threaded(tasks: list[tuple]) -> Iterator[tuple]:
    """Tasks computed up to PREFETCH ahead in DRAWING_THREADS threads (numpy releases the GIL while drawing
    and sorting), so that drawing the next tasks overlaps writing this one; results in order."""
    with ThreadPoolExecutor(max_workers=DRAWING_THREADS, thread_name_prefix="netbabel-instantiate") as executor:
        pending: deque = deque(executor.submit(_run, t) for t in tasks[:PREFETCH])
        next_task = PREFETCH
        while pending:
            result = pending.popleft().result()
            if next_task < len(tasks):
                pending.append(executor.submit(_run, tasks[next_task]))
                next_task += 1
            yield result


class _Runner:
    """Runs tasks in order: in a helper thread (one process) or in a pool with a bounded number in flight."""

    def __init__(self, job: Job, processes: int):
        self.processes = max(1, int(processes))
        self.threaded = job.expected_edges() + job.expected_spikes() >= THREADED_ITEMS
        _STATE["job"] = job
        self.pool = None
        self.slots = None
        if self.processes > 1:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            if method == "fork":  # inherited by the workers
                self.slots = _STATE["slots"] = _Slots(self.processes + 2)
            ctx = multiprocessing.get_context(method)
            self.pool = ctx.Pool(self.processes, initializer=_init_worker, initargs=(job,))

    def map(self, tasks: list[tuple]) -> Iterator[tuple]:
        if self.pool is None:
            yield from _threaded(tasks) if self.threaded else map(_run, tasks)
            return
        n_slots = self.processes + 2
        pending: deque = deque()
        it = enumerate(tasks)
        for j, t in it:
            pending.append(self.pool.apply_async(_run_in_slot, (t, j % n_slots if self.slots else None)))
            if len(pending) >= self.processes + 1:
                break
        while pending:
            result = pending.popleft().get()
            nxt = next(it, None)
            if nxt is not None:
                j, t = nxt
                pending.append(self.pool.apply_async(_run_in_slot, (t, j % n_slots if self.slots else None)))
            yield self.slots.get(result) if self.slots else result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        _STATE.pop("job", None)
        _STATE.pop("slots", None)


# -- explicit projections ---------------------------------------------------------

def free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (monkeypatched in tests)."""
    return shutil.disk_usage(path).free


def estimate(job: Job, processes: int = 1) -> dict[str, float]:
    """Expected edges and spikes, disk bytes and peak memory bytes (rough)."""
    edges, spikes = job.expected_edges(), job.expected_spikes()
    d = job.description
    nodes = sum(d.size(p) for p in d.populations)
    disk = edges * BYTES_PER_EDGE + spikes * BYTES_PER_SPIKE + nodes * 40 + 16 * sum(
        d.size(p.target) for p in d.projections)
    largest = max([p.expected_edges for p in job.projections if p is not None] + [0.0])
    task = min(max(TASK_EDGES, EDGES_PER_BLOCK), largest)
    workers = max(1, processes)
    in_flight = PREFETCH + 1 if workers == 1 else 2 + workers
    # source ids of two projections (2 bytes per edge) and the source index's ranges (8 bytes per edge) of the
    # largest projection, the index's scratch, tasks in flight
    memory = 150e6 * (workers + 1) + largest * 12 + INDEX_PIECE * 8 + task * 40 * in_flight
    return {"edges": edges, "spikes": spikes, "disk_bytes": disk, "memory_bytes": memory}


def _check_disk(out_dir: Path, need: float) -> None:
    probe = out_dir.parent
    while not probe.exists():
        probe = probe.parent
    free = free_bytes(probe)
    if need * DISK_MARGIN > free:
        raise NetbabelError(f"not enough disk space: the explicit model needs about {_size(need)}, "
                            f"only {_size(free)} free", str(out_dir))


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n}"


# -- the directory ------------------------------------------------------------------

def instantiate_to_directory(description: Description, out_dir: Path | str, chunk_size: int | None = None,
                             processes: int = 1, progress: bool | None = None) -> Description:
    """Write the explicit model directory and return its description (base_dir = out_dir).

    `chunk_size`: targets per task (rounded to whole blocks); `processes`: worker processes;
    `progress`: show a bar (default: when stderr is a terminal). None of them changes the result.
    """
    out_dir = Path(out_dir)
    if chunk_size is not None and chunk_size < 1:
        raise NetbabelError(f"chunk size must be positive, got {chunk_size}")
    if processes < 1:
        raise NetbabelError(f"processes must be at least 1, got {processes}")
    job = make_job(description)
    est = estimate(job, processes)
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        print(f"instantiate: about {est['edges']:.3g} edges and {est['spikes']:.3g} input spikes; "
              f"disk about {_size(est['disk_bytes'])}, memory about {_size(est['memory_bytes'])}", file=sys.stderr)
    _check_disk(out_dir, est["disk_bytes"])
    try:
        with atomic_path(out_dir, directory=True) as tmp:
            _isolated(_write_files, (job, tmp, chunk_size, processes, show, est["edges"] + est["spikes"]))
            data = explicit_data(description)
            _copy_side_files(description, data, tmp)
            _check_explicit(data, tmp)
            (tmp / "model.json").write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
    except OSError as exc:
        raise NetbabelError(f"cannot write the explicit model: {exc}", str(out_dir)) from None
    return Description.from_dict(data, base_dir=out_dir)


def _write_files(job: Job, tmp: Path, chunk_size: int | None, processes: int, show: bool, total: float) -> None:
    if multiprocessing.current_process().daemon:
        processes = 1
    runner = _Runner(job, processes)
    try:
        if not show:  # (tqdm is not even imported)
            _write_all(job, tmp, runner, chunk_size, lambda n: None)
            return
        from netbabel.progress import progress as bar

        with bar(total=total, desc="instantiate", unit="item", enabled=True) as pbar:
            _write_all(job, tmp, runner, chunk_size, pbar.update)
    finally:
        runner.close()


def _isolated(fn: Callable, args: tuple) -> None:
    """Run the HDF5 writing in a child process.

    When a write fails (disk full), HDF5 cannot close the file and crashes the process at exit;
    in a child that exits with os._exit the parent only sees the error message, removes the
    partial directory and raises NetbabelError.
    """
    if multiprocessing.current_process().daemon:  # daemonic processes cannot have children: write here
        try:
            fn(*args)
        except (OSError, RuntimeError) as exc:
            raise NetbabelError(f"cannot write the explicit model: {str(exc).splitlines()[0]}") from None
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, args), daemon=False)
    child.start()
    send.close()
    try:
        try:
            message = receive.recv()
        except EOFError:
            message = ("died", None)
        child.join()
    except BaseException:
        child.terminate()
        child.join()
        raise
    finally:
        receive.close()
    if message is None and child.exitcode == 0:
        return
    kind, detail = message
    if kind == "netbabel":
        raise NetbabelError(detail)
    if kind == "interrupted":
        raise KeyboardInterrupt
    if kind == "died":
        raise NetbabelError(f"the writing process died (exit code {child.exitcode})")
    import re

    reason = re.search(r"error message = '([^']*)'", detail)
    if reason:  # HDF5 reports the system error inside a long message
        detail = f"{reason.group(1)} (is the disk full?); HDF5 said: {detail.split('(')[0].strip()}"
    else:
        detail = detail.splitlines()[0] if detail else "unknown error"
    raise NetbabelError(f"cannot write the explicit model: {detail}")


def _keep_freed_memory() -> None:
    """glibc: serve big arrays from the heap and keep freed memory, so that the same block-sized arrays
    are reused instead of being mapped and page-faulted again for every block (3x faster fills)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _child(send, fn: Callable, args: tuple) -> None:
    """Run fn and report to the parent; exit at once, even on errors (see `_isolated`)."""
    _keep_freed_memory()
    # h5py objects of a failed file print tracebacks when freed (Cython: excepthook, then unraisablehook)
    sys.unraisablehook = lambda unraisable: None
    sys.excepthook = lambda *exc_info: None
    try:
        fn(*args)
        _report_and_exit(send, None, 0)
    except NetbabelError as exc:
        _report_and_exit(send, ("netbabel", exc.problems), 2)
    except KeyboardInterrupt:
        _report_and_exit(send, ("interrupted", None), 130)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        _report_and_exit(send, ("error", f"{type(exc).__name__}: {exc}"), 1)


def _report_and_exit(send, message, code: int) -> None:
    """Called inside the except clause: the failed HDF5 objects are never freed (freeing them can crash)."""
    try:
        send.send(message)
        send.close()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _write_all(job: Job, tmp: Path, runner: _Runner, chunk_size: int | None, tick: Callable[[float], Any]) -> None:
    d = job.description
    write_nodes(tmp / "nodes.h5", {p: (d.size(p), population_positions(d, p)) for p in d.populations})
    with h5py.File(tmp / "edges.h5", "w", rdcc_nbytes=CACHE_BYTES, rdcc_nslots=10007, **FILE_ALIGNMENT) as f:
        f.require_group("edges")
        cache = PageCacheRecycler(f)
        tasks = []
        for i, plan in enumerate(job.projections):
            if plan is not None:
                per_block = plan.block_targets * plan.expected_edges / max(plan.nt, 1)
                tasks += [("edges", i, b0, b1) for b0, b1 in _tasks(plan.n_blocks, per_block, plan.block_targets,
                                                                      chunk_size)]
        results = runner.map(tasks)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netbabel-index") as indexer:
            finishing = None  # the previous projection's indices, built while this one is written
            for i in range(len(job.projections)):
                w = _write_projection(job, i, f, results, chunk_size, cache, tick)
                if finishing is not None:
                    finishing.result()
                    finishing = None
                if runner.threaded:
                    finishing = indexer.submit(w.finish)
                else:
                    w.finish()
            if finishing is not None:
                finishing.result()
    with h5py.File(tmp / "inputs.h5", "w", rdcc_nbytes=CACHE_BYTES, rdcc_nslots=10007) as f:
        f.create_group("spikes").attrs["magic"] = np.uint32(0x0A7A)
        cache = PageCacheRecycler(f)
        tasks = []
        for i, plan in job.poisson.items():
            tasks += [("spikes", i, b0, b1) for b0, b1 in _tasks(plan.n_blocks, plan.block_cells * plan.n_steps
                                                                  * max(plan.mean_per_step, 1e-3), plan.block_cells,
                                                                  chunk_size)]
        results = runner.map(tasks)
        for i, inp in enumerate(d.inputs):
            if inp.type == "poisson":
                plan = job.poisson[i]
                sw = SpikeWriter(f, plan.name, plan.expected_spikes)
                for _ in _tasks(plan.n_blocks, plan.block_cells * plan.n_steps * max(plan.mean_per_step, 1e-3),
                                plan.block_cells, chunk_size):
                    ids, times = next(results)
                    sw.append(ids, times)
                    cache.written(ids.size * 16)
                    tick(ids.size)
            elif inp.type == "spike_train":
                _copy_spike_train(d, i, f)


def _write_projection(job: Job, i: int, f: h5py.File, results: Iterator, chunk_size: int | None,
                      cache: PageCacheRecycler, tick: Callable[[float], Any]) -> EdgePopulationWriter:
    """Append projection i's edges (computed blocks, or an explicit file's) to a new edge population."""
    d, plan = job.description, job.projections[i]
    proj = d.projections[i]
    w = EdgePopulationWriter(f, d.projection_name(i), proj.source, proj.target, d.size(proj.source),
                             d.size(proj.target), edge_type_id=i,
                             expected_size=plan.expected_edges if plan else explicit_size(d, i),
                             exact_size=plan.exact_edges if plan else explicit_size(d, i))
    if plan is None:
        for s, t, wt, dl in explicit_edges(d, i):
            w.append(s, t, wt, dl)
            cache.written(s.size * 32)
            tick(s.size)
        return w
    for _ in _tasks(plan.n_blocks, plan.block_targets * plan.expected_edges / max(plan.nt, 1), plan.block_targets,
                    chunk_size):
        for e in next(results):
            w.append(e.sources, e.targets, e.weights, e.delays)
            cache.written(len(e) * 32)
            tick(len(e))
    return w


def _copy_spike_train(d: Description, index: int, f: h5py.File) -> None:
    from netbabel.spikereport import read_report

    inp = d.inputs[index]
    path = d.resolve_path(inp.file)
    report = read_report(path)
    name = inp.population or next(iter(report), None)
    if name not in report:
        raise NetbabelError(f"no spike population {name!r} in the file", str(path), f"/inputs/{index}/population")
    ids, times = report[name]
    order = np.lexsort((times, ids))
    SpikeWriter(f, d.input_name(index), ids.size).append(ids[order], times[order])


def explicit_data(description: Description) -> dict:
    """The explicit description (plain data) that goes with edges.h5 and inputs.h5."""
    from netbabel import __version__
    from netbabel.description.io import _finite

    data = _finite(description.to_dict())
    for i, proj in enumerate(data.get("projections", [])):
        name = description.projection_name(i)
        proj["rule"] = {"type": "explicit", "file": "edges.h5", "population": name}
    for i, inp in enumerate(data.get("inputs", [])):
        if inp["type"] not in ("poisson", "spike_train"):
            continue
        name = description.input_name(i)
        new = {"type": "spike_train", "target": inp["target"], "file": "inputs.h5", "population": name}
        for key in ("name", "weight", "delay", "synapse_type", "section", "x"):
            if key in inp:
                new[key] = inp[key]
        data["inputs"][i] = new
    meta = data.setdefault("metadata", {})
    meta.setdefault("provenance", []).append({
        "tool": f"netbabel {__version__} instantiate", "format": "netbabel",
        "options": {"seed": description.simulation.seed,
                    "note": "rules drawn into edges.h5, Poisson inputs into inputs.h5 (SONATA)"}})
    return data


def _copy_side_files(description: Description, data: dict, tmp: Path) -> None:
    """Files the description refers to (mod files, spike files, position files) copied beside model.json."""
    refs: list[tuple[dict | list, Any]] = []
    for cell in data.get("cell_types", {}).values():
        for j in range(len(cell.get("mod_files", []))):
            refs.append((cell["mod_files"], j))
        if isinstance(cell.get("params", {}).get("spike_file"), str):
            refs.append((cell["params"], "spike_file"))
    for pop in data.get("populations", {}).values():
        if pop.get("positions", {}).get("file"):
            refs.append((pop["positions"], "file"))
    for holder, key in refs:
        rel = holder[key]
        src = description.resolve_path(rel)
        p = Path(rel)
        if p.is_absolute():
            continue
        if ".." in p.parts or p.name in ("model.json", "nodes.h5", "edges.h5", "inputs.h5"):
            p = Path("files") / p.name
            holder[key] = p.as_posix()
        dst = tmp / p
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dst)


def _check_explicit(data: dict, base: Path) -> None:
    from netbabel.description.validate import check

    problems = check(data, base_dir=base, file="model.json")
    if problems:
        raise NetbabelError(problems)


# -- per-cell initial values ----------------------------------------------------------

def initial_potentials(description: Description, population: str) -> np.ndarray | None:
    """Per-cell initial membrane potentials (mV) when the population's v_init is a distribution, else None.

    Drawn from the stream (V_INIT, population index), so every exporter gets the same values.
    """
    pop = description.populations[population]
    if not isinstance(pop.v_init, Distribution):
        return None
    index = list(description.populations).index(population)
    sampler = ValueSampler(description, pop.v_init, f"/populations/{population}/v_init",
                           f"v_init of population {population!r}")
    return sampler.draw(generator(description.simulation.seed, V_INIT, index), description.size(population))
