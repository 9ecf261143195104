"""Fairness gates through pytest: declared, marker + fixture, regression, reports, bad settings."""

from __future__ import annotations

import json

# Loaded before pytester runs in-process (C extensions cannot be loaded twice in one process).
import fairlearn.metrics  # noqa: F401
import pytest


def _declare(project: pytest.Pytester, line: str) -> None:
    path = project.path / "pyproject.toml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + line + "\n")


def test_a_declared_fairness_gate_passes_and_reports_its_tables(project):
    _declare(
        project,
        'fairness = { sensitive = "group", metric = "demographic_parity_difference", max = 0.3 }',
    )
    result = project.runpytest(
        "-p", "no:cacheprovider", "--mlops-report=report.json", "-m", "fairness"
    )
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["pyproject.toml::fairness*fairness*PASSED*demographic_parity_difference=0.*<= 0.3"]
    )
    report = json.loads((project.path / "report.json").read_text())
    text = json.dumps(report)
    assert '"groups"' in text
    assert '"disparities"' in text
    assert '"selection_rate"' in text


def test_a_gate_that_cannot_decide_fails_with_its_reason(project):
    _declare(project, 'fairness = { sensitive = "group", max = 0.3 }')
    result = project.runpytest("-p", "no:cacheprovider", "--mlops-set", "gates.fairness.max=0.0")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*fairness gate 'fairness' INCONCLUSIVE: demographic_parity_difference must be <= 0: "
            "measured 0.* ?95% CI 0, 0.*? on group, the interval straddles the bound (n=300*",
            "*inconclusive verdicts fail*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_marker_and_fixture_form(project):
    project.makepyfile(
        test_fair="""
        import pytest

        @pytest.mark.fairness(sensitive="group", metric="demographic_parity_ratio", min=0.5)
        def test_ratio(mlops):
            result = mlops.fairness()
            assert result.metric == "demographic_parity_ratio"
            assert {row["group"] for row in result.tables["groups"]} == {"a", "b"}

        def test_regression_against_itself(mlops):
            result = mlops.fairness_regression(baseline="toy_model:make", sensitive="group")
            assert result.value == 0.0
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "test_fair.py")
    result.assert_outcomes(passed=2)


def test_a_misspelled_marker_setting_is_named(project):
    project.makepyfile(
        test_fair="""
        import pytest

        @pytest.mark.fairness(sensitve="group")
        def test_it(mlops):
            mlops.fairness()
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "test_fair.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.fairness: unknown setting 'sensitve' - did you mean 'sensitive'?*"]
    )


def test_bad_gate_settings_are_usage_errors(project):
    _declare(
        project, 'fairness = { sensitive = "group", metric = "demographic_parity", max = 0.1 }'
    )
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*gate 'fairness': 'metric' must be *, got 'demographic_parity' - did you mean*"]
    )


def test_a_missing_column_fails_the_gate_with_a_suggestion(project):
    _declare(project, 'fairness = { sensitive = "groups", max = 0.3 }')
    result = project.runpytest("-p", "no:cacheprovider", "-m", "fairness")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*has no sensitive column 'groups' - did you mean 'group'?*"])
    assert "Traceback" not in result.stdout.str()
