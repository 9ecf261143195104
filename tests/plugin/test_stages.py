"""``pytest-mlops stage``: a CI gate stage passes only when its declared gates ran and passed."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from pytest_mlops.config import load_config
from pytest_mlops.stages import STAGES, decide, stage_gates

ALL_FAMILIES = textwrap.dedent(
    """
    champion = { baseline = "toy_model:make", margin = 0.01 }
    fairness = { sensitive = "group", metric = "demographic_parity_ratio", min = 0.5 }
    drift = {}
    latency = { batch_size = 1, p50_ms = 500 }
    latency_gpu = { kind = "latency", device = "cuda", p50_ms = 50 }
    """
)


# --- the decision ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "ran", "exitstatus", "status", "code", "says"),
    [
        (["schema", "integrity"], {"schema", "integrity"}, 0, "passed", 0, "2 declared data gates passed: schema, integrity"),
        (["schema", "integrity"], {"schema"}, 0, "failed", 1, "1 of 2 declared data gates did not run: integrity (deselected?)"),
        (["schema"], set(), 5, "failed", 1, "1 of 1 declared data gate did not run: schema (pytest collected no test)"),
        ([], set(), 5, "passed", 0, "the project declares no data gate and has no test marked 'data': nothing to check"),
        ([], set(), 0, "passed", 0, "no data gate is declared; the tests marked 'data' passed"),
        (["schema"], {"schema"}, 1, "failed", 1, "a gate or test failed"),
        (["schema"], {"schema"}, 2, "error", 2, "pytest stopped with exit status 2"),
        ([], set(), 4, "error", 2, "pytest stopped with exit status 4"),
    ],
)  # fmt: skip
def test_decide(declared, ran, exitstatus, status, code, says):
    verdict = decide(STAGES["data"], declared, ran, exitstatus)
    assert (verdict.status, verdict.exit_code) == (status, code)
    assert verdict.message.startswith(says)
    assert verdict.line().startswith(f"stage data: {status.upper()} - ")


def test_each_declared_gate_belongs_to_one_stage(project):
    (project.path / "pyproject.toml").write_text(
        (project.path / "pyproject.toml").read_text() + ALL_FAMILIES
    )
    config = load_config(project.path / "pyproject.toml")
    owned = {name: stage_gates(stage, config) for name, stage in STAGES.items()}
    assert owned == {
        "data": ("schema",),
        "quality": ("accuracy", "champion"),
        "fairness": ("fairness",),
        "drift": ("drift",),
        "latency-cpu": ("latency",),
        "latency-gpu": ("latency_gpu",),
    }
    assert sorted(g for names in owned.values() for g in names) == sorted(
        g.name for g in config.gates
    )


# --- the command, run as the templates run it ---------------------------------------------------


def stage(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.run(sys.executable, "-m", "pytest_mlops.cli", "stage", *args, timeout=300)


def test_a_stage_whose_declared_gates_pass(project):
    result = stage(project, "quality", "--report", "build/quality.json", "--junitxml", "q.xml")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["stage quality: PASSED - 1 declared accuracy gate passed: accuracy"]
    )
    report = json.loads((project.path / "build" / "quality.json").read_text())
    assert [r["name"] for r in report["results"]] == ["accuracy"]
    assert (project.path / "q.xml").is_file()


def test_a_stage_whose_gates_were_deselected_fails_and_names_them(project):
    result = stage(project, "quality", "--pytest-args=-k 'not accuracy'")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "stage quality: FAILED - 1 of 1 declared accuracy gate did not run: accuracy (pytest collected no test)"
        ]
    )


def test_a_stage_without_configuration_fails_before_running(project):
    (project.path / "pyproject.toml").unlink()
    project.makepyfile(test_code="import pytest\n\n@pytest.mark.data\ndef test_x():\n    pass\n")
    result = stage(project, "data")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["*pytest-mlops stage data: no pytest-mlops configuration in *"])
    result.stdout.fnmatch_lines(
        ["stage data: ERROR - no pytest-mlops configuration (exit status 4*"]
    )
    assert "1 passed" not in result.stdout.str()


def test_a_family_the_project_does_not_use_passes_empty(project):
    result = stage(project, "fairness")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "stage fairness: PASSED - the project declares no fairness gate and has no test marked 'fairness': nothing to check"
        ]
    )


@pytest.mark.parametrize(("body", "ret", "says"), [
    ("assert True", 0, "PASSED - no fairness gate is declared; the tests marked 'fairness' passed"),
    ("assert False", 1, "FAILED - a gate or test failed"),
])  # fmt: skip
def test_a_code_first_test_of_the_family_runs_in_its_stage(project, body, ret, says):
    project.makepyfile(
        test_fair=f"import pytest\n\n@pytest.mark.fairness\ndef test_fair():\n    {body}\n"
    )
    result = stage(project, "fairness")
    assert result.ret == ret
    result.stdout.fnmatch_lines([f"stage fairness: {says}"])


def test_a_failing_gate_fails_its_stage(project):
    config = (project.path / "pyproject.toml").read_text().replace("min = 0.8", "min = 0.99")
    (project.path / "pyproject.toml").write_text(config)
    result = stage(project, "quality")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*accuracy gate 'accuracy' FAILED*", "stage quality: FAILED*"])


def test_bad_stage_names_and_arguments_are_usage_errors(project):
    result = stage(project, "qualty")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["*unknown stage 'qualty' - did you mean 'quality'?*"])
    result = stage(project, "data", "--pytest-args=-k 'unclosed")
    assert result.ret == 2
    result.stderr.fnmatch_lines(['*--pytest-args "-k \'unclosed": No closing quotation*'])
