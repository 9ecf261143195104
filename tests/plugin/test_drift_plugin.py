"""The drift gates through pytest: declared, by marker and fixture, with a stored profile."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest


def declare(project: pytest.Pytester, *lines: str) -> None:
    text = (project.path / "pyproject.toml").read_text()
    head = text.split("[tool.pytest_mlops.gates]")[0]
    (project.path / "pyproject.toml").write_text(
        head + "[tool.pytest_mlops.gates]\n" + "\n".join(lines) + "\n"
    )


def test_declared_drift_gates_pass_on_same_distribution(project):
    declare(
        project,
        "drift = {}",
        "target_drift = {}",
        "prediction_drift = {}",
        'mmd = { kind = "multivariate_drift", n_permutations = 100 }',
    )
    result = project.runpytest("--mlops-report=report.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*pyproject.toml::drift*drifted_share=0*<= 0*"])
    report = json.loads((project.path / "report.json").read_text())
    drift = next(e for e in report["results"] if e["name"] == "drift")
    assert {r["column"] for r in drift["tables"]["columns"]} == {"x1", "x2", "group"}
    assert drift["tables"]["histograms"]


def test_a_shifted_current_fails_naming_the_column(project):
    shifted = pd.read_csv(project.path / "test.csv")
    shifted["x2"] = shifted["x2"] + 1.0
    shifted.to_csv(project.path / "test.csv", index=False)
    declare(project, 'drift = { correction = "bonferroni" }')
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*drifted_share must be <= 0: measured 0.3333 (1 of 3 columns drifted: x2*"]
    )
    declare(project, "drift = { max_drifted_share = 0.5 }")
    project.runpytest().assert_outcomes(passed=1)


def test_marker_fixture_and_profile(project):
    project.makepyfile(
        test_user_drift=textwrap.dedent(
            """
            import pytest
            from pytest_mlops import DriftProfile

            @pytest.mark.drift(alpha=0.01, columns=["x1"])
            def test_marker_settings(mlops):
                result = mlops.drift()
                assert [r["column"] for r in result.tables["columns"]] == ["x1"]
                assert result.tables["columns"][0]["p_adjusted"] >= 0.01 or not result.failed

            def test_profile(mlops, tmp_path):
                path = DriftProfile.fit(mlops.reference).save(tmp_path / "ref.npz")
                result = mlops.drift(profile=str(path))
                assert result.context["split"] == "profile vs current"
            """
        )
    )
    declare(project, "schema = {}")
    result = project.runpytest("test_user_drift.py")
    result.assert_outcomes(passed=2)


def test_bad_settings_are_usage_errors(project):
    declare(project, 'drift = { correction = "holm" }')
    result = project.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["*gate 'drift'*'correction' must be 'bh', 'bonferroni' or 'none'*"]
    )
    declare(project, 'drift = { profile = "missing.npz" }')
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drift profile*missing.npz*does not exist*"])
