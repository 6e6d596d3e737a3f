"""A self-contained HTML report: verdict table, rasters side by side, distributions overlaid.

Plots are drawn with matplotlib's Agg backend and embedded as base64 PNG, so the
report is one file that opens anywhere without a network connection.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netbabel.atomic import atomic_path
from netbabel.compare.exact import ExactResult
from netbabel.compare.stats import MEASURES, StatResult, Window, measure_report
from netbabel.spikereport import Spikes

RASTER_NEURONS = 100  # per population, the lowest node ids
MEASURE_LABELS = {"rate": "firing rate (Hz)", "cv": "CV of ISI", "corr": "spike-count correlation"}


@dataclass
class Row:
    """One line of the verdict table: a run (backend) and a population."""

    run: str
    population: str
    rate: float
    cv: float
    corr: float
    verdict: str
    detail: str = ""


@dataclass
class ReportData:
    title: str
    window: Window
    runs: dict[str, Spikes]  # label -> spikes; the first is the reference
    references: list[str] = field(default_factory=list)  # labels of further reference seeds
    rows: list[Row] = field(default_factory=list)
    exact: dict[str, ExactResult] = field(default_factory=dict)
    stats: dict[str, StatResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def raster_png(data: ReportData) -> str:
    """Rasters of every non-reference-seed run side by side (first RASTER_NEURONS neurons per population)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [k for k in data.runs if k not in data.references]
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 4), sharey=True, squeeze=False)
    pops = list(data.window.sizes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, label in zip(axes[0], labels):
        offset, ticks = 0, []
        for k, pop in enumerate(pops):
            shown = min(data.window.sizes[pop], RASTER_NEURONS)
            ids, times = data.runs[label].get(pop, (np.empty(0), np.empty(0)))
            keep = (ids < shown) & (times >= data.window.t_start) & (times < data.window.t_stop)
            ax.plot(times[keep], ids[keep] + offset, "|", ms=2, color=colors[k % len(colors)], rasterized=True)
            ticks.append((offset + shown / 2, pop))
            offset += shown + 5
        ax.set_title(label, fontsize=10)
        ax.set_xlim(data.window.t_start, data.window.t_stop)
        ax.set_xlabel("time (ms)")
        ax.set_yticks([t for t, _ in ticks], [p for _, p in ticks])
    return _figure_png(fig)


def distributions_png(data: ReportData) -> str:
    """Per population (rows) and measure (columns), the distributions of every run overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = {label: measure_report(spikes, data.window) for label, spikes in data.runs.items()}
    pops = list(data.window.sizes)
    fig, axes = plt.subplots(len(pops), len(MEASURES), figsize=(13, 2.8 * len(pops)), squeeze=False)
    for r, pop in enumerate(pops):
        for c, measure in enumerate(MEASURES):
            ax = axes[r][c]
            values = [v for m in measured.values() if len(v := m[pop].get(measure))]
            if not values:
                ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
                continue
            low, high = min(v.min() for v in values), max(v.max() for v in values)
            bins = np.linspace(low, high if high > low else low + 1, 40)
            for label, m in measured.items():
                v = m[pop].get(measure)
                if not len(v):
                    continue
                faint = label in data.references
                ax.hist(v, bins=bins, histtype="step", density=True, label=None if faint else label,
                        color="0.7" if faint else None, lw=0.8 if faint else 1.4)
            ax.set_title(f"{pop}: {MEASURE_LABELS[measure]}", fontsize=9)
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return _figure_png(fig)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _table(headers: list[str], rows: list[list[str]], verdict_col: int | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ""
            if i == verdict_col:
                cls = " class='ok'" if cell in ("exact", "equivalent", "reference") else " class='bad'"
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out + ["</table>"])


def _stat_details(data: ReportData) -> str:
    rows = []
    for label, result in data.stats.items():
        for pop, verdict in result.populations.items():
            for m, v in verdict.measures.items():
                rows.append([label, pop, m, "yes" if v.agrees else "NO", _fmt(v.ks), _fmt(v.ks_tolerance),
                             _fmt(v.emd), _fmt(v.emd_tolerance), _fmt(v.p_value), _fmt(v.mean_t),
                             _fmt(v.mean_t_critical), v.note])
    if not rows:
        return ""
    return "<h2>Statistical tests</h2>" + _table(
        ["run", "population", "measure", "agrees", "KS D", "D tolerance", "EMD", "EMD tolerance",
         "KS p (vs seed 0)", "mean t", "t critical", "note"], rows)


def _exact_details(data: ReportData) -> str:
    rows = []
    for label, result in data.exact.items():
        for pop, p in result.populations.items():
            rows.append([label, pop, str(p.n_a), str(p.n_b), f"{100 * p.fraction:.2f}%", _fmt(p.max_shift),
                         _fmt(p.first_divergence, 6), ", ".join(map(str, p.first_neurons))])
    if not rows:
        return ""
    tol = next(iter(data.exact.values())).tolerance
    return (f"<h2>Exact comparison (tolerance {tol:g} ms)</h2>" + _table(
        ["run", "population", "spikes (reference)", "spikes (run)", "matched", "largest shift (ms)",
         "first divergence (ms)", "neurons that diverged first"], rows))


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}
th{background:#eee}.ok{background:#dfd}.bad{background:#fdd}img{max-width:100%}"""


def render(data: ReportData) -> str:
    verdict_rows = [[r.run, r.population, _fmt(r.rate), _fmt(r.cv), _fmt(r.corr), r.verdict, r.detail]
                    for r in data.rows]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(data.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p>Window {data.window.t_start:g}-{data.window.t_stop:g} ms; populations: "
        + ", ".join(f"{html.escape(p)} ({n})" for p, n in data.window.sizes.items()) + ".</p>",
        *[f"<p>{html.escape(n)}</p>" for n in data.notes],
        "<h2>Verdict</h2>",
        _table(["run", "population", "rate (Hz)", "CV ISI", "correlation", "verdict", "detail"], verdict_rows, 5),
        _exact_details(data),
        _stat_details(data),
        "<h2>Raster plots</h2>",
        f"<img alt='rasters' src='data:image/png;base64,{raster_png(data)}'>",
        "<h2>Distributions</h2>",
        "<p>Reference seeds other than the first in grey.</p>" if data.references else "",
        f"<img alt='distributions' src='data:image/png;base64,{distributions_png(data)}'>",
        "<p>Decision rule: see <code>netbabel/compare/stats.py</code> (module documentation) "
        "and docs/comparison.md.</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_html(path: Path | str, data: ReportData) -> Path:
    path = Path(path)
    text = render(data)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
