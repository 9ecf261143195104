from __future__ import annotations

import json

import pytest

from pytest_mlops.cli import main
from pytest_mlops.report.json import ReportEntry, build_report, write_report
from pytest_mlops.results import CheckResult


def _report(tmp_path, value: float):
    result = CheckResult.threshold(
        name="accuracy", kind="accuracy", metric="roc_auc", value=value, min=0.88
    )
    entry = ReportEntry("pyproject.toml::accuracy", "passed" if result.passed else "failed", result)
    return write_report(tmp_path / "r.json", build_report([entry]))


def test_report_prints_the_table_and_exits_by_verdict(tmp_path, capsys):
    assert main(["report", str(_report(tmp_path, 0.9))]) == 0
    out = capsys.readouterr().out
    assert "pyproject.toml::accuracy" in out
    assert "roc_auc=0.9" in out
    assert "verdict PASSED" in out
    assert main(["report", str(_report(tmp_path, 0.5))]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"format": "pytest-mlops-report", "version": 99, "results": []}',
            "has format version 99",
        ),
        ('{"format": "pytest-mlops-rep', "not valid JSON (truncated or corrupted?)"),
        ('{"hello": 1}', "is not a pytest-mlops report"),
    ],
)
def test_bad_reports_are_one_clear_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_report(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gates_lists_kinds_and_settings(capsys):
    assert main(["gates"]) == 0
    out = capsys.readouterr().out
    assert "gate kind 'accuracy'" in out
    assert "metric" in out
    assert "target" in out


def test_report_json_is_strict(tmp_path):
    path = _report(tmp_path, float("nan"))
    json.loads(path.read_text())  # NaN written as a string, never a bare NaN literal


def test_output_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    code = "import sys; from pytest_mlops.cli import main; sys.exit(main(['gates']))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before the command writes anything
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in err
