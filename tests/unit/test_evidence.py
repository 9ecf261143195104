"""How the evidence of a session is judged: outcomes, declared gates, merged stages."""

from __future__ import annotations

import pytest

from pytest_mlops.report.evidence import (
    NOT_RUN,
    GateRecord,
    TestRecord,
    gate_records,
    judge,
    merge_gates,
    merged_exitstatus,
    outcome_of,
)


@pytest.mark.parametrize(
    ("phases", "statuses", "errored", "expected"),
    [
        ({"setup": "passed", "call": "passed", "teardown": "passed"}, ["passed"], False, "passed"),
        ({"setup": "failed"}, [], False, "error"),
        ({"setup": "passed", "call": "passed", "teardown": "failed"}, ["passed"], False, "error"),
        ({"setup": "passed", "call": "failed"}, [], True, "error"),
        ({"setup": "passed", "call": "failed"}, ["failed"], False, "failed"),
        ({"setup": "passed", "call": "failed"}, [], False, "failed"),
        ({"setup": "passed", "call": "failed"}, ["inconclusive"], False, "inconclusive"),
        ({"setup": "passed", "call": "skipped"}, ["inconclusive"], False, "inconclusive"),
        ({"setup": "skipped"}, [], False, "skipped"),
        ({"setup": "passed", "call": "skipped"}, [], False, "skipped"),
        ({"setup": "passed"}, [], False, "error"),  # the session stopped during the test
    ],
)
def test_outcome_of_a_test(phases, statuses, errored, expected):
    assert outcome_of(phases, statuses, errored) == expected


@pytest.mark.parametrize(
    ("outcome", "setting", "passed"),
    [
        ("passed", "fail", True),
        ("inconclusive", "fail", False),
        ("inconclusive", "skip", False),
        ("inconclusive", "pass", True),
        ("skipped", "pass", False),
        ("error", "pass", False),
    ],
)
def test_a_declared_gate_passes_only_on_a_pass(outcome, setting, passed):
    tests = [TestRecord("c::g", outcome, gate="g")]
    [gate] = gate_records([("g", "accuracy")], tests, setting)
    assert (gate.outcome, gate.passed) == (outcome, passed)
    verdict = judge(gates=[gate], tests=tests, result_statuses=[], exitstatus=0)
    assert verdict.passed is passed


def test_a_gate_that_did_not_run_leaves_the_verdict_incomplete():
    gates = gate_records(
        [("a", "accuracy"), ("b", "drift")], [TestRecord("c::a", "passed", "a")], "fail"
    )
    assert [g.outcome for g in gates] == ["passed", NOT_RUN]
    verdict = judge(
        gates=gates, tests=[TestRecord("c::a", "passed", "a")], result_statuses=[], exitstatus=0
    )
    assert verdict.verdict == "incomplete"
    assert "'b'" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("kwargs", "verdict", "words"),
    [
        ({"exitstatus": 1}, "failed", "pytest exited with status 1 (tests failed)"),
        ({"exitstatus": 2}, "failed", "status 2 (interrupted)"),
        ({"exitstatus": 5}, "passed", ""),
        (
            {"collection_errors": [{"nodeid": "t.py", "message": "boom"}]},
            "failed",
            "collection error in t.py: boom",
        ),
        ({"tests": [TestRecord("t::x", "error")]}, "failed", "1 mlops test(s) errored: 't::x'"),
        ({"tests": [TestRecord("t::x", "failed")]}, "failed", "1 mlops test(s) failed"),
        ({"tests": [TestRecord("t::x", "skipped")]}, "passed", ""),
        ({"tests": [], "result_statuses": []}, "incomplete", "no mlops test ran"),
        ({"result_statuses": [("r", "failed")]}, "failed", "1 result(s) failed: 'r'"),
    ],
)
def test_the_verdict_names_its_reasons(kwargs, verdict, words):
    args = {
        "gates": [],
        "tests": [TestRecord("t::ok", "passed")],
        "result_statuses": [],
        "exitstatus": 0,
        **kwargs,
    }
    result = judge(**args)
    assert result.verdict == verdict
    assert words in " ".join(result.reasons)


def test_stage_gates_merge():
    data = [
        GateRecord("schema", "schema", "passed", True),
        GateRecord("acc", "accuracy", NOT_RUN, False),
    ]
    quality = [
        GateRecord("schema", "schema", NOT_RUN, False),
        GateRecord("acc", "accuracy", "passed", True),
    ]
    merged = merge_gates([data, quality])
    assert [(g.name, g.outcome, g.passed) for g in merged] == [
        ("schema", "passed", True),
        ("acc", "passed", True),
    ]
    rerun = [GateRecord("acc", "accuracy", "failed", False)]
    assert [(g.outcome, g.passed) for g in merge_gates([quality, rerun])][1] == ("failed", False)
    assert merge_gates([data])[1].passed is False


def test_a_gate_marked_passed_that_did_not_run_is_read_as_not_passed():
    gate = GateRecord.from_dict(
        {"name": "a", "kind": "accuracy", "outcome": NOT_RUN, "passed": True}
    )
    assert gate.passed is False


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [([0, 5, 0], 0), ([5, 5], 5), ([0, 5, 1], 1), ([None], None), ([2, 1], 2)],
)
def test_merged_exit_status(statuses, expected):
    assert merged_exitstatus(statuses) == expected


def test_the_renderings_say_why_the_verdict_is_not_passed():
    from pytest_mlops.report.html import render_html
    from pytest_mlops.report.json import build_report
    from pytest_mlops.report.markdown import render_markdown
    from pytest_mlops.report.merge import merge_reports

    tests = [TestRecord("pyproject.toml::accuracy", "error", message="boom")]
    report = build_report([], exitstatus=1, tests=tests)
    view = merge_reports([(report, [])])
    assert view.verdict == "failed"
    markdown = render_markdown(view)
    assert "FAILED" in markdown
    assert "- pytest exited with status 1 (tests failed)" in markdown
    assert "1 mlops test(s) errored: &#x27;pyproject.toml::accuracy&#x27;" in render_html(view)
