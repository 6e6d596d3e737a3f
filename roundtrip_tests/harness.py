"""Running the feature model on a backend and turning its spikes into support-matrix cells."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from types import ModuleType

import numpy as np

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
        cells[(group, feature)] = verdict_cell([rows.get(p, ("DIFFERENT", "no spikes reported")) for p in pops + shared])
    return cells


def verdict_cell(verdicts: list[tuple[str, str]]) -> tuple[str, str]:
    """One matrix cell from per-population (verdict, detail): exact, statistical or differs."""
    if all(v == EXACT for v, _ in verdicts):
        return "exact", ""
    if all(v in (EXACT, "equivalent") for v, _ in verdicts):
        return "statistical", "; ".join(d for _, d in verdicts if d)
    return "differs", "; ".join(d for v, d in verdicts if v not in (EXACT, "equivalent"))


def model_cell(references: list[Spikes], candidate: Spikes, model: Description) -> tuple[str, str]:
    """A whole model judged against the reference runs: exact only if every population is."""
    sizes = {p: model.size(p) for p in model.populations}
    candidate = {p: s for p, s in candidate.items() if p in sizes}  # not the spike sources a format adds
    window = Window(0.0, float(model.value(model.simulation.duration)), sizes)
    dt = float(model.value(model.simulation.dt))
    rows = judge("candidate", candidate, references, window, tolerance=dt / 2).rows
    verdicts = [(r.verdict, f"{r.population}: {r.detail}" if r.detail else "") for r in rows]
    cell, detail = verdict_cell(verdicts)
    if cell == "exact":
        detail = f"{sum(len(s[1]) for s in candidate.values())} spikes matched"
    return cell, detail


def attempt(run):
    """(result, "", "") or (None, "refused" | "error", message): a failing path is a matrix cell."""
    try:
        return run(), "", ""
    except UnsupportedFeature as exc:
        return None, "refused", error_summary(str(exc))
    except Exception as exc:  # noqa: BLE001 - simulator failures (NEST, NEURON, Java) are recorded, not raised
        return None, "error", error_summary(f"{type(exc).__name__}: {exc}")


def network_structure(description: Description, directory: Path) -> dict:
    """What a format must keep, from the instantiated (frozen) network: per population the size, cell model,
    parameters and initial potentials; per (source, target, receptor) the sorted edges (ids, weight, delay)."""
    from netbabel.exporters.neuroml import read_edges
    from netbabel.instantiate import initial_potentials, instantiate_to_directory

    d = instantiate_to_directory(description, directory, progress=False)
    pops = {}
    cell_types = d.to_dict().get("cell_types", {})
    for name, pop in d.populations.items():
        ct = d.cell_types[pop.cell_type]
        params = {k: _value(d, v) for k, v in ct.params.items() if isinstance(v, (int, float, str))}
        if ct.model == "multicompartment":  # sections, mechanisms, synapse sites: all but where it came from
            params["definition"] = {k: v for k, v in cell_types[pop.cell_type].items() if k != "source"}
        v0 = initial_potentials(d, name)
        pops[name] = (d.size(name), ct.model, params, v0 if v0 is not None else d.value(pop.v_init)
                      if pop.v_init is not None else None)
    edges: dict[tuple, list] = {}
    for proj in d.projections:
        e = read_edges(d, proj.rule.file, proj.rule.population)
        n = len(e["source"])
        weight = e["weight"] if "weight" in e else np.full(n, float(d.value(proj.weight)))
        delay = e["delay"] if "delay" in e else np.full(n, float(d.value(proj.delay)))
        receptor = d.synapse_types[proj.synapse_type].receptor if proj.synapse_type in d.synapse_types else None
        edges.setdefault((proj.source, proj.target, receptor), []).append(
            np.column_stack([e["source"], e["target"], weight, delay]))
    simulation = (float(d.value(d.simulation.dt)), float(d.value(d.simulation.duration)))
    return {"populations": pops, "edges": {k: _sorted_rows(np.vstack(v)) for k, v in edges.items()},
            "simulation": simulation}


def _value(d: Description, v):
    try:
        return d.value(v)
    except NetbabelError:  # a string parameter that is not an expression
        return v


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def structure_differences(original: dict, back: dict, rtol: float = 1e-9) -> list[str]:
    """What changed between two network_structure() results (populations of `original` only)."""
    from netbabel.description.catalogue import MODELS

    out = []
    if original["simulation"] != back["simulation"]:
        out.append("dt, duration {} became {}".format(*(original["simulation"], back["simulation"])))
    for name, (size, model, params, v0) in original["populations"].items():
        if name not in back["populations"]:
            out.append(f"population {name} lost")
            continue
        size2, model2, params2, v02 = back["populations"][name]
        if (size2, model2) != (size, model):
            out.append(f"population {name}: {size} {model} became {size2} {model2}")
        defaults = {k: p.default for k, p in MODELS[model].params.items()} if model in MODELS else {}
        for key, value in params.items():
            got = params2.get(key, defaults.get(key))
            if not _close(value, got, rtol):
                out.append(f"{name}: the multicompartment cell definition changed" if key == "definition"
                           else f"{name}: {key} {value!r} became {got!r}")
        if not _close(v0, v02, rtol):
            out.append(f"{name}: initial potentials {_describe(v0)} became {_describe(v02)}")
    for key, rows in original["edges"].items():
        got = back["edges"].get(key)
        if got is None or got.shape != rows.shape:
            out.append(f"edges {key[0]}->{key[1]}: {len(rows)} became {0 if got is None else len(got)}")
        elif not np.allclose(got, rows, rtol=rtol, atol=0.0):
            out.append(f"edges {key[0]}->{key[1]}: weights or delays changed "
                       f"(largest difference {np.max(np.abs(got - rows)):.3g})")
    return out


def _describe(v) -> str:
    if isinstance(v, np.ndarray):
        return f"drawn per cell (mean {np.mean(v):.4g} mV, sd {np.std(v):.3g} mV)" if v.size else "empty"
    return "the simulator's default" if v is None else f"{v!r}"


def _close(a, b, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (str, dict)) or isinstance(b, (str, dict)):
        return a == b
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=0.0))


def format_round_trip(fmt: str, description: Description, directory: Path, lems: bool = False) -> Description:
    """Write `description` as `fmt` with the exporter, read it back with the importer.

    NeuroML: the network file is read back, or with `lems` the LEMS simulation file naming it (which also
    carries the duration and time step)."""
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
        found = sorted(out.glob("LEMS_*.xml") if lems else []) or sorted(out.glob("*.net.nml"))
        source = found[0] if found else out
    return importer.read(str(source), argparse.Namespace())
