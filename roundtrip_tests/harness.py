"""Running the feature model on a backend and turning its spikes into support-matrix cells."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

from netbabel.cli import BACKENDS
from netbabel.compare.stats import Window
from netbabel.compare.verdict import EXACT, judge
from netbabel.description import Description
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import Spikes, read_report

import features

MAX_REFUSALS = 12


def backend_module(name: str) -> ModuleType:
    """The backend's module, or a skip when it has not been written yet."""
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("netbabel"):
            pytest.skip(f"backend {name!r} is not available in this version ({exc.name} missing)")
        pytest.skip(f"backend {name!r} needs the Python package {exc.name!r}")


def frozen_available() -> bool:
    try:
        module = importlib.import_module("netbabel.instantiate")
    except ModuleNotFoundError:
        return False
    return hasattr(module, "instantiate_to_directory")


def options(backend: str, mode: str, workdir: Path, seed: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(backend=backend, mode=mode, processes=1, threads=None, workdir=str(workdir),
                              duration=None, dt=None, seed=seed, current_step=None, population=None,
                              record_v=[], set=[], debug=False)


def simulate(backend: str, description: Description, out: Path, mode: str, seed: int | None = None) -> Spikes:
    from netbabel.backends.options import apply_simulation_options

    module = backend_module(backend)
    opts = options(backend, mode, out.with_suffix(""), seed)
    module.run(apply_simulation_options(description, opts), out, opts)
    return read_report(out)


def simulate_with_refusals(backend: str, description: Description, owner: dict, out: Path, mode: str,
                           seed: int | None = None, produce=None) -> tuple[Spikes | None, dict[str, str], Description]:
    """Run; on a refusal drop the populations it names and retry. Returns (spikes, {population: reason}, model).

    A failure that is not a refusal but names a feature (a cell model, a population) is handled the same
    way, its populations recorded as errors (`model._errors`); an unlocatable failure ends the attempts.
    `produce(description, out_path) -> Spikes` replaces the plain backend run (e.g. a format round trip first).
    """
    refused: dict[str, str] = {}
    errors: dict[str, str] = {}
    for attempt in range(MAX_REFUSALS):
        path = out.with_name(f"{out.stem}-{attempt}.h5")
        try:
            spikes = produce(description, path) if produce else simulate(backend, description, path, mode, seed)
            return spikes, refused, _with_errors(description, errors)
        except UnsupportedFeature as exc:
            problem = exc.problems[0]
            hit = features.refused_owner(description, owner, problem.pointer, problem.message)
            if not hit:
                raise AssertionError(f"{backend} refused something the feature model cannot locate: {exc}")
            for pop in hit:
                refused[pop] = problem.message
        except NetbabelError as exc:
            message = error_summary(str(exc))
            hit = features.refused_owner(description, owner, exc.problems[0].pointer, message)
            if not hit:
                errors["*"] = message
                return None, refused, _with_errors(description, errors)
            for pop in hit:
                errors[pop] = message
        description = features.without(description, set(refused) | set(errors))
        if not description.populations:
            return None, refused, _with_errors(description, errors)
    raise AssertionError(f"{backend}: more than {MAX_REFUSALS} refusals")


def error_summary(text: str) -> str:
    """The informative lines of a failure (exceptions and errors quoted from a log)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key = [line for line in lines if re.search(r"(Error|Exception|error:)", line) and not line.startswith("at ")]
    return " | ".join(dict.fromkeys([lines[0]] + key[-2:]))[:400]


def _with_errors(description: Description, errors: dict[str, str]) -> Description:
    description.__dict__["_errors"] = dict(errors)
    return description


def feature_cells(owner: dict[str, tuple[str, str]], references: list[Spikes], candidate: Spikes | None,
                  model: Description, refused: dict[str, str], errors: dict[str, str] | None = None
                  ) -> dict[tuple[str, str], tuple[str, str]]:
    """{(group, feature): (cell, detail)} for every feature row of the feature model."""
    rows: dict[str, tuple[str, str]] = {}
    errors = {**(errors or {}), **model.__dict__.get("_errors", {})}
    if candidate is not None:
        sizes = {p: model.size(p) for p in model.populations}
        window = Window(0.0, float(model.value(model.simulation.duration)), sizes)
        dt = float(model.value(model.simulation.dt))
        for row in judge("candidate", candidate, references, window, tolerance=dt / 2).rows:
            rows[row.population] = (row.verdict, row.detail)
    cells = {}
    for group, feature in features.feature_rows():
        pops = [p for p, o in owner.items() if o == (group, feature)]
        shared = [p for p, o in owner.items() if o == (group, "*")]
        reasons = [refused[p] for p in pops + shared if p in refused]
        if reasons:
            cells[(group, feature)] = ("refused", reasons[0])
            continue
        failed = [errors[p] for p in pops + shared if p in errors] or ([errors["*"]] if "*" in errors else [])
        if failed:
            cells[(group, feature)] = ("error", failed[0])
            continue
        verdicts = [rows.get(p, ("DIFFERENT", "no spikes reported")) for p in pops + shared]
        if all(v == EXACT for v, _ in verdicts):
            cells[(group, feature)] = ("exact", "")
        elif all(v in (EXACT, "equivalent") for v, _ in verdicts):
            cells[(group, feature)] = ("statistical", "; ".join(d for _, d in verdicts if d))
        else:
            cells[(group, feature)] = ("differs", "; ".join(d for v, d in verdicts if v not in (EXACT, "equivalent")))
    return cells


def format_round_trip(fmt: str, description: Description, directory: Path) -> Description:
    """Write `description` as `fmt` with the exporter, read it back with the importer."""
    from netbabel.cli import EXPORTERS, IMPORTERS

    exporter = importlib.import_module(EXPORTERS[fmt])
    importer = importlib.import_module(IMPORTERS[fmt])
    directory.mkdir(parents=True, exist_ok=True)
    single = getattr(exporter, "SINGLE_FILE", False)
    out = directory / ("model.net.nml" if fmt == "neuroml" else "model.json") if single else directory / fmt
    if not single:
        out.mkdir()
    exporter.write(description, out, argparse.Namespace(mode="frozen", to=fmt, yaml=False))
    source = out  # a SONATA folder: the importer reads simulation_config.json (inputs) and the circuit
    if fmt != "sonata" and out.is_dir():
        found = sorted(out.glob("*.net.nml"))
        source = found[0] if found else out
    return importer.read(str(source), argparse.Namespace())
