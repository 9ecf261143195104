"""The HTML report: one self-contained file with plots, readable offline.

Everything is inline: CSS in a ``<style>`` element, plots as SVG drawn in Python
(:mod:`pytest_mlops.report.svg`). No script, no font, no image is fetched, so the file opens from
a CI artifact or an e-mail attachment and renders the same everywhere.

Sections follow the results: the gates; candidate vs production per metric (``comparison``
tables); fairness per group with intervals (``groups`` and ``disparities``); per-column drift,
reference vs current distributions (``histograms`` and ``columns``); the latency distribution
(``histogram`` and ``batches``); then every table of every result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_mlops.report.markdown import (
    PLOT_TABLES,
    by_severity,
    comparison_rows,
    fmt,
    iter_tables,
    ordered_columns,
)
from pytest_mlops.report.merge import ReportView
from pytest_mlops.report.svg import PALETTE, Bar, Series, bars, forest

__all__ = ["render_html", "wilson_interval"]

MAX_DRIFT_PLOTS = 60
MAX_TABLE_ROWS = 200
GROUP_METRICS = ("selection_rate", "tpr", "fpr", "accuracy")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d1d1f}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}h3{font-size:14px;margin:14px 0 6px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:14px 16px;margin:10px 0}
.verdict{border-left:8px solid}.verdict.passed{border-color:#2e7d32}.verdict.failed{border-color:#c62828}
.pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;color:#fff;background:#6a737d}
.pill.passed{background:#2e7d32}.pill.failed{background:#c62828}.pill.inconclusive{background:#ef8f00}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#fafbfc}td code{word-break:break-all}.scroll{overflow-x:auto}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:10px}.grid .card{margin:0}
.muted{color:#6a737d;font-size:12px}.drifted{color:#c62828;font-weight:600}
details summary{cursor:pointer;font-weight:600;margin:6px 0}code{font-size:12px}
"""


def render_html(view: ReportView, *, title: str = "pytest-mlops report") -> str:
    """Render the merged report as one self-contained HTML document.

    Parameters
    ----------
    view:
        The merged report (:func:`pytest_mlops.report.merge.load_reports`).
    title:
        The document title.
    """
    sections = [
        _header(view, title),
        _gates(view),
        _comparison(view),
        _fairness(view),
        _drift(view),
        _latency(view),
        _all_tables(view),
        _footer(view),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(s for s in sections if s)}</main></body></html>\n"
    )


def _pill(status: str) -> str:
    return f'<span class="pill {escape(status)}">{escape(status.upper())}</span>'


def _header(view: ReportView, title: str) -> str:
    counts = " · ".join(f"{view.count(s)} {s}" for s in ("passed", "failed", "inconclusive"))
    facts = [
        f"{escape(k)} <code>{escape(str(view.project[k]))}</code>"
        for k in ("model", "reference", "profile", "current", "target", "seed")
        if view.project.get(k) is not None
    ]
    extra = ""
    if view.exitstatus not in (None, 0, 5) and not view.count("failed"):
        extra = (
            f"<p>pytest exited with status {view.exitstatus}: a test outside the gates failed.</p>"
        )
    return (
        f'<section class="card verdict {escape(view.verdict)}"><h1>{escape(title)} '
        f"{_pill(view.verdict)}</h1><p>{view.total} checks: {counts}</p>{extra}"
        f'<p class="muted">{" · ".join(facts)}</p></section>'
    )


def _gates(view: ReportView) -> str:
    if not view.entries:
        return '<section class="card"><p>No mlops results were recorded.</p></section>'
    rows = "".join(
        f"<tr><td>{_pill(e.result.status)}</td><td><b>{escape(e.result.name)}</b></td>"
        f"<td>{escape(e.result.kind)}</td><td>{escape(e.result.value_text or '—')}</td>"
        f"<td>{escape(e.result.bound_text or '—')}</td><td>{escape(e.result.message)}</td>"
        f"<td><code>{escape(e.nodeid)}</code></td></tr>"
        for e in by_severity(view.entries)
    )
    return (
        '<h2>Gates</h2><section class="card scroll"><table><thead><tr><th>status</th><th>check</th>'
        "<th>kind</th><th>measured</th><th>bound</th><th>message</th><th>test</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _comparison(view: ReportView) -> str:
    parts: list[str] = []
    for e in view.entries:
        rows = comparison_rows(e.result)
        if not rows:
            continue
        color = PALETTE[e.result.status]
        plot = forest(
            [
                Bar(
                    label=str(r.get("metric", "")),
                    value=_float(r.get("difference")),
                    low=_opt_float(r.get("ci_low")),
                    high=_opt_float(r.get("ci_high")),
                    color=color,
                )
                for r in rows
            ],
            title=f"{e.result.name}: candidate minus production, 95% interval",
        )
        parts.append(
            f'<section class="card"><h3>{escape(e.result.name)} {_pill(e.result.status)}</h3>'
            '<p class="muted">Difference candidate − production per metric, with its 95% '
            "interval; the vertical line is no change.</p>"
            f"{plot}{_html_table(rows, signed={'difference', 'ci_low', 'ci_high'})}</section>"
        )
    return "<h2>Candidate vs production</h2>" + "".join(parts) if parts else ""


def wilson_interval(rate: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion *rate* measured on *n* trials."""
    if n <= 0 or not math.isfinite(rate):
        return (float("nan"), float("nan"))
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _group_bar(row: Mapping[str, Any], metric: str) -> Bar | None:
    value = _opt_float(row.get(metric))
    if value is None:
        return None
    low, high = _opt_float(row.get(f"{metric}_ci_low")), _opt_float(row.get(f"{metric}_ci_high"))
    n = _opt_float(row.get("n"))
    if low is None and metric in ("selection_rate", "accuracy") and n:
        low, high = wilson_interval(value, n)
    color = PALETTE["baseline"] if row.get("excluded") else PALETTE["candidate"]
    label = f"{row.get('group', '?')} (n={fmt(row.get('n'))})"
    return Bar(label=label, value=value, low=low, high=high, color=color)


def _fairness(view: ReportView) -> str:
    parts: list[str] = []
    for result, groups in iter_tables(view.entries, "groups"):
        plots = []
        for metric in GROUP_METRICS:
            rows = [b for b in (_group_bar(g, metric) for g in groups) if b is not None]
            if rows:
                plots.append(
                    f'<div class="card"><h3>{escape(metric)}</h3>'
                    + forest(
                        rows, title=f"{result.name}: {metric} per group", width=520, reference=None
                    )
                    + "</div>"
                )
        disparities = [
            f'<div class="card"><h3>{escape(str(d.get("metric")))} '
            f"{_pill(str(d.get('status', 'passed')))}</h3>"
            + forest(
                [
                    Bar(
                        label=str(d.get("metric", "")),
                        value=_float(d.get("value")),
                        low=_opt_float(d.get("ci_low")),
                        high=_opt_float(d.get("ci_high")),
                        color=PALETTE.get(str(d.get("status")), PALETTE["candidate"]),
                    )
                ],
                title=f"{result.name}: {d.get('metric')} with its interval and bound",
                width=520,
                reference=None,
                bounds=[b] if (b := _bound(d.get("bound"))) is not None else [],
            )
            + "</div>"
            for d in result.tables.get("disparities", ())
        ]
        parts.append(
            f'<section class="card"><h3>{escape(result.name)} {_pill(result.status)}</h3>'
            f'<p class="muted">{escape(result.message)}. Per group: the rate and its 95% interval '
            "(grey: excluded groups, too small to judge); dashed red: the bound.</p>"
            f'<div class="grid">{"".join(disparities + plots)}</div></section>'
        )
    return "<h2>Fairness</h2>" + "".join(parts) if parts else ""


def _drift(view: ReportView) -> str:
    parts: list[str] = []
    for result, hist_rows in iter_tables(view.entries, "histograms"):
        by_column: dict[str, list[Mapping[str, Any]]] = {}
        for row in hist_rows:
            by_column.setdefault(str(row.get("column")), []).append(row)
        info = {str(r.get("column")): r for r in result.tables.get("columns", ())}
        order = sorted(
            by_column,
            key=lambda c: (
                not info.get(c, {}).get("drifted"),
                -_float(info.get(c, {}).get("effect"), 0.0),
            ),
        )
        cards = [_drift_card(c, by_column[c], info.get(c, {})) for c in order[:MAX_DRIFT_PLOTS]]
        more = len(order) - MAX_DRIFT_PLOTS
        note = f'<p class="muted">{more} more columns in the table below.</p>' if more > 0 else ""
        parts.append(
            f'<section class="card"><h3>{escape(result.name)} {_pill(result.status)}</h3>'
            f'<p class="muted">{escape(result.message)}. Share of rows per bin, reference vs '
            "current; drifted columns first.</p>"
            f'<div class="grid">{"".join(cards)}</div>{note}</section>'
        )
    return "<h2>Drift</h2>" + "".join(parts) if parts else ""


def _drift_card(column: str, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    reference = [_float(r.get("reference"), 0.0) for r in rows]
    current = [_float(r.get("current"), 0.0) for r in rows]
    ref_total, cur_total = sum(reference) or 1.0, sum(current) or 1.0
    plot = bars(
        [fmt(r.get("bin")) for r in rows],
        [
            Series("reference", PALETTE["reference"], [v / ref_total for v in reference]),
            Series("current", PALETTE["current"], [v / cur_total for v in current]),
        ],
        title=f"{column}: reference vs current",
    )
    facts = []
    if info.get("effect") is not None:
        facts.append(f"{info.get('effect_name') or 'effect'} {fmt(info.get('effect'))}")
    if info.get("p_adjusted") is not None:
        facts.append(f"p_adj {fmt(info.get('p_adjusted'))}")
    flag = ' <span class="drifted">drifted</span>' if info.get("drifted") else ""
    return (
        f'<div class="card"><h3>{escape(column)}{flag}</h3>'
        f'<div class="muted">{escape(" · ".join(facts))}</div>{plot}</div>'
    )


def _latency(view: ReportView) -> str:
    parts: list[str] = []
    for result, rows in iter_tables(view.entries, "histogram"):
        by_batch: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_batch.setdefault(fmt(row.get("batch_size")), []).append(row)
        stats = {fmt(r.get("batch_size")): r for r in result.tables.get("batches", ())}
        cards = []
        for batch, batch_rows in by_batch.items():
            s = stats.get(batch, {})
            facts = " · ".join(
                f"{k} {fmt(s.get(k))}" for k in ("p50_ms", "p99_ms", "throughput") if k in s
            )
            plot = bars(
                [fmt(r.get("bin_ms")) for r in batch_rows],
                [
                    Series(
                        "count",
                        PALETTE["candidate"],
                        [_float(r.get("count"), 0.0) for r in batch_rows],
                    )
                ],
                title=f"{result.name}: latency of batch size {batch} (ms)",
                width=420,
                y_label="calls",
            )
            cards.append(
                f'<div class="card"><h3>batch size {escape(batch)}</h3>'
                f'<div class="muted">{escape(facts)} (x: ms)</div>{plot}</div>'
            )
        parts.append(
            f'<section class="card"><h3>{escape(result.name)} {_pill(result.status)}</h3>'
            f'<p class="muted">{escape(result.message)}</p><div class="grid">{"".join(cards)}</div>'
            "</section>"
        )
    return "<h2>Latency</h2>" + "".join(parts) if parts else ""


def _all_tables(view: ReportView) -> str:
    parts = []
    for e in view.entries:
        tables = {k: v for k, v in e.result.tables.items() if v and k not in PLOT_TABLES}
        if not tables and not e.result.details:
            continue
        body = "".join(
            f"<h3>{escape(name)}</h3>{_html_table(rows)}" for name, rows in tables.items()
        )
        if e.result.details:
            body = f"<pre>{escape(e.result.details)}</pre>" + body
        parts.append(
            f"<details><summary>{escape(e.result.name)} ({escape(e.result.kind)})</summary>"
            f"{body}</details>"
        )
    if not parts:
        return ""
    return '<h2>Tables</h2><section class="card">' + "".join(parts) + "</section>"


def _html_table(
    rows: Sequence[Mapping[str, Any]], signed: frozenset[str] | set[str] = frozenset()
) -> str:
    columns = ordered_columns(rows)
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(fmt(r.get(c), signed=c in signed))}</td>'
            if isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool)
            else f"<td>{escape(fmt(r.get(c)))}</td>"
            for c in columns
        )
        + "</tr>"
        for r in rows[:MAX_TABLE_ROWS]
    )
    more = (
        f'<p class="muted">{len(rows) - MAX_TABLE_ROWS} more rows in the JSON report.</p>'
        if len(rows) > MAX_TABLE_ROWS
        else ""
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"</div>{more}"
    )


def _footer(view: ReportView) -> str:
    env = view.meta.get("environment") or {}
    facts = [
        f"pytest-mlops {view.meta.get('pytest_mlops') or '?'}",
        str(view.meta.get("created") or ""),
        f"Python {env.get('python', '?')}",
        str(env.get("platform", "")),
        *(f"source {s}" for s in view.sources),
    ]
    return f'<p class="muted">{escape(" · ".join(f for f in facts if f))}</p>'


def _opt_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _bound(value: Any) -> float | None:
    """A bound given as a number or as text such as ``">= 0.8"``."""
    if isinstance(value, str):
        value = value.lstrip("<>=! ")
    return _opt_float(value)


def _float(value: Any, default: float = float("nan")) -> float:
    out = _opt_float(value)
    return default if out is None else out
