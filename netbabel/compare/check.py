"""`netbabel check MODEL --backends nest,pynn-nest,netpyne [--mode frozen] [--seeds 5] [--report out.html]`.

The first backend is the reference. It runs with `--seeds` seeds (the model's
seed s0, then s0+1, ...); their spread is the statistical tolerance (see
netbabel/compare/stats.py). The mean test needs enough seeds to know that spread: the
default 5 catches tau_m +10% in Brunel 86 times in 100 (1 s), 8 seeds every time, with no
false alarm in 100 trials (docs/comparison.md). Every other backend runs once, with s0, and is
judged against the reference runs: exactly first (spikes matched within half
a time step against the reference run with the same seed, which in frozen mode
has the very same edges and input spikes), statistically when not exact.

Prints the verdict table (backend x population: rate, CV, correlation,
verdict) and exits 1 when a backend disagrees, refuses the model or fails.
A summary is written to WORKDIR/check.json when --workdir is given.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Iterator

from netbabel.compare.report import ReportData, Row, write_html
from netbabel.compare.stats import Window
from netbabel.compare.verdict import DIFFERENT, Judgement, format_table, judge, reference_rows
from netbabel.description.catalogue import MODELS, MULTICOMPARTMENT
from netbabel.description.model import Description
from netbabel.errors import NetbabelError, UnsupportedFeature
from netbabel.spikereport import Spikes, read_report

REFUSED, FAILED = "refused", "error"




def run_options(args: argparse.Namespace, backend: str, seed: int, workdir: Path) -> argparse.Namespace:
    """The options a backend's `run` gets, as `netbabel simulate` would give them."""
    return argparse.Namespace(backend=backend, mode=args.mode, processes=1, threads=None, workdir=str(workdir),
                              duration=getattr(args, "duration", None), dt=None, seed=seed, current_step=None,
                              population=None, record_v=[], set=[], debug=getattr(args, "debug", False))


@contextlib.contextmanager
def _work_root(args: argparse.Namespace) -> Iterator[Path]:
    if getattr(args, "workdir", None):
        root = Path(args.workdir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="netbabel-check-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def simulate(description: Description, runner: ModuleType, backend: str, seed: int, root: Path,
             args: argparse.Namespace) -> Path:
    """One run of one backend; returns the spike report's path."""
    from netbabel.backends.options import apply_simulation_options

    label = f"{backend}-seed{seed}"
    options = run_options(args, backend, seed, root / label)
    model = apply_simulation_options(description, options)
    output = root / f"{label}.h5"
    runner.run(model, output, options)
    return output


def recorded_sizes(description: Description, reports: list[Spikes]) -> dict[str, int]:
    """Population sizes for the window: recorded neuron populations and anything a report contains."""
    record = description.simulation.record.spikes
    wanted = list(description.populations) if record == "all" else list(record)
    sizes = {}
    for pop in description.populations:
        model = description.cell_types[description.populations[pop].cell_type].model
        neuron = model == MULTICOMPARTMENT or MODELS[model].kind == "neuron"
        if (neuron and pop in wanted) or any(pop in r for r in reports):
            sizes[pop] = description.size(pop)
    return sizes


def check_command(description: Description, runners: dict[str, ModuleType], args: argparse.Namespace) -> int:
    """Run every backend, judge each against the reference (the first), print the table; 0 when all agree."""
    names = list(runners)
    if not names:
        raise NetbabelError("--backends: name at least one backend")
    seeds_n = int(getattr(args, "seeds", 5) or 1)
    if seeds_n < 1:
        raise NetbabelError(f"--seeds must be at least 1, not {seeds_n}")
    duration = getattr(args, "duration", None)
    if duration is not None and duration <= 0:
        raise NetbabelError(f"--duration must be positive, not {duration}")
    seed0 = int(description.simulation.seed)
    if duration is not None:
        description = copy.deepcopy(description)
        description.simulation.duration = float(duration)
    reference = names[0]
    plan = [(reference, seed0 + k) for k in range(seeds_n)] + [(name, seed0) for name in names[1:]]
    reports: dict[tuple[str, int], Spikes] = {}
    problems: dict[str, tuple[str, str]] = {}
    with _work_root(args) as root:
        for step, (name, seed) in enumerate(plan, 1):
            _say(f"[{step}/{len(plan)}] {name} (seed {seed}, {args.mode} mode)")
            started = time.perf_counter()
            try:
                path = simulate(description, runners[name], name, seed, root, args)
                reports[(name, seed)] = read_report(path)
            except UnsupportedFeature as exc:
                if name == reference:
                    raise
                problems[name] = (REFUSED, str(exc).replace("\n", "; "))
            except NetbabelError as exc:
                if name == reference:
                    raise
                problems[name] = (FAILED, str(exc).replace("\n", "; "))
            _say(f"      {name}: {time.perf_counter() - started:.1f} s"
                 + (f" ({problems[name][0]})" if name in problems else ""))
        result = judge_all(description, reports, problems, names, seeds_n, seed0)
        print(format_table(result["rows"]))
        for line in result["summary"]:
            print(line)
        if getattr(args, "workdir", None):
            (root / "check.json").write_text(json.dumps(result["json"], indent=1))
        if getattr(args, "report", None):
            write_html(args.report, result["report"])
            _say(f"wrote {args.report}")
    return 0 if result["agrees"] else 1


def judge_all(description: Description, reports: dict[tuple[str, int], Spikes],
              problems: dict[str, tuple[str, str]], names: list[str], seeds_n: int, seed0: int) -> dict:
    """Verdicts of every backend against the reference runs; table rows, summary lines, report data."""
    reference = names[0]
    ref_runs = [reports[(reference, seed0 + k)] for k in range(seeds_n)]
    window = Window(0.0, float(description.value(description.simulation.duration)),
                    recorded_sizes(description, list(reports.values())))
    dt = float(description.value(description.simulation.dt))
    rows: list[Row] = reference_rows(f"{reference} (reference)", ref_runs[0], window)
    summary, verdicts, judgements = [], {}, {}
    for name in names[1:]:
        if name in problems:
            kind, message = problems[name]
            rows.append(Row(name, "*", float("nan"), float("nan"), float("nan"), kind, message))
            summary.append(f"{name}: {kind}: {message}")
            verdicts[name] = {"verdict": kind, "message": message}
            continue
        j: Judgement = judge(name, reports[(name, seed0)], ref_runs, window, tolerance=dt / 2)
        judgements[name] = j
        rows.extend(j.rows)
        verdict = "exact" if j.identical else "equivalent" if j.agrees else DIFFERENT
        summary.append(f"{name}: {verdict}" + _exact_note(j))
        verdicts[name] = {"verdict": verdict, "exact": j.exact.to_dict() if j.exact else None,
                          "statistics": j.stats.to_dict()}
    agrees = all(v["verdict"] in ("exact", "equivalent") for v in verdicts.values())
    summary.append(f"verdict: {'all backends agree with' if agrees else 'NOT all backends agree with'} "
                   f"{reference} ({seeds_n} reference seed(s))")
    labels = {name: name for name in names if (name, seed0) in reports}
    labels[reference] = f"{reference} (seed {seed0})"
    runs = {labels[n]: reports[(n, seed0)] for n in names if (n, seed0) in reports}
    extra = {f"{reference} (seed {seed0 + k})": ref_runs[k] for k in range(1, seeds_n)}
    data = ReportData(f"netbabel check: {description.name}", window, {**runs, **extra}, references=list(extra),
                      rows=rows, exact={n: j.exact for n, j in judgements.items() if j.exact},
                      stats={n: j.stats for n, j in judgements.items()},
                      notes=[f"Reference backend {reference}, seeds {seed0}..{seed0 + seeds_n - 1}; "
                             f"exact tolerance {dt / 2:g} ms."])
    return {"rows": rows, "summary": summary, "agrees": agrees, "report": data,
            "json": {"model": description.name, "reference": reference, "seeds": seeds_n, "agrees": agrees,
                     "backends": verdicts}}


def _exact_note(j: Judgement) -> str:
    if j.exact is None or j.identical:
        return " (all spikes identical)" if j.identical else ""
    matched = sum(p.matched for p in j.exact.populations.values())
    total = sum(max(p.n_a, p.n_b) for p in j.exact.populations.values())
    first = j.exact.first_divergence
    return (f" ({100 * matched / max(total, 1):.1f}% of spikes matched exactly"
            + (f", first divergence at {first:g} ms)" if first is not None else ")"))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
