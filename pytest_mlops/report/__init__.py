"""Renderings of CheckResults: the JSON report (machine), text tables (terminal)."""

from __future__ import annotations

from pytest_mlops.report.json import (
    REPORT_VERSION,
    ReportEntry,
    build_report,
    load_report,
    write_report,
)
from pytest_mlops.report.text import render_table

__all__ = [
    "REPORT_VERSION",
    "ReportEntry",
    "build_report",
    "load_report",
    "render_table",
    "write_report",
]
