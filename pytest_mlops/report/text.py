"""Plain-text tables for the terminal summary and the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pytest_mlops.report.json import ReportEntry

__all__ = ["render_table"]

_HEADERS = ("test", "check", "status", "measured", "bound")


def render_table(entries: Iterable[ReportEntry], width: int = 60) -> list[str]:
    """One line per result, columns aligned, sorted like the JSON report."""
    rows = [
        (
            _shorten(e.nodeid, width),
            e.result.name,
            e.result.status.upper(),
            e.result.value_text or "-",
            e.result.bound_text or "-",
        )
        for e in sorted(entries, key=lambda e: (e.nodeid, e.result.name))
    ]
    return _align([_HEADERS, *rows])


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]
