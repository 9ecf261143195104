"""The evidence of a test session: every declared gate and every mlops test, and the verdict.

A report is evidence only of what ran. It records the outcome of every *mlops test* (a declared
gate, a test with one of the plugin's markers or fixtures, a test that recorded a result) as one
of ``passed``, ``failed``, ``inconclusive``, ``error`` or ``skipped``; the outcome of every
*declared gate* (``not run`` when the session deselected it with ``-m``/``-k``); the collection
errors; and pytest's exit status. The verdict follows from them:

* ``failed``: pytest did not pass (an exit status other than 0, or 5 "no tests collected"), a
  collection error, an mlops test or result that errored or failed, or a declared gate that ran
  and did not pass (skipped; inconclusive unless inconclusive verdicts are set to pass);
* ``incomplete``: nothing failed, but a declared gate did not run, or no mlops test ran at all;
* ``passed``: otherwise. Only a passed verdict is deployable.

Stage reports (one family per CI stage, the rest deselected) are each ``incomplete``; merged with
``pytest-mlops report a.json b.json --json all.json`` every declared gate must have run and passed
in some stage, and nothing may have failed or errored in any, for the merged verdict to pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NOT_RUN",
    "OUTCOMES",
    "GateRecord",
    "TestRecord",
    "Verdict",
    "gate_records",
    "judge",
    "merge_gates",
    "merge_tests",
    "merged_exitstatus",
    "outcome_of",
    "worst",
]

OUTCOMES = ("passed", "failed", "inconclusive", "error", "skipped")
NOT_RUN = "not run"
#: worst first: the outcome a test or gate takes when several are known for it
_SEVERITY = ("error", "failed", "inconclusive", "skipped", "passed")
_EXIT_NAMES = {1: "tests failed", 2: "interrupted", 3: "internal error", 4: "usage error"}
_SHOWN = 5


@dataclass(frozen=True)
class TestRecord:
    """One mlops test and how it ended; *gate* names the declared gate it runs, if any."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str
    gate: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "gate": self.gate,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        outcome = str(data["outcome"])
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown test outcome {outcome!r}")
        gate = data.get("gate")
        return cls(
            str(data["nodeid"]),
            outcome,
            None if gate is None else str(gate),
            str(data.get("message") or ""),
        )


@dataclass(frozen=True)
class GateRecord:
    """One declared gate: its outcome (``not run`` if it did not run) and whether it passed.

    An inconclusive gate passes only where inconclusive verdicts are set to pass.
    """

    name: str
    kind: str
    outcome: str
    passed: bool
    nodeid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "passed": self.passed,
            "nodeid": self.nodeid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRecord:
        outcome = str(data["outcome"])
        if outcome not in (*OUTCOMES, NOT_RUN):
            raise ValueError(f"unknown gate outcome {outcome!r}")
        passed = data["passed"]
        if not isinstance(passed, bool):
            raise ValueError(f"gate {data['name']!r}: 'passed' must be true or false")
        nodeid = data.get("nodeid")
        return cls(
            str(data["name"]),
            str(data["kind"]),
            outcome,
            passed and outcome != NOT_RUN,
            None if nodeid is None else str(nodeid),
        )


@dataclass(frozen=True)
class Verdict:
    """``passed``, ``failed`` or ``incomplete``, and why (empty when passed)."""

    verdict: str
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def explain(self) -> str:
        """The reasons in one line, for refusals."""
        return "; ".join(self.reasons) if self.reasons else "every gate passed"


def worst(outcomes: Iterable[str]) -> str | None:
    """The most severe of *outcomes* (``error`` > ``failed`` > ``inconclusive`` > ...)."""
    seen = set(outcomes)
    return next((o for o in _SEVERITY if o in seen), None)


def outcome_of(phases: Mapping[str, str], statuses: Iterable[str], errored: bool) -> str:
    """A test's outcome from its phases (``setup``/``call``/``teardown`` -> pytest outcome).

    *statuses* are those of the results it recorded; *errored* says the check itself raised
    (the gate could not be evaluated), which is an error, not a failed verdict.
    """
    found = set(statuses)
    if phases.get("setup") == "failed" or phases.get("teardown") == "failed" or errored:
        return "error"
    if "failed" in found:
        return "failed"
    if "inconclusive" in found:
        return "inconclusive"
    if "skipped" in (phases.get("setup"), phases.get("call")):
        return "skipped"
    call = phases.get("call")
    if call in ("passed", "failed"):
        return call
    return "error"  # set up but never called: the session stopped during the test


def gate_records(
    declared: Sequence[tuple[str, str]], tests: Sequence[TestRecord], inconclusive: str
) -> list[GateRecord]:
    """Every declared ``(name, kind)`` with the outcome of the test that ran it, if one did."""
    out = []
    for name, kind in declared:
        ran = [t for t in tests if t.gate == name]
        outcome = worst(t.outcome for t in ran) or NOT_RUN
        passed = outcome == "passed" or (outcome == "inconclusive" and inconclusive == "pass")
        out.append(GateRecord(name, kind, outcome, passed, ran[0].nodeid if ran else None))
    return out


def judge(
    *,
    gates: Sequence[GateRecord],
    tests: Sequence[TestRecord],
    result_statuses: Sequence[tuple[str, str]],
    exitstatus: int | None,
    collection_errors: Sequence[Mapping[str, str]] = (),
) -> Verdict:
    """The verdict of the evidence (see the module docstring).

    *result_statuses* are ``(result name, status)`` pairs.
    """
    failures: list[str] = []
    if exitstatus not in (None, 0, 5):
        name = _EXIT_NAMES.get(int(exitstatus), "failed")
        failures.append(f"pytest exited with status {exitstatus} ({name})")
    failures += [
        f"collection error in {e.get('nodeid') or 'the session'}: {e.get('message', '')}".rstrip(
            ": "
        )
        for e in collection_errors[:_SHOWN]
    ]
    declared = {g.name for g in gates}
    for outcome in ("error", "failed"):
        bad = [t for t in tests if t.outcome == outcome and t.gate not in declared]
        if bad:
            verb = "errored" if outcome == "error" else "failed"
            failures.append(f"{len(bad)} mlops test(s) {verb}: {_names(t.nodeid for t in bad)}")
    ran_badly = [g for g in gates if g.outcome != NOT_RUN and not g.passed]
    if ran_badly:
        failures.append(
            "declared gate(s) did not pass: "
            + ", ".join(f"{g.name!r} {g.outcome}" for g in ran_badly[:_SHOWN])
        )
    failed_results = [name for name, status in result_statuses if status == "failed"]
    if failed_results and not any(t.outcome == "failed" for t in tests):
        failures.append(f"{len(failed_results)} result(s) failed: {_names(failed_results)}")
    missing: list[str] = []
    not_run = [g.name for g in gates if g.outcome == NOT_RUN]
    if not_run:
        missing.append(
            f"declared gate(s) did not run: {_names(not_run)} (deselected with -m/-k, or run in "
            "another CI stage: merge the stage reports with `pytest-mlops report A.json B.json "
            "--json ALL.json`)"
        )
    if not tests and not result_statuses:
        missing.append("no mlops test ran, so there is no evidence")
    if failures:
        return Verdict("failed", tuple(failures + missing))
    return Verdict("incomplete", tuple(missing)) if missing else Verdict("passed")


def _names(names: Iterable[str]) -> str:
    items = list(names)
    shown = ", ".join(repr(n) for n in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def merge_gates(stages: Sequence[Sequence[GateRecord]]) -> list[GateRecord]:
    """Declared gates across stage reports.

    A gate passes if it ran somewhere and passed everywhere it ran; a gate declared by any stage
    is required.
    """
    order: dict[str, list[GateRecord]] = {}
    for stage in stages:
        for gate in stage:
            order.setdefault(gate.name, []).append(gate)
    out = []
    for name, seen in order.items():
        ran = [g for g in seen if g.outcome != NOT_RUN]
        outcome = worst(g.outcome for g in ran) or NOT_RUN
        passed = bool(ran) and all(g.passed for g in ran)
        nodeid = ran[0].nodeid if ran else seen[0].nodeid
        out.append(GateRecord(name, seen[0].kind, outcome, passed, nodeid))
    return out


def merge_tests(stages: Sequence[Sequence[TestRecord]]) -> list[TestRecord]:
    """Tests across stage reports; a test that ran in several stages keeps its worst outcome."""
    by_id: dict[str, TestRecord] = {}
    for stage in stages:
        for test in stage:
            known = by_id.get(test.nodeid)
            if known is None or worst((known.outcome, test.outcome)) != known.outcome:
                by_id[test.nodeid] = test
    return sorted(by_id.values(), key=lambda t: t.nodeid)


def merged_exitstatus(statuses: Sequence[int | None]) -> int | None:
    """One status for several sessions: the worst.

    5 (a stage with nothing to run) counts only when every stage had nothing to run.
    """
    known = [int(s) for s in statuses if s is not None]
    if not known:
        return None
    ran = [s for s in known if s != 5]
    return max(ran) if ran else 5
