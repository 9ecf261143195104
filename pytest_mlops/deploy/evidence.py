"""Test evidence as the deploy steps read it: a report of this format whose verdict passed.

``package``, ``push --to staging``, ``promote`` and ``pytest --mlops-deploy`` all ask the same
question through :func:`passing_evidence`: pytest passed, every declared gate ran and passed,
nothing errored (see :mod:`pytest_mlops.report.evidence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    from pytest_mlops.report.json import ReportEntry

__all__ = ["passing_evidence"]


def passing_evidence(
    path: Path, *, action: str, required: Sequence[str] = ()
) -> tuple[dict[str, Any], list[ReportEntry]]:
    """Load the report at *path* as evidence for *action* (``"package"``, ``"promote tiny v3"``).

    Raises
    ------
    ReportError
        The file is missing, unreadable, malformed or of an older format (bad input).
    DeployError
        ``refusing to <action>: ...`` when the verdict is not passed or a gate in *required*
        (the declared gates of the config being deployed) is not recorded as passed.
    """
    from pytest_mlops.report.json import load_report, report_verdict

    data, entries = load_report(path)
    verdict = report_verdict(data)
    if data.get("exitstatus") is None:
        raise DeployError(
            f"refusing to {action}: the report {str(path)!r} does not come from a pytest session "
            "(no exit status): pass the report pytest wrote with --mlops-report"
        )
    if not verdict.passed:
        raise DeployError(
            f"refusing to {action}: the test report {str(path)!r} verdict is "
            f"{verdict.verdict!r}: {verdict.explain()}"
        )
    recorded = {g["name"]: g for g in data.get("gates", [])}
    missing = [name for name in required if not (recorded.get(name) or {}).get("passed")]
    if missing:
        raise DeployError(
            f"refusing to {action}: the test report {str(path)!r} does not show the declared "
            f"gate(s) {missing} passing (a report of another config, or of one CI stage: merge "
            "the stage reports with `pytest-mlops report A.json B.json --json ALL.json`)"
        )
    return data, entries
