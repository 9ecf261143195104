"""The report is the evidence of the whole session: errored, deselected and skipped tests count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import toy_frame

from pytest_mlops.cli import main
from pytest_mlops.report.json import load_report

EXTRA_TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

@pytest.fixture
def leaky():
    yield
    raise RuntimeError("teardown broke")

@pytest.mark.accuracy
def test_setup_error(mlops, broken):
    pass

@pytest.mark.accuracy
def test_teardown_error(mlops, leaky):
    pass

@pytest.mark.drift
def test_drift_skipped():
    pytest.skip("no production data yet")

def test_plain():
    pass
"""


def _report(project: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    report: dict[str, Any] = json.loads((project.path / name).read_text())
    return report


def _nan_labels(project: pytest.Pytester) -> None:
    frame = toy_frame(300, 2)
    frame["y"] = float("nan")
    frame.to_csv(project.path / "test.csv", index=False)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_errored_gate_is_in_the_report_and_the_verdict_fails(project, xdist):
    if xdist:
        pytest.importorskip("xdist")
    _nan_labels(project)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--mlops-report=r.json", *xdist)
    assert result.ret == 1
    report = _report(project)
    gates = {g["name"]: (g["outcome"], g["passed"]) for g in report["gates"]}
    assert gates == {"schema": ("passed", True), "accuracy": ("error", False)}
    accuracy = next(t for t in report["tests"] if t["gate"] == "accuracy")
    assert accuracy["outcome"] == "error"
    assert "has 300 missing label(s)" in accuracy["message"]
    assert report["exitstatus"] == 1
    assert report["summary"]["verdict"] == "failed"
    assert "declared gate(s) did not pass: 'accuracy' error" in report["summary"]["reasons"]
    result.stdout.fnmatch_lines(["mlops verdict: FAILED"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_setup_teardown_errors_and_skips_of_mlops_tests_are_recorded(project, xdist):
    if xdist:
        pytest.importorskip("xdist")
    project.makepyfile(test_extra=EXTRA_TESTS)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--mlops-report=r.json", *xdist)
    assert result.ret == 1
    report = _report(project)
    outcomes = {t["nodeid"]: t["outcome"] for t in report["tests"]}
    assert outcomes == {
        "pyproject.toml::accuracy": "passed",
        "pyproject.toml::schema": "passed",
        "test_extra.py::test_drift_skipped": "skipped",
        "test_extra.py::test_setup_error": "error",
        "test_extra.py::test_teardown_error": "error",
    }  # test_plain is not an mlops test
    messages = {t["nodeid"]: t["message"] for t in report["tests"]}
    assert "the fixture broke" in messages["test_extra.py::test_setup_error"]
    assert "teardown broke" in messages["test_extra.py::test_teardown_error"]
    assert messages["test_extra.py::test_drift_skipped"] == "no production data yet"
    assert report["summary"]["verdict"] == "failed"
    assert any("2 mlops test(s) errored" in r for r in report["summary"]["reasons"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_collection_error_is_recorded(project, xdist):
    if xdist:
        pytest.importorskip("xdist")
    project.makepyfile(test_broken="import no_such_module_here\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--mlops-report=r.json", *xdist)
    assert result.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.TESTS_FAILED)
    report = _report(project)
    assert report["collection_errors"][0]["nodeid"] == "test_broken.py"
    assert "no_such_module_here" in report["collection_errors"][0]["message"]
    assert report["summary"]["verdict"] == "failed"


def test_a_deselected_gate_makes_the_report_incomplete(project):
    result = project.runpytest("-p", "no:cacheprovider", "-m", "data", "--mlops-report=r.json")
    result.assert_outcomes(passed=1, deselected=1)
    report = _report(project)
    gates = {g["name"]: g["outcome"] for g in report["gates"]}
    assert gates == {"schema": "passed", "accuracy": "not run"}
    assert report["summary"]["verdict"] == "incomplete"
    assert "declared gate(s) did not run: 'accuracy'" in report["summary"]["reasons"][0]


def test_stage_reports_merge_into_a_passing_verdict_only_when_every_gate_ran(project):
    project.runpytest("-p", "no:cacheprovider", "-m", "data", "--mlops-report=data.json")
    project.runpytest("-p", "no:cacheprovider", "-m", "accuracy", "--mlops-report=quality.json")
    project.runpytest("-p", "no:cacheprovider", "-m", "fairness", "--mlops-report=none.json")
    stages = [str(project.path / n) for n in ("data.json", "quality.json", "none.json")]
    merged = project.path / "merged.json"
    assert main(["report", *stages, "--json", str(merged)]) == 0
    data, _ = load_report(merged)
    assert data["summary"]["verdict"] == "passed"
    assert data["exitstatus"] == 0
    assert [s["verdict"] for s in data["stages"]] == ["incomplete", "incomplete", "incomplete"]
    assert all(g["passed"] for g in data["gates"])
    partial = project.path / "partial.json"
    assert main(["report", stages[0], stages[2], "--json", str(partial)]) == 1
    data, _ = load_report(partial)
    assert data["summary"]["verdict"] == "incomplete"
    assert "'accuracy'" in data["summary"]["reasons"][0]


def test_an_inconclusive_test_is_recorded_as_such(project):
    project.makepyfile(
        test_incon="""
        from pytest_mlops import CheckResult
        def test_undecided(mlops):
            mlops.check(CheckResult(name="u", kind="accuracy", status="inconclusive", message="?"))
        """
    )
    for setting, verdict in (("fail", "failed"), ("skip", "passed"), ("pass", "passed")):
        project.runpytest(
            "-p",
            "no:cacheprovider",
            f"--mlops-inconclusive={setting}",
            f"--mlops-report={setting}.json",
        )
        report = _report(project, f"{setting}.json")
        assert report["summary"]["verdict"] == verdict, report["summary"]
        test = next(t for t in report["tests"] if t["nodeid"] == "test_incon.py::test_undecided")
        assert test["outcome"] == "inconclusive"


def test_an_edited_verdict_is_refused(project):
    _nan_labels(project)
    project.runpytest("-p", "no:cacheprovider", "--mlops-report=r.json")
    path = Path(project.path / "r.json")
    report = _report(project)
    report["summary"]["verdict"] = "passed"
    path.write_text(json.dumps(report))
    assert main(["report", str(path)]) == 2


def test_an_errored_gate_is_never_packaged(project, monkeypatch, capsys):
    _nan_labels(project)
    project.runpytest("-p", "no:cacheprovider", "--mlops-report=r.json")
    monkeypatch.chdir(project.path)
    assert main(["package", "--report", "r.json", "--output", "bundle"]) == 1
    err = capsys.readouterr().err
    assert "refusing to package" in err
    assert "'accuracy' error" in err
    assert not (project.path / "bundle").exists()
    assert [p.name for p in project.path.iterdir() if p.name.startswith(".bundle")] == []


def test_an_unwritable_report_is_a_usage_error_that_names_it(project):
    (project.path / "blocker").write_text("")
    result = project.runpytest("-p", "no:cacheprovider", "--mlops-report=blocker/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*mlops report NOT written: cannot write the report*blocker*"])


def test_a_gate_that_crashes_is_an_error_not_a_failed_verdict(project):
    (project.path / "toy_model.py").write_text(
        (project.path / "toy_model.py").read_text()
        + "\n\ndef broken():\n    return {'not': 'a model'}\n"
    )
    result = project.runpytest(
        "-p", "no:cacheprovider", "--mlops-model", "toy_model:broken", "--mlops-report=r.json"
    )
    assert result.ret == 1
    gates = {g["name"]: g["outcome"] for g in _report(project)["gates"]}
    assert gates["accuracy"] == "error"


def test_a_report_of_other_data_is_not_the_evidence_of_these(project, monkeypatch, capsys):
    result = project.runpytest("-p", "no:cacheprovider", "--mlops-report=r.json")
    assert result.ret == 0
    inputs = _report(project)["project"]["inputs"]
    assert set(inputs) == {"reference", "current"}  # the model is code: no file to bind
    assert all(digest.startswith("sha256:") for digest in inputs.values())
    monkeypatch.chdir(project.path)
    toy_frame(300, 3).to_csv(project.path / "test.csv", index=False)  # new current data
    assert main(["package", "--report", "r.json", "--output", "bundle"]) == 1
    err = capsys.readouterr().err
    assert "refusing to package: 'r.json' is the evidence of other files than these" in err
    assert f"current 'test.csv' was {inputs['current'][:19]}... when tested, now sha256:" in err
    assert "reference" not in err.split("these:")[1].split(".")[0]
    assert not (project.path / "bundle").exists()
    toy_frame(300, 2).to_csv(project.path / "test.csv", index=False)  # the tested data again
    assert main(["package", "--report", "r.json", "--output", "bundle"]) == 0, capsys.readouterr()
    assert (project.path / "bundle" / "evidence" / "report.json").is_file()


def test_stage_reports_of_different_data_do_not_merge(project, capsys):
    project.runpytest("-p", "no:cacheprovider", "-m", "data", "--mlops-report=data.json")
    toy_frame(300, 3).to_csv(project.path / "test.csv", index=False)
    project.runpytest("-p", "no:cacheprovider", "-m", "accuracy", "--mlops-report=quality.json")
    stages = [str(project.path / n) for n in ("data.json", "quality.json")]
    capsys.readouterr()
    assert main(["report", *stages, "--json", str(project.path / "merged.json")]) == 2
    err = capsys.readouterr().err
    assert "quality.json and " in err
    assert "data.json were made on different current files" in err
    assert not (project.path / "merged.json").exists()


def test_a_run_stopped_by_a_usage_error_leaves_no_earlier_report_behind(project):
    assert project.runpytest("-p", "no:cacheprovider", "--mlops-report=r.json").ret == 0
    (project.path / "notes.json").write_text('{"mine": true}')
    for name, kept in (("r.json", False), ("notes.json", True)):
        result = project.runpytest(
            "-p", "no:cacheprovider", f"--mlops-report={name}", "--mlops-set", "modle=x"
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        removed = f"the earlier report '{name}' was removed: it is not the evidence of this run"
        assert (removed in result.stderr.str()) is not kept, result.stderr.str()
        assert (project.path / name).exists() is kept
