"""Round-trip suite: shared fixtures and the support-matrix recorder.

Every observation of a support-matrix cell is written to the results folder
(`$NETBABEL_RESULTS_DIR`, default build/roundtrip-results) and compared with the
checked-in docs/support-matrix.json; `matrix.verify()` fails the test when they
differ, so the published matrix cannot go stale. Regenerate it with
`python -m netbabel.compare.matrix` after running this suite.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from netbabel.compare import matrix as matrix_module  # noqa: E402

import features  # noqa: E402
import harness  # noqa: E402

REFERENCE_SEEDS = 2


def results_dir() -> Path:
    return Path(os.environ.get("NETBABEL_RESULTS_DIR", matrix_module.RESULTS))


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) starts afresh
        shutil.rmtree(results_dir(), ignore_errors=True)


class MatrixRecorder:
    def __init__(self) -> None:
        self.expected = matrix_module.load_matrix(matrix_module.DOCS / "support-matrix.json")["cells"]
        self.problems: list[str] = []

    def record(self, group: str, feature: str, column: str, cell: str, detail: str = "") -> None:
        key = matrix_module.cell_key(group, feature, column)
        directory = results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(key.encode()).hexdigest()[:16] + ".json"
        (directory / name).write_text(json.dumps({"group": group, "feature": feature, "column": column,
                                                  "cell": cell, "detail": detail[:500]}))
        expected = self.expected.get(key, {}).get("cell")
        if expected != cell:
            self.problems.append(f"{group} / {feature} / {column}: docs/support-matrix.json says "
                                 f"{expected or 'nothing'}, observed {cell} ({detail[:200]})")

    def verify(self) -> None:
        if self.problems:
            pytest.fail("support matrix out of date (run the round-trip suite, then "
                        "`python -m netbabel.compare.matrix`):\n" + "\n".join(self.problems), pytrace=False)


@pytest.fixture
def matrix() -> MatrixRecorder:
    return MatrixRecorder()


@pytest.fixture(scope="session")
def mode() -> str:
    return "frozen" if harness.frozen_available() else "native"


SIZES = {"default": (features.N, features.DURATION), "small": (10, 200.0), "tiny": (4, 100.0), "micro": (2, 40.0)}


class Cache:
    """Feature models and their NEST reference runs, built once per size (per xdist worker)."""

    def __init__(self, factory, mode: str) -> None:
        self.factory, self.mode = factory, mode
        self.models: dict[str, tuple] = {}
        self.references: dict[str, list] = {}

    def model(self, size: str = "default"):
        if size not in self.models:
            n, duration = SIZES[size]
            self.models[size] = features.load(self.factory.mktemp(f"features-{size}"), n=n, duration=duration)
        return self.models[size]

    def reference(self, size: str = "default"):
        """NEST runs of the feature model with seeds s0, s0+1."""
        if importlib.util.find_spec("nest") is None:
            pytest.skip("NEST is not installed")
        if size not in self.references:
            description, _ = self.model(size)
            out = self.factory.mktemp(f"nest-reference-{size}")
            seed0 = int(description.simulation.seed)
            self.references[size] = [harness.simulate("nest", description, out / f"seed{seed0 + k}.h5", self.mode,
                                                      seed0 + k) for k in range(REFERENCE_SEEDS)]
        return self.references[size]


@pytest.fixture(scope="session")
def cache(tmp_path_factory, mode) -> Cache:
    return Cache(tmp_path_factory, mode)


@pytest.fixture(scope="session")
def feature_model(cache):
    return cache.model("default")
