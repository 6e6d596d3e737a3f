"""`netbabel compare A.h5 B.h5 [--exact] [--reference R.h5 ...] [--report out.html]`.

Exit status: 0 equivalent, 1 not equivalent, 2 bad input. A is the reference
run; `--reference` adds further runs of A's simulator with other seeds whose
spread sets the statistical tolerance (see netbabel/compare/stats.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py

from netbabel.compare.report import ReportData, write_html
from netbabel.compare.stats import infer_window
from netbabel.compare.verdict import format_table, judge, reference_rows
from netbabel.errors import NetbabelError
from netbabel.spikereport import Spikes, read_report

DURATION_ATTRS = ("duration", "t_stop", "tstop")


def report_duration(path: Path | str) -> float | None:
    """The simulated time a report says it covers (an attribute of /spikes), if any."""
    try:
        with h5py.File(path, "r") as f:
            attrs = f["spikes"].attrs
            for name in DURATION_ATTRS:
                if name in attrs:
                    return float(attrs[name])
    except (OSError, KeyError, ValueError, TypeError):
        return None
    return None


def load_runs(paths: list[str]) -> list[Spikes]:
    runs = [read_report(p) for p in paths]
    names = set(runs[0])
    for path, run in zip(paths[1:], runs[1:]):
        if names and run and not names & set(run):
            raise NetbabelError(f"no population in common with {paths[0]} "
                                f"({', '.join(sorted(names))} vs {', '.join(sorted(run))})", path)
    return runs


def compare_command(args: argparse.Namespace) -> int:
    paths = [args.a, args.b, *args.reference]
    for p in paths:
        if not Path(p).is_file():
            raise NetbabelError("no such file", p)
    runs = load_runs(paths)
    reference, candidate, extra = runs[0], runs[1], runs[2:]
    durations = [d for d in map(report_duration, paths) if d is not None]
    if args.dt is not None and args.dt <= 0:
        raise NetbabelError(f"--dt must be positive, not {args.dt}")
    tolerance = None
    if args.exact:
        tolerance = args.tolerance if args.tolerance is not None else args.dt / 2
        if tolerance < 0:
            raise NetbabelError(f"--tolerance must not be negative, not {tolerance}")
    window = infer_window(runs, t_stop=max(durations) if durations else None)
    label_a, label_b = Path(args.a).name, Path(args.b).name
    if label_a == label_b:
        label_a, label_b = str(args.a), str(args.b)
    result = judge(label_b, candidate, [reference, *extra], window, tolerance)
    rows = reference_rows(label_a, reference, window) + result.rows
    print(format_table(rows))
    if args.exact:
        verdict = "identical" if result.identical else "not identical"
        first = result.exact.first_divergence
        print(f"exact ({tolerance:g} ms): {verdict}" + (f", first divergence at {first:g} ms" if first is not None else ""))
        agrees = result.identical
    else:
        agrees = result.agrees
        print(f"statistics ({len(extra) + 1} reference run(s)): {'equivalent' if agrees else 'NOT equivalent'}")
    if args.report:
        labels = [f"{label_a} (seed {i + 1})" for i in range(len(extra))]
        data = ReportData(f"netbabel compare: {label_a} vs {label_b}", window,
                          {label_a: reference, label_b: candidate, **dict(zip(labels, extra))},
                          references=labels, rows=rows,
                          exact={label_b: result.exact} if result.exact else {},
                          stats={label_b: result.stats})
        write_html(args.report, data)
        print(f"wrote {args.report}", file=sys.stderr)
    return 0 if agrees else 1
