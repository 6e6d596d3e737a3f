"""Cell positions (um) of a population: random in a box, on a grid, or from a file.

Random positions are uniform in [low, high) per axis, drawn from the stream
(POSITIONS, population index) so that they are the same on every run. Grid
points are enumerated in C order (the last axis varies fastest):
``origin + index * spacing`` (spacing defaults to 1 um, origin to 0). Every
result is N x 3 (missing axes are 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netbabel.description.model import Description
from netbabel.errors import NetbabelError
from netbabel.instantiate.values import POSITIONS, generator


def population_positions(description: Description, population: str) -> np.ndarray | None:
    """N x 3 positions in um, or None when the population has none."""
    pop = description.populations[population]
    pos = pop.positions
    if pos is None:
        return None
    n = description.size(population)
    where = f"/populations/{population}/positions"
    if pos.type == "random":
        low, high = np.asarray(pos.low, float), np.asarray(pos.high, float)
        index = list(description.populations).index(population)
        rng = generator(description.simulation.seed, POSITIONS, index)
        xyz = low + (high - low) * rng.random((n, low.size))
    elif pos.type == "grid":
        shape = [int(s) for s in pos.shape]
        if int(np.prod(shape)) != n:
            raise NetbabelError(f"grid of {int(np.prod(shape))} points for a population of {n}", pointer=where)
        spacing = np.asarray(pos.spacing if pos.spacing else [1.0] * len(shape), float)
        origin = np.asarray(pos.origin if pos.origin else [0.0] * len(shape), float)
        idx = np.stack(np.unravel_index(np.arange(n), shape), axis=1)
        xyz = origin + idx * spacing
    elif pos.type == "file":
        xyz = _read_positions_file(description.resolve_path(pos.file), where)
        if xyz.shape[0] != n:
            raise NetbabelError(f"{xyz.shape[0]} positions in the file for a population of {n}", pointer=where)
    else:
        raise NetbabelError(f"unknown positions type {pos.type!r}", pointer=where)
    out = np.zeros((n, 3))
    out[:, : min(3, xyz.shape[1])] = xyz[:, :3]
    return out


def _read_positions_file(path: Path, where: str) -> np.ndarray:
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                xyz = np.asarray(f["positions"][()], float)
        else:
            xyz = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, KeyError, ValueError) as exc:
        raise NetbabelError(f"cannot read positions: {exc}", str(path), where) from None
    if xyz.ndim != 2 or not 1 <= xyz.shape[1] <= 3:
        raise NetbabelError(f"positions must be N x 3, got shape {xyz.shape}", str(path), where)
    return xyz
