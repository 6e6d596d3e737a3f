"""One run judged against the reference runs: exact first (when asked), then statistics."""

from __future__ import annotations

from dataclasses import dataclass

from netbabel.compare.exact import ExactResult, compare_exact
from netbabel.compare.report import Row
from netbabel.compare.stats import MeasureVerdict, StatResult, Window, compare_statistics
from netbabel.spikereport import Spikes

EXACT, EQUIVALENT, DIFFERENT = "exact", "equivalent", "DIFFERENT"


@dataclass
class Judgement:
    label: str
    rows: list[Row]
    exact: ExactResult | None
    stats: StatResult

    @property
    def agrees(self) -> bool:
        return all(r.verdict in (EXACT, EQUIVALENT) for r in self.rows)

    @property
    def identical(self) -> bool:
        return self.exact is not None and self.exact.identical


def judge(label: str, candidate: Spikes, references: list[Spikes], window: Window,
          tolerance: float | None = None) -> Judgement:
    """Verdict rows per population; `tolerance` (ms) asks for the exact comparison with references[0]."""
    exact = compare_exact(references[0], candidate, tolerance) if tolerance is not None else None
    stats = compare_statistics(candidate, references, window)
    rows = []
    for pop, verdict in stats.populations.items():
        means = verdict.means
        detail = []
        if exact is not None and pop in exact.populations:
            e = exact.populations[pop]
            if e.identical:
                rows.append(Row(label, pop, means["rate"], means["cv"], means["corr"], EXACT,
                                f"{e.n_b} spikes matched"))
                continue
            first = f", first divergence {e.first_divergence:g} ms" if e.first_divergence is not None else ""
            detail.append(f"{100 * e.fraction:.1f}% spikes matched{first}")
        failing = [_failure(m, verdict.means.get(m.measure, float("nan")))
                   for m in verdict.measures.values() if not m.agrees]
        detail.extend(failing)
        rows.append(Row(label, pop, means["rate"], means["cv"], means["corr"],
                        EQUIVALENT if verdict.agrees else DIFFERENT, "; ".join(detail)))
    return Judgement(label, rows, exact, stats)


def _failure(m: MeasureVerdict, mean: float) -> str:
    """Why a measure disagrees: the failing test(s) with their numbers."""
    if not m.judged or m.ks != m.ks:
        return f"{m.measure}: {m.note}"
    parts = []
    if not m.mean_agrees:
        parts.append(f"mean {mean:.3g}, t {m.mean_t:.3g} (critical {m.mean_t_critical:.3g})")
    if not m.distribution_agrees:
        parts.append(f"KS {m.ks:.3g} (tol {m.ks_tolerance:.3g}), EMD {m.emd:.3g} (tol {m.emd_tolerance:.3g})")
    return f"{m.measure}: " + ", ".join(parts)


def reference_rows(label: str, reference: Spikes, window: Window) -> list[Row]:
    """Table rows describing the reference run itself."""
    stats = compare_statistics(reference, [reference], window)
    return [Row(label, pop, v.means["rate"], v.means["cv"], v.means["corr"], "reference")
            for pop, v in stats.populations.items()]


def format_table(rows: list[Row]) -> str:
    """A plain-text verdict table."""
    head = ["run", "population", "rate (Hz)", "CV ISI", "corr", "verdict", "detail"]
    body = [[r.run, r.population, _num(r.rate), _num(r.cv), _num(r.corr), r.verdict, r.detail] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head) - 1)]
    lines = []
    for line in [head] + body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1])
        if line is head:
            lines.append("-" * (sum(widths) + 2 * len(widths) + 6))
    return "\n".join(lines)


def _num(x: float) -> str:
    return "n/a" if x != x else f"{x:.3g}"
