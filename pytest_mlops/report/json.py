"""The versioned, machine-readable JSON report."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ReportError
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportEntry",
    "build_report",
    "load_report",
    "write_report",
]

REPORT_FORMAT = "pytest-mlops-report"
REPORT_VERSION = 1


@dataclass(frozen=True)
class ReportEntry:
    """One recorded result and the test that recorded it."""

    nodeid: str
    outcome: str
    result: CheckResult

    def to_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "outcome": self.outcome, **self.result.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportEntry:
        return cls(
            nodeid=str(data["nodeid"]),
            outcome=str(data["outcome"]),
            result=CheckResult.from_dict(data),
        )


def _version() -> str:
    from pytest_mlops import __version__

    return __version__


def build_report(
    entries: Iterable[ReportEntry],
    *,
    project: ProjectConfig | None = None,
    exitstatus: int | None = None,
) -> dict[str, Any]:
    """The report as a dict. Entries are sorted, so runs in any order (xdist) give the same report."""
    ordered = sorted(entries, key=lambda e: (e.nodeid, e.result.name))
    counts = {
        s: sum(e.result.status == s for e in ordered) for s in ("passed", "failed", "inconclusive")
    }
    settings: dict[str, Any] = {}
    if project is not None:
        s = project.settings
        settings = {
            "config": project.source,
            "model": _relative(s.model, project.base_dir),
            "reference": _relative(s.reference, project.base_dir),
            "current": _relative(s.current, project.base_dir),
            "target": s.target,
            "sensitive": list(s.sensitive),
            "seed": s.seed,
            "inconclusive": s.inconclusive,
            "gates": [g.name for g in project.gates],
        }
    verdict = (
        "passed"
        if not counts["failed"] and not any(e.outcome == "failed" for e in ordered)
        else "failed"
    )
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pytest_mlops": _version(),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "executable": sys.executable,
        },
        "project": settings,
        "exitstatus": exitstatus,
        "summary": {"total": len(ordered), **counts, "verdict": verdict},
        "results": [e.to_dict() for e in ordered],
    }


def _relative(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    try:
        return str(Path(value).relative_to(base))
    except ValueError:
        return value


def write_report(path: Path, report: Mapping[str, Any]) -> Path:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=False, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_report(path: str | Path) -> tuple[dict[str, Any], list[ReportEntry]]:
    """Read a report; a ReportError says what is wrong with a foreign, old or truncated file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"the report {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read the report {str(path)!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"the report {str(path)!r} is not valid JSON (truncated or corrupted?): {exc}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ReportError(
            f"{str(path)!r} is not a pytest-mlops report (no 'format': {REPORT_FORMAT!r})"
        )
    if data.get("version") != REPORT_VERSION:
        raise ReportError(
            f"the report {str(path)!r} has format version {data.get('version')!r}; this "
            f"pytest-mlops ({_version()}) reads version {REPORT_VERSION}"
        )
    try:
        entries = [ReportEntry.from_dict(r) for r in data["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"the report {str(path)!r} has a malformed result: {exc}") from None
    return data, entries
