"""Combine JSON reports (one per CI stage) into one view for the Markdown and HTML renderings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlops._files import write_atomic
from pytest_mlops.errors import ReportError
from pytest_mlops.report.evidence import (
    GateRecord,
    TestRecord,
    judge,
    merge_gates,
    merge_tests,
    merged_exitstatus,
)
from pytest_mlops.report.json import ReportEntry, build_report, load_report, summarize

__all__ = ["ReportView", "load_reports", "merge_reports", "merged_report", "write_text"]


@dataclass(frozen=True)
class ReportView:
    """What the renderers need: the entries, the verdict and where the numbers come from.

    Parameters
    ----------
    entries:
        Every recorded result, sorted by test id and name.
    verdict:
        ``"passed"``, ``"failed"`` or ``"incomplete"`` (see :mod:`pytest_mlops.report.evidence`).
    project:
        The ``project`` table of the first report (model, datasets, seed...).
    meta:
        ``created``, ``pytest_mlops`` version and the environment of the first report.
    sources:
        The report files, as given.
    exitstatus:
        pytest's exit status; merged, the worst of the stages' (5, nothing to run in a stage,
        counts only when no stage ran anything).
    gates, tests:
        Every declared gate and every mlops test with its outcome, across the reports.
    reasons:
        Why the verdict is not ``passed``.
    collection_errors:
        ``{"nodeid", "message"}`` of every collection error.
    stages:
        Per report merged: ``{"source", "exitstatus", "verdict"}``.
    """

    entries: tuple[ReportEntry, ...]
    verdict: str
    project: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    exitstatus: int | None = None
    gates: tuple[GateRecord, ...] = ()
    tests: tuple[TestRecord, ...] = ()
    reasons: tuple[str, ...] = ()
    collection_errors: tuple[Mapping[str, str], ...] = ()
    stages: tuple[Mapping[str, Any], ...] = ()

    def count(self, status: str) -> int:
        """How many results have *status* (``passed``, ``failed``, ``inconclusive``)."""
        return sum(e.result.status == status for e in self.entries)

    @property
    def total(self) -> int:
        return len(self.entries)


def merge_reports(
    reports: Sequence[tuple[Mapping[str, Any], Sequence[ReportEntry]]],
    sources: Sequence[str] = (),
) -> ReportView:
    """Merge loaded reports (one per CI stage): the evidence is judged across all of them.

    Results, tests and collection errors are concatenated; a declared gate passes if it ran in
    some report and passed in every report where it ran, and every gate any report declares is
    required (see :mod:`pytest_mlops.report.evidence`).
    """
    names = list(sources) or [f"report {i + 1}" for i in range(len(reports))]
    _same_inputs([d for d, _ in reports], names)
    entries = sorted(
        (e for _, batch in reports for e in batch), key=lambda e: (e.nodeid, e.result.name)
    )
    gates = merge_gates([[GateRecord.from_dict(g) for g in d.get("gates", [])] for d, _ in reports])
    tests = merge_tests([[TestRecord.from_dict(t) for t in d.get("tests", [])] for d, _ in reports])
    errors = [dict(e) for d, _ in reports for e in d.get("collection_errors", [])]
    status = merged_exitstatus([d.get("exitstatus") for d, _ in reports])
    verdict = judge(
        gates=gates,
        tests=tests,
        result_statuses=[(e.result.name, e.result.status) for e in entries],
        exitstatus=status,
        collection_errors=errors,
    )
    first: Mapping[str, Any] = reports[0][0] if reports else {}
    return ReportView(
        entries=tuple(entries),
        verdict=verdict.verdict,
        project=dict(first.get("project") or {}),
        meta={
            "created": first.get("created"),
            "pytest_mlops": first.get("pytest_mlops"),
            "environment": dict(first.get("environment") or {}),
        },
        sources=tuple(sources),
        exitstatus=status,
        gates=tuple(gates),
        tests=tuple(tests),
        reasons=verdict.reasons,
        collection_errors=tuple(errors),
        stages=tuple(
            {
                "source": name,
                "exitstatus": d.get("exitstatus"),
                "verdict": (d.get("summary") or {}).get("verdict"),
            }
            for name, (d, _) in zip(names, reports, strict=False)
        ),
    )


def _same_inputs(reports: Sequence[Mapping[str, Any]], names: Sequence[str]) -> None:
    """Refuse stage reports made on different model or data files: they are not one run's."""
    seen: dict[str, tuple[str, str]] = {}
    for name, data in zip(names, reports, strict=False):
        for setting, digest in sorted(((data.get("project") or {}).get("inputs") or {}).items()):
            first = seen.setdefault(setting, (str(digest), name))
            if first[0] != digest:
                raise ReportError(
                    f"{name} and {first[1]} were made on different {setting} files "
                    f"({str(digest)[:19]}... and {first[0][:19]}...): stage reports merge only "
                    "when every stage tested the same model and data"
                )


def load_reports(paths: Sequence[str | Path]) -> ReportView:
    """Read and merge JSON reports; a ReportError names the file that cannot be read."""
    loaded = [load_report(p) for p in paths]
    return merge_reports(loaded, [str(p) for p in paths])


def write_text(path: str | Path, text: str) -> Path:
    """Write a rendering atomically; an OutputError names the path that cannot be written."""
    return write_atomic(path, text, what="the rendering")


def merged_report(view: ReportView) -> dict[str, Any]:
    """The merged view as a JSON report of the current format (readable by :func:`load_report`)."""
    report = build_report(
        view.entries,
        exitstatus=view.exitstatus,
        tests=view.tests,
        collection_errors=view.collection_errors,
    )
    report["project"] = dict(view.project)
    if view.meta.get("environment"):
        report["environment"] = dict(view.meta["environment"])
    report["gates"] = [g.to_dict() for g in view.gates]
    report["sources"] = list(view.sources)
    report["stages"] = [dict(s) for s in view.stages]
    report["summary"] = summarize(report, view.entries, view.tests)
    return report
