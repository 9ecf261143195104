"""What the plugin keeps for one pytest session, and the session's report.

Plain data, no pytest: the plugin stores a :class:`SessionState` in ``config.stash`` and fills it
from test reports (on the xdist controller they arrive from workers); the deploy plugin and the
terminal summary read the verdict through :func:`session_report`. The plugin imports this module
at start-up, so the report modules load when a report is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_mlops.config import ProjectConfig
from pytest_mlops.project import GateContext

if TYPE_CHECKING:
    from pytest_mlops.report.evidence import TestRecord
    from pytest_mlops.report.json import ReportEntry

__all__ = ["SessionState", "TestTrack", "session_report"]


@dataclass
class TestTrack:
    """What the reports of one mlops test said so far (phases arrive one by one)."""

    __test__ = False

    gate: str | None
    phases: dict[str, str] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    error: str = ""
    message: str = ""


@dataclass
class SessionState:
    """What the plugin keeps for one pytest session (stored in ``config.stash``)."""

    project: ProjectConfig
    context: GateContext
    entries: list[ReportEntry] = field(default_factory=list)
    tests: dict[str, TestTrack] = field(default_factory=dict)
    collection_errors: list[dict[str, str]] = field(default_factory=list)
    report_error: str = ""

    def test_records(self) -> list[TestRecord]:
        """Every mlops test that reported, with its outcome."""
        from pytest_mlops.report.evidence import TestRecord, outcome_of

        return [
            TestRecord(
                nodeid,
                outcome_of(t.phases, t.statuses, bool(t.error)),
                t.gate,
                (t.error or t.message)[:500],
            )
            for nodeid, t in self.tests.items()
        ]


def session_report(state: SessionState, exitstatus: int, *, inputs: bool = True) -> dict[str, Any]:
    """The session's JSON report: results, every declared gate and mlops test, the verdict.

    *inputs*: record the digests of the model and data files (what a written report needs; the
    verdict alone does not, and skips reading the files).
    """
    from pytest_mlops.report.json import build_report

    return build_report(
        state.entries,
        project=state.project,
        exitstatus=exitstatus,
        tests=state.test_records(),
        collection_errors=state.collection_errors,
        inputs=inputs,
    )
