"""Combine JSON reports (one per CI stage) into one view for the Markdown and HTML renderings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlops.report.json import ReportEntry, load_report

__all__ = ["ReportView", "load_reports", "merge_reports", "merged_report", "write_text"]


@dataclass(frozen=True)
class ReportView:
    """What the renderers need: the entries, the verdict and where the numbers come from.

    Parameters
    ----------
    entries:
        Every recorded result, sorted by test id and name.
    verdict:
        ``"passed"`` or ``"failed"`` (a failed result, a failed test or a failed pytest run).
    project:
        The ``project`` table of the first report (model, datasets, seed...).
    meta:
        ``created``, ``pytest_mlops`` version and the environment of the first report.
    sources:
        The report files, as given.
    exitstatus:
        The worst pytest exit status among the reports (``None`` if none was recorded).
    """

    entries: tuple[ReportEntry, ...]
    verdict: str
    project: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    exitstatus: int | None = None

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
    """Merge loaded reports: entries are concatenated, the verdict is the worst of them."""
    entries = sorted(
        (e for _, batch in reports for e in batch), key=lambda e: (e.nodeid, e.result.name)
    )
    verdicts = [str(data.get("summary", {}).get("verdict", "passed")) for data, _ in reports]
    statuses = [int(s) for data, _ in reports if (s := data.get("exitstatus")) is not None]
    failed = (
        any(v != "passed" for v in verdicts)
        or any(e.result.failed or e.outcome == "failed" for e in entries)
        or any(s not in (0, 5) for s in statuses)
    )
    first: Mapping[str, Any] = reports[0][0] if reports else {}
    return ReportView(
        entries=tuple(entries),
        verdict="failed" if failed else "passed",
        project=dict(first.get("project") or {}),
        meta={
            "created": first.get("created"),
            "pytest_mlops": first.get("pytest_mlops"),
            "environment": dict(first.get("environment") or {}),
        },
        sources=tuple(sources),
        exitstatus=max(statuses) if statuses else None,
    )


def load_reports(paths: Sequence[str | Path]) -> ReportView:
    """Read and merge JSON reports; a ReportError names the file that cannot be read."""
    loaded = [load_report(p) for p in paths]
    return merge_reports(loaded, [str(p) for p in paths])


def write_text(path: str | Path, text: str) -> Path:
    """Write a rendering atomically; a ReportError names the path that cannot be written."""
    import os
    import tempfile

    from pytest_mlops.errors import ReportError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise ReportError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    return target


def merged_report(view: ReportView) -> dict[str, Any]:
    """The merged view as a JSON report of the current format (readable by :func:`load_report`)."""
    from pytest_mlops.report.json import build_report

    report = build_report(view.entries, exitstatus=view.exitstatus)
    report["project"] = dict(view.project)
    if view.meta.get("environment"):
        report["environment"] = dict(view.meta["environment"])
    report["summary"]["verdict"] = view.verdict
    report["sources"] = list(view.sources)
    return report
