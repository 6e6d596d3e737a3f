"""The reference models through every path (support-matrix groups "reference model" and "multicompartment").

Each model runs small and short, in frozen mode (identical input spike trains everywhere):
- `format: yaml`: written as YAML and read back, the description must be identical;
- `format: sonata` / `format: neuroml`: written and read back, the instantiated network must be identical
  (population sizes, cell parameters, initial potentials, every edge with its weight and delay);
- backends: simulated and judged against the reference simulator (NEST; NetPyNE for the multicompartment
  hoc network, which NEST cannot run) with two seeds: exact (spike for spike), statistical, or differs;
- `X -> nest` (`X -> netpyne` for multicompartment models): written as X, read back and simulated with the
  reference simulator: the spikes must equal the direct run.
A path that refuses or fails is recorded as refused or error with its message, never skipped.
The multi-area model needs the upstream data (never bundled, see tests/multiarea_data.py): without it its
tests are skipped, and the cells of docs/support-matrix.json stay as they are (nothing contradicts them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from netbabel.description import Description, io

import harness

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "reference_models"
sys.path.insert(0, str(ROOT / "tests"))

from multiarea_data import multiarea_data  # noqa: E402

REFERENCE_SEEDS = 2
# full-scale rates of the microcircuit (NEST example's full_mean_rates, reference_models/potjans_diesmann2014)
PD_FULL_RATES = {"L23E": 0.903, "L23I": 2.965, "L4E": 4.414, "L4I": 5.876, "L5E": 7.569, "L5I": 8.633,
                 "L6E": 1.105, "L6I": 7.829}
PD_SCALE = 0.02
MAM_SCALE = 0.005
POINT_BACKENDS = ("pynn-nest", "pynn-neuron", "netpyne", "neuroml-neuron")


def _load(name: str, *overrides: str) -> Description:
    return io.load(MODELS_DIR / name / f"{name}.json", list(overrides))


def brunel() -> Description:
    return _load("brunel2000", "parameters.order=50", "simulation.duration=200")


def izhikevich() -> Description:
    return _load("izhikevich_network", "parameters.scale=0.2", "simulation.duration=200")


def potjans_diesmann() -> Description:
    """Full-scale rules, then the rate-preserving down-scaling (weights / sqrt(K), lost mean input as DC)."""
    from netbabel.converters.scaling import scale_description

    full = _load("potjans_diesmann2014", "parameters.scale=1", "simulation.duration=150")
    return scale_description(full, PD_SCALE, PD_SCALE, rates=PD_FULL_RATES)


def multiarea() -> Description:
    from netbabel.importers import multiarea as importer

    upstream = multiarea_data() / "upstream"
    d = importer.read(str(upstream), argparse.Namespace(n_scaling=MAM_SCALE, k_scaling=MAM_SCALE, areas="V1,V2",
                                                        replace_areas="hom_poisson_stat"))
    d.simulation.duration = 100.0
    return d


def hoc_network() -> Description:
    return _load("hoc_network")


def neuroml_ball_and_stick(workdir: Path) -> Description:
    """tests/data/neuroml/mc_cell.net.nml: one HH soma + passive dendrite cell, a current pulse at 10-70 ms."""
    from netbabel.importers import neuroml as importer

    d = importer.read(str(ROOT / "tests" / "data" / "neuroml" / "mc_cell.net.nml"),
                      argparse.Namespace(neuroml_workdir=str(workdir)))
    d.simulation.duration, d.simulation.dt = 90.0, 0.025
    return d


@dataclass(frozen=True)
class Model:
    group: str
    build: Callable[..., Description]  # build() or build(workdir) (needs_dir)
    context: str
    reference: str = "nest"
    backends: tuple[str, ...] = POINT_BACKENDS
    needs_dir: bool = False


MODELS = {
    "brunel2000": Model("reference model", brunel, "order 50 (250 iaf_psc_delta neurons), 200 ms"),
    "izhikevich_network": Model("reference model", izhikevich, "scale 0.2 (200 neurons), 200 ms"),
    "potjans_diesmann2014": Model(
        "reference model", potjans_diesmann,
        f"N and K scaled to {PD_SCALE} with the van Albada et al. 2015 DC compensation (1,544 neurons), 150 ms"),
    "multiarea (V1, V2)": Model(
        "reference model", multiarea,
        f"areas V1 and V2 (the other 30 as Poisson sources), N and K scaled to {MAM_SCALE} (1,644 neurons), 100 ms",
        backends=("pynn-nest", "netpyne")),
    "hoc_network": Model("multicompartment", hoc_network,
                         "4 ball-and-stick + 3 five-compartment pyramidal cells from hoc templates, 400 ms",
                         reference="netpyne", backends=("nest", "pynn-nest", "pynn-neuron", "neuroml-neuron")),
    "neuroml ball-and-stick": Model("multicompartment", neuroml_ball_and_stick,
                                    "one HH-soma + passive-dendrite cell read from NeuroML "
                                    "(tests/data/neuroml/mc_cell.net.nml), current pulse, 90 ms at dt 0.025 ms",
                                    reference="netpyne", backends=("nest", "neuroml-neuron"), needs_dir=True),
}
FORMATS = ("sonata", "neuroml")


class References:
    """Built models and their reference runs (seeds s0, s0+1), once per xdist worker."""

    def __init__(self, factory, mode: str) -> None:
        self.factory, self.mode = factory, mode
        self.models: dict[str, Description] = {}
        self.runs: dict[str, list] = {}

    def model(self, name: str) -> Description:
        if name not in self.models:
            m = MODELS[name]
            self.models[name] = m.build(self.factory.mktemp("import")) if m.needs_dir else m.build()
        return self.models[name]

    def reference(self, name: str, seeds: int = REFERENCE_SEEDS) -> list:
        """Runs of the reference backend with seeds s0, s0+1, ... (the first `seeds` of them)."""
        d, backend = self.model(name), MODELS[name].reference
        runs = self.runs.setdefault(name, [])
        while len(runs) < seeds:
            harness.backend_module(backend)
            seed = int(d.simulation.seed) + len(runs)
            runs.append(harness.simulate(backend, d, self.factory.mktemp("reference") / f"seed{seed}.h5",
                                         self.mode, seed))
        return runs[:seeds]


@pytest.fixture(scope="session")
def references(tmp_path_factory, mode) -> References:
    return References(tmp_path_factory, mode)


def _context(name: str, mode: str) -> str:
    return f"{mode} mode, {MODELS[name].context}"


def _record(matrix, name: str, column: str, cell: str, detail: str, mode: str) -> None:
    text = _context(name, mode) + (f"; {detail}" if detail else "")
    matrix.record(MODELS[name].group, name, column, cell, text)


@pytest.mark.parametrize("name", MODELS)
def test_yaml_round_trip(name, references, matrix, mode, tmp_path):
    description = references.model(name)
    folder = MODELS_DIR / name
    if folder.is_dir():  # files the description refers to (mechanisms, templates)
        shutil.copytree(folder, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("x86_64", "*.h5"))
    path = tmp_path / f"{name.split()[0]}.yaml"
    io.save(description, path)
    back = io.load(path)
    same = back.to_dict() == description.to_dict()
    _record(matrix, name, "format: yaml", "round-trips" if same else "changes", "", mode)
    matrix.verify()


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_reference_simulator(name, references, matrix, mode):
    """The reference runs themselves: every population fires (else nothing below could fail)."""
    runs = references.reference(name, seeds=1)
    d = references.model(name)
    silent = [p for p in d.populations if len(runs[0].get(p, ((), ()))[1]) == 0]
    assert not silent, f"{name}: silent populations in the {MODELS[name].reference} run: {silent}"
    spikes = sum(len(runs[0][p][1]) for p in d.populations)
    _record(matrix, name, MODELS[name].reference, "reference", f"{spikes} spikes", mode)
    matrix.verify()


BACKEND_CASES = [(name, b) for name, m in MODELS.items() for b in m.backends]


@pytest.mark.slow
@pytest.mark.parametrize("name,backend", BACKEND_CASES, ids=[f"{n}-{b}" for n, b in BACKEND_CASES])
def test_backend_against_reference(name, backend, references, matrix, mode, tmp_path):
    harness.backend_module(backend)
    d = references.model(name)
    spikes, cell, detail = harness.attempt(lambda: harness.simulate(backend, d, tmp_path / "run.h5", mode))
    if spikes is not None:
        cell, detail = harness.model_cell(references.reference(name), spikes, d)
    _record(matrix, name, backend, cell, detail, mode)
    matrix.verify()


FORMAT_CASES = [(name, f) for name in MODELS for f in FORMATS]


@pytest.mark.slow
@pytest.mark.parametrize("name,fmt", FORMAT_CASES, ids=[f"{n}-{f}" for n, f in FORMAT_CASES])
def test_format_round_trip(name, fmt, references, matrix, mode, tmp_path):
    """Write as FMT, read back: the same network; then the reference simulator must give the same spikes."""
    d = references.model(name)
    reference = MODELS[name].reference
    back, cell, detail = harness.attempt(lambda: harness.format_round_trip(fmt, d, tmp_path / "rt", lems=True))
    if back is not None:
        changes = harness.structure_differences(harness.network_structure(d, tmp_path / "original"),
                                                harness.network_structure(back, tmp_path / "back"))
        cell = "changes" if changes else "round-trips"
        detail = "; ".join(changes[:5]) + (f" (and {len(changes) - 5} more)" if len(changes) > 5 else "")
    _record(matrix, name, f"format: {fmt}", cell, detail, mode)
    if back is not None:
        spikes, cell, detail = harness.attempt(lambda: harness.simulate(reference, back, tmp_path / "run.h5", mode))
        if spikes is not None:
            cell, detail = harness.model_cell(references.reference(name), spikes, d)
    _record(matrix, name, f"{fmt} -> {reference}", cell, detail, mode)
    matrix.verify()
