"""Poisson inputs -> explicit spike trains, the way NEST's poisson_generator makes them.

A Poisson input (rate r Hz, indegree K, start, stop) gives every target cell one
merged train of rate r*K (the superposition of K independent trains). As in NEST,
the generator draws a Poisson number of spikes with mean r*K*dt/1000 in each
active step T = k*dt with start < T <= stop and stamps them T + dt (the end of the
step). So the spike times are k*dt for k = round(start/dt) + 2 ... round(stop/dt) + 1,
cut at the simulation duration; several spikes in one step are the same time
repeated. Delivered through a connection with delay D, they arrive at k*dt + D,
exactly as from a spike_generator with these times.

Trains are drawn per block of cells from the stream (POISSON, input index, block),
with blocks fixed by the description, and written sorted by node id then time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from netbabel.description.model import Description, Distribution
from netbabel.errors import NetbabelError
from netbabel.instantiate.values import POISSON, generator, steps_per_ms

DRAWS_PER_BLOCK = 1 << 21  # (cell, step) Poisson draws, or expected spikes, per block
MAX_BLOCK_CELLS = 1 << 12


@dataclass
class PoissonPlan:
    index: int
    name: str
    target: str
    n: int
    mean_per_step: float
    first_step: int  # spike times are k / steps_per_ms for first_step <= k <= last_step
    last_step: int
    steps_per_ms: float
    dt: float
    seed: int
    block_cells: int
    n_blocks: int

    @property
    def n_steps(self) -> int:
        return max(0, self.last_step - self.first_step + 1)

    @property
    def expected_spikes(self) -> float:
        return self.mean_per_step * self.n_steps * self.n

    def block_range(self, block: int) -> tuple[int, int]:
        c0 = block * self.block_cells
        return c0, min(self.n, c0 + self.block_cells)


def check_constant(description: Description, index: int) -> None:
    """Frozen mode merges an input's trains per cell: weight and delay must be constants."""
    inp = description.inputs[index]
    for key in ("weight", "delay"):
        if isinstance(getattr(inp, key), Distribution):
            raise NetbabelError(
                f"input {description.input_name(index)!r}: the {key} is a distribution, but frozen (explicit) mode "
                f"merges each cell's {inp.type} trains into one spike train with a single {key}; give a constant "
                f"{key}", pointer=f"/inputs/{index}/{key}")


def plan_poisson(description: Description, index: int) -> PoissonPlan:
    inp = description.inputs[index]
    where = f"/inputs/{index}"
    if inp.rate is None:
        raise NetbabelError("poisson input needs a rate", pointer=where)
    check_constant(description, index)
    rate = description.value(inp.rate)
    k = description.value(inp.indegree) if inp.indegree is not None else 1.0
    if rate < 0 or k < 0:
        raise NetbabelError("rate and indegree must not be negative", pointer=where)
    dt = description.value(description.simulation.dt)
    r = steps_per_ms(dt)
    duration = description.value(description.simulation.duration)
    start = description.value(inp.start) if inp.start is not None else 0.0
    stop = description.value(inp.stop) if inp.stop is not None else math.inf
    end_step = int(math.floor(duration * r + 0.5))
    first = int(math.floor(start * r + 0.5)) + 2
    last = end_step if math.isinf(stop) else min(end_step, int(math.floor(stop * r + 0.5)) + 1)
    n = description.size(inp.target)
    n_steps = max(0, last - first + 1)
    mean = rate * k * dt / 1000.0
    per_cell = max(n_steps, n_steps * mean, 1.0)
    block = max(1, min(MAX_BLOCK_CELLS, int(DRAWS_PER_BLOCK // per_cell)))
    return PoissonPlan(index=index, name=description.input_name(index), target=inp.target, n=n,
                       mean_per_step=mean, first_step=first, last_step=last, steps_per_ms=r,
                       dt=dt, seed=description.simulation.seed, block_cells=block, n_blocks=-(-n // block))


def spike_block(plan: PoissonPlan, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(node_ids, times in ms) of one block of cells, sorted by node id then time."""
    c0, c1 = plan.block_range(block)
    if plan.n_steps == 0 or plan.mean_per_step == 0.0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    rng = generator(plan.seed, POISSON, plan.index, block)
    counts = rng.poisson(plan.mean_per_step, (c1 - c0, plan.n_steps))
    flat = np.flatnonzero(counts)
    reps = counts.ravel()[flat]
    if reps.size and reps.max() > 1:
        flat = np.repeat(flat, reps)
    cell, step = np.divmod(flat, plan.n_steps)
    steps = (step + plan.first_step).astype(np.float64)
    times = steps / plan.steps_per_ms if plan.steps_per_ms == round(plan.steps_per_ms) else steps * plan.dt
    return cell + c0, times


def iter_spikes(description: Description, input_index: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream a Poisson input's merged trains block by block: (node_ids, times)."""
    plan = plan_poisson(description, input_index)
    for block in range(plan.n_blocks):
        yield spike_block(plan, block)
