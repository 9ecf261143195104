"""The versioned, machine-readable JSON report: the results and the evidence of the session.

See :mod:`pytest_mlops.report.evidence` for what it records and how the verdict is judged.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_mlops._files import content_digest, write_atomic
from pytest_mlops._version import __version__
from pytest_mlops.errors import ReportError
from pytest_mlops.report.evidence import (
    OUTCOMES,
    GateRecord,
    TestRecord,
    Verdict,
    gate_records,
    judge,
    outcome_of,
)
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportEntry",
    "build_report",
    "judge_report",
    "load_report",
    "report_verdict",
    "write_report",
]

REPORT_FORMAT = "pytest-mlops-report"
#: 2: the report records every declared gate and mlops test with its outcome, collection errors
#: and pytest's exit status, and the verdict is judged from all of them.
REPORT_VERSION = 2


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


def build_report(
    entries: Iterable[ReportEntry],
    *,
    project: ProjectConfig | None = None,
    exitstatus: int | None = None,
    tests: Sequence[TestRecord] | None = None,
    collection_errors: Sequence[Mapping[str, str]] = (),
    inputs: bool = True,
) -> dict[str, Any]:
    """The report as a dict. Entries are sorted, so runs in any order (xdist) give the same report.

    *tests* are the session's mlops tests (by default one per test that recorded a result);
    the declared gates come from *project*. The verdict is judged from all of it (see
    :mod:`pytest_mlops.report.evidence`). With *inputs*, the project table also holds the
    digests of the model and data files tested (:func:`input_digests`), which bind the report
    to them: ``package`` and stage merges refuse a report of other files.
    """
    ordered = sorted(entries, key=lambda e: (e.nodeid, e.result.name))
    records = sorted(tests if tests is not None else _tests_of(ordered), key=lambda t: t.nodeid)
    gates = gate_records(_declared(project), records, _inconclusive(project))
    errors = [{"nodeid": str(e["nodeid"]), "message": str(e["message"])} for e in collection_errors]
    report = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pytest_mlops": __version__,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "executable": sys.executable,
        },
        "project": _project_table(project, inputs=inputs),
        "exitstatus": exitstatus,
        "gates": [g.to_dict() for g in gates],
        "tests": [t.to_dict() for t in records],
        "collection_errors": errors,
        "summary": {},
        "results": [e.to_dict() for e in ordered],
    }
    report["summary"] = summarize(report, ordered, records)
    return report


def summarize(
    report: Mapping[str, Any], entries: Sequence[ReportEntry], tests: Sequence[TestRecord]
) -> dict[str, Any]:
    """The ``summary`` table: result counts, test outcome counts, the verdict and its reasons."""
    verdict = judge_report(report, entries, tests)
    counts = {
        s: sum(e.result.status == s for e in entries) for s in ("passed", "failed", "inconclusive")
    }
    outcomes = {o: sum(t.outcome == o for t in tests) for o in OUTCOMES}
    return {
        "total": len(entries),
        **counts,
        "tests": outcomes,
        "verdict": verdict.verdict,
        "reasons": list(verdict.reasons),
    }


def judge_report(
    report: Mapping[str, Any], entries: Sequence[ReportEntry], tests: Sequence[TestRecord]
) -> Verdict:
    """The verdict of a report's evidence (its gates, tests, results and exit status)."""
    return judge(
        gates=[GateRecord.from_dict(g) for g in report.get("gates", [])],
        tests=tests,
        result_statuses=[(e.result.name, e.result.status) for e in entries],
        exitstatus=report.get("exitstatus"),
        collection_errors=report.get("collection_errors", []),
    )


def _tests_of(entries: Sequence[ReportEntry]) -> list[TestRecord]:
    by_id: dict[str, list[ReportEntry]] = {}
    for entry in entries:
        by_id.setdefault(entry.nodeid, []).append(entry)
    return [
        TestRecord(
            nodeid,
            outcome_of({"call": group[0].outcome}, (e.result.status for e in group), False),
        )
        for nodeid, group in by_id.items()
    ]


def _declared(project: ProjectConfig | None) -> list[tuple[str, str]]:
    return [(g.name, g.kind) for g in project.gates] if project is not None else []


def _inconclusive(project: ProjectConfig | None) -> str:
    return project.settings.inconclusive if project is not None else "fail"


#: the settings whose files a report is bound to
INPUTS = ("model", "reference", "current")


def input_digests(project: ProjectConfig) -> dict[str, str]:
    """``{setting: "sha256:..."}`` of the model and data files (or directories) configured.

    A setting that names no file or directory (a code-first model ``package.module:factory``,
    data not configured) is left out.
    """
    out = {}
    for name in INPUTS:
        spec = getattr(project.settings, name)
        if not spec:
            continue
        try:
            digest = content_digest(project.resolve_path(spec))
        except OSError as exc:
            raise ReportError(f"cannot read {name} {spec!r} to record its digest: {exc}") from None
        if digest is not None:
            out[name] = digest
    return out


def stale_inputs(report: Mapping[str, Any], now: Mapping[str, str]) -> list[str]:
    """What a report was made on that differs from *now* (:func:`input_digests`), in words."""
    project = report.get("project") or {}
    tested = project.get("inputs") or {}
    return [
        f"{name} {project.get(name)!r} was {digest[:19]}... when tested, "
        + (f"now {now[name][:19]}..." if name in now else "now it is not there")
        for name, digest in sorted(tested.items())
        if now.get(name) != digest
    ]


def _project_table(project: ProjectConfig | None, *, inputs: bool = True) -> dict[str, Any]:
    if project is None:
        return {}
    s = project.settings
    extra = {"inputs": input_digests(project)} if inputs else {}
    return {
        "config": project.source,
        "model": _relative(s.model, project.base_dir),
        "reference": _relative(s.reference, project.base_dir),
        "current": _relative(s.current, project.base_dir),
        "target": s.target,
        "sensitive": list(s.sensitive),
        "seed": s.seed,
        "inconclusive": s.inconclusive,
        "gates": [g.name for g in project.gates],
        **extra,
    }


def _relative(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    try:
        return str(Path(value).relative_to(base))
    except ValueError:
        return value


def write_report(path: Path, report: Mapping[str, Any]) -> Path:
    """Write atomically: a reader never sees half a report; OutputError if it cannot be written."""
    text = json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return write_atomic(path, text, what="the report")


_RERUN = "re-run pytest with --mlops-report=PATH to write a report of this version"


def load_report(path: str | Path) -> tuple[dict[str, Any], list[ReportEntry]]:
    """Read a report; a ReportError says what is wrong with a foreign, old or malformed file.

    The verdict recorded in the file must be the one its evidence gives (an edited verdict is
    refused).
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ReportError(
            f"{str(path)!r} is not a pytest-mlops report (no 'format': {REPORT_FORMAT!r})"
        )
    version = data.get("version")
    if version != REPORT_VERSION:
        older = isinstance(version, int) and version < REPORT_VERSION
        what = (
            "was written by an older pytest-mlops and does not record errored or deselected gates"
            if older
            else f"has format version {version!r}"
        )
        raise ReportError(
            f"the report {str(path)!r} {what}; this pytest-mlops ({__version__}) reads version "
            f"{REPORT_VERSION}: {_RERUN}"
        )
    try:
        entries = _parsed(data, "results", ReportEntry.from_dict)
        tests = _parsed(data, "tests", TestRecord.from_dict)
        _parsed(data, "gates", GateRecord.from_dict)
        _parsed(data, "collection_errors", dict)
        verdict = judge_report(data, entries, tests)
        recorded = _field(data, "summary", dict)["verdict"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportError(f"the report {str(path)!r} is malformed: {_what(exc)}") from None
    if recorded != verdict.verdict:
        raise ReportError(
            f"the report {str(path)!r} says verdict {recorded!r} but its gates, tests and exit "
            f"status give {verdict.verdict!r} (was it edited?): {_RERUN}"
        )
    return data, entries


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"the report {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ReportError(f"the report {str(path)!r} is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read the report {str(path)!r}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"the report {str(path)!r} is not valid JSON (truncated or corrupted?): {exc}"
        ) from None


T = TypeVar("T")


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind):
        raise ValueError(f"{key!r} must be a JSON {'list' if kind is list else 'object'}")
    return value


def _parsed(data: Mapping[str, Any], key: str, parse: Callable[[Any], T]) -> list[T]:
    out = []
    for i, item in enumerate(_field(data, key, list)):
        if not isinstance(item, dict):
            raise ValueError(f"{key}[{i}] must be a JSON object, got {type(item).__name__}")
        try:
            out.append(parse(item))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{key}[{i}]: {_what(exc)}") from None
    return out


def _what(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} field"
    if isinstance(exc, TypeError | AttributeError):
        return "a field has the wrong type"
    return str(exc)


def report_verdict(data: Mapping[str, Any]) -> Verdict:
    """The verdict of a report loaded with :func:`load_report`, with its reasons."""
    entries = [ReportEntry.from_dict(r) for r in data["results"]]
    tests = [TestRecord.from_dict(t) for t in data["tests"]]
    return judge_report(data, entries, tests)
