"""The Markdown report: what a reviewer reads on a merge request and in a CI job summary.

Compact by design: a verdict line, one table of gates, why anything failed, the champion-vs-
candidate delta per metric, and every result's tables folded under ``<details>``. It stays under
the 65,536 characters a GitHub comment may hold; when the details would not fit they are cut and
the reader is pointed at the HTML report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_mlops.report.json import ReportEntry
from pytest_mlops.report.merge import ReportView
from pytest_mlops.results import CheckResult, format_value

__all__ = ["COMMENT_MARKER", "ICONS", "by_severity", "comparison_rows", "render_markdown"]

#: Hidden first line, so CI can find and update its own comment instead of adding another.
COMMENT_MARKER = "<!-- pytest-mlops-report -->"

ICONS = {"passed": "✅", "failed": "❌", "inconclusive": "⚠️"}

#: Tables that are plot data: drawn by the HTML report, not listed in Markdown.
PLOT_TABLES = frozenset({"histograms", "histogram"})

MAX_ROWS = 15
MAX_CHARS = 60_000


def render_markdown(
    view: ReportView,
    *,
    title: str = "pytest-mlops",
    max_rows: int = MAX_ROWS,
    max_chars: int = MAX_CHARS,
) -> str:
    """Render the report as GitHub/GitLab-flavoured Markdown.

    Parameters
    ----------
    view:
        The merged report (:func:`pytest_mlops.report.merge.load_reports`).
    title:
        The heading's first words.
    max_rows:
        Rows shown per detail table; the rest are counted, not shown.
    max_chars:
        Upper bound on the length; details are dropped (with a note) to stay under it.
    """
    entries = by_severity(view.entries)
    head = [COMMENT_MARKER, *_verdict(view, title), "", *_gate_table(entries)]
    head += _failures(view.entries)
    head += _comparison(view.entries)
    foot = ["", _footer(view)]
    details = _details(entries, max_rows)
    text = "\n".join([*head, *details, *foot]) + "\n"
    if len(text) <= max_chars:
        return text
    note = [
        "",
        f"_Details omitted to stay under {max_chars:,} characters: see the HTML report._",
    ]
    return "\n".join([*head, *note, *foot])[: max_chars - 1] + "\n"


def by_severity(entries: Sequence[ReportEntry]) -> list[ReportEntry]:
    """Failed first, then inconclusive, then passed; the report's order within each."""
    rank = {"failed": 0, "inconclusive": 1, "passed": 2}
    return sorted(entries, key=lambda e: rank[e.result.status])


def _verdict(view: ReportView, title: str) -> list[str]:
    icon = ICONS["passed"] if view.verdict == "passed" else ICONS["failed"]
    counts = ", ".join(
        f"{view.count(s)} {s}" for s in ("passed", "failed", "inconclusive") if view.count(s)
    )
    plural = "s" if view.total != 1 else ""
    line = f"## {icon} {title}: {view.verdict.upper()} — {view.total} check{plural}"
    line += f" ({counts})" if counts else ""
    out = [line]
    if view.exitstatus not in (None, 0, 5) and not view.count("failed"):
        out.append(f"pytest exited with status {view.exitstatus}: a test outside the gates failed.")
    project = view.project
    facts = [
        f"{key} `{project[key]}`"
        for key in ("model", "current", "reference", "profile")
        if project.get(key) is not None
    ]
    if project.get("seed") is not None:
        facts.append(f"seed {project['seed']}")
    if facts:
        out.append("<sub>" + " · ".join(facts) + "</sub>")
    return out


def _gate_table(entries: Sequence[ReportEntry]) -> list[str]:
    if not entries:
        return ["_No mlops results were recorded._"]
    rows = [["", "check", "kind", "measured", "bound", "test"]]
    for e in entries:
        r = e.result
        rows.append(
            [
                ICONS[r.status],
                f"**{r.name}**",
                r.kind,
                r.value_text or "—",
                r.bound_text or "—",
                f"`{e.nodeid}`",
            ]
        )
    return table(rows)


def _failures(entries: Sequence[ReportEntry]) -> list[str]:
    bad = [e for e in entries if not e.result.passed]
    if not bad:
        return []
    out = ["", "**What did not pass**", ""]
    for e in bad:
        r = e.result
        out.append(f"- {ICONS[r.status]} **{r.name}** ({r.status}): {escape(r.message)}")
    return out


def comparison_rows(result: CheckResult) -> list[dict[str, Any]]:
    """The champion-vs-candidate rows of a result (``tables["comparison"]``), or ``[]``."""
    return [dict(row) for row in result.tables.get("comparison", ())]


def _comparison(entries: Sequence[ReportEntry]) -> list[str]:
    with_rows = [(e.result, comparison_rows(e.result)) for e in entries]
    with_rows = [(r, rows) for r, rows in with_rows if rows]
    if not with_rows:
        return []
    out = ["", "### Candidate vs production", ""]
    rows = [["", "check", "metric", "candidate", "production", "Δ", "95% interval of Δ"]]
    for result, comparison in with_rows:
        for row in comparison:
            rows.append(
                [
                    ICONS[result.status],
                    result.name,
                    str(row.get("metric", "")),
                    fmt(row.get("candidate")),
                    fmt(row.get("baseline")),
                    fmt(row.get("difference"), signed=True),
                    f"[{fmt(row.get('ci_low'), signed=True)}, {fmt(row.get('ci_high'), signed=True)}]"
                    if row.get("ci_low") is not None
                    else "—",
                ]
            )
    return out + table(rows)


def _details(entries: Sequence[ReportEntry], max_rows: int) -> list[str]:
    out: list[str] = []
    for e in entries:
        r = e.result
        tables = {k: v for k, v in r.tables.items() if k not in PLOT_TABLES and v}
        if not tables and not r.details:
            continue
        out += ["", f"<details><summary>{ICONS[r.status]} {r.name}: details</summary>", ""]
        out.append(escape(r.message))
        if r.details:
            out += ["", "```", r.details.strip()[:4000], "```"]
        if r.context:
            out += ["", " · ".join(f"{k}={v}" for k, v in r.context.items())]
        for name, rows in tables.items():
            out += ["", f"**{name}**", "", *rows_table(_ordered(name, rows), max_rows, name)]
        out += ["", "</details>"]
    return out


def _ordered(name: str, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drifted columns first, then by effect: the rows a reader wants before the cut."""
    if name != "columns" or not rows or "drifted" not in rows[0]:
        return list(rows)
    return sorted(rows, key=lambda r: (not r.get("drifted"), -_number(r.get("effect"))))


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if math.isfinite(out) else 0.0


def _footer(view: ReportView) -> str:
    version = view.meta.get("pytest_mlops") or "?"
    created = view.meta.get("created") or ""
    return f"<sub>pytest-mlops {version} · {created}</sub>"


# --- helpers shared with the HTML report ---------------------------------------------------------


def fmt(value: Any, *, signed: bool = False) -> str:
    """A table cell: numbers with 4 significant digits (``+`` on signed deltas), text as is."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        text = format_value(value)
        if signed and isinstance(value, float | int) and value > 0:
            text = "+" + text
        return text
    return str(value)


def escape(text: str) -> str:
    """Make free text safe inside a Markdown table cell or list item."""
    return text.replace("\r", " ").replace("\n", " ").replace("|", "\\|").replace("<", "&lt;")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; the first row is the header."""
    if not rows:
        return []
    out = ["| " + " | ".join(escape(c) for c in rows[0]) + " |"]
    out.append("|" + "|".join("---" for _ in rows[0]) + "|")
    out += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows[1:]]
    return out


#: Columns shown first, in this order (results travel as sorted JSON, so key order is lost).
LEADING = (
    "metric",
    "column",
    "group",
    "slice",
    "batch_size",
    "name",
    "check",
    "type",
    "test",
    "candidate",
    "baseline",
    "value",
    "difference",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect",
    "effect_name",
    "threshold",
    "ci_low",
    "ci_high",
    "bound",
    "n",
    "status",
    "drifted",
)

#: The columns a reviewer needs from the families' well-known tables (the rest are in the HTML).
ESSENTIAL = {
    "columns": (
        "column",
        "type",
        "test",
        "statistic",
        "p_adjusted",
        "effect",
        "effect_name",
        "threshold",
        "drifted",
        "note",
    ),
    "comparison": ("metric", "candidate", "baseline", "difference", "ci_low", "ci_high"),
    "groups": ("group", "n", "selection_rate", "tpr", "fpr", "accuracy", "excluded"),
    "disparities": ("metric", "value", "ci_low", "ci_high", "bound", "status"),
    "batches": ("batch_size", "p50_ms", "p90_ms", "p99_ms", "throughput", "n"),
}


def ordered_columns(rows: Sequence[Mapping[str, Any]], name: str | None = None) -> list[str]:
    """The columns of *rows*: a known table's essential ones, else all with :data:`LEADING` first."""
    present = list(dict.fromkeys(key for row in rows for key in row))
    if name in ESSENTIAL:
        chosen = [c for c in ESSENTIAL[name] if c in present]
        if chosen:
            return chosen
    rank = {c: i for i, c in enumerate(LEADING)}
    return sorted(present, key=lambda c: (rank.get(c, len(rank)), present.index(c)))


def rows_table(
    rows: Sequence[Mapping[str, Any]], max_rows: int = MAX_ROWS, name: str | None = None
) -> list[str]:
    """Any list of row dicts as a Markdown table (a known table shows its essential columns)."""
    if not rows:
        return ["_empty_"]
    columns = ordered_columns(rows, name)
    body = [[fmt(row.get(c)) for c in columns] for row in rows[:max_rows]]
    out = table([columns, *body])
    if len(rows) > max_rows:
        out += ["", f"_… {len(rows) - max_rows} more rows in the JSON and HTML reports_"]
    return out


def iter_tables(
    entries: Iterable[ReportEntry], name: str
) -> Iterable[tuple[CheckResult, list[Mapping[str, Any]]]]:
    """Each result that has a table called *name*, with that table's rows."""
    for e in entries:
        rows = e.result.tables.get(name)
        if rows:
            yield e.result, list(rows)
