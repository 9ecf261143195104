"""The parity gate through pytest (declared, fixture, marker) and ``pytest-mlops export``."""

from __future__ import annotations

import io
import json

# Loaded before any in-process run: C extensions cannot be imported twice in one process.
import hypothesis  # noqa: F401
import onnx
import onnxruntime  # noqa: F401
import pytest
import skl2onnx  # noqa: F401

from pytest_mlops._progress import Progress
from pytest_mlops.cli import main

OTHER_MODEL = """

def shifted():
    model = make()
    model.intercept_ = model.intercept_ + 1.5
    return model
"""


def declare(project: pytest.Pytester, *lines: str) -> None:
    text = (project.path / "pyproject.toml").read_text()
    head = text.split("[tool.pytest_mlops.gates]")[0]
    (project.path / "pyproject.toml").write_text(
        head + "[tool.pytest_mlops.gates]\n" + "\n".join(lines) + "\n"
    )


def test_declared_parity_gate_exports_and_passes(project):
    declare(project, 'parity = { path = "build/toy.onnx", random_rows = 10 }')
    result = project.runpytest("--mlops-report=report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pyproject.toml::parity*parity*PASSED*label_agreement=1*"])
    (entry,) = json.loads((project.path / "report.json").read_text())["results"]
    assert entry["context"]["profile"] == "sklearn"
    assert entry["metrics"]["max_abs_diff_probabilities"] < 1e-5
    assert entry["tables"]["random_rows"][0]["examples"] == 10
    meta = {p.key: p.value for p in onnx.load(str(project.path / "build/toy.onnx")).metadata_props}
    assert json.loads(meta["pytest_mlops.signature"])["inputs"][0]["name"] == "x1"


def test_failing_parity_names_the_tolerance_and_batch(project):
    declare(project, "parity = { rtol = 0, atol = 1e-15, batch_sizes = [1, 5], random_rows = 0 }")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ONNX parity fails: probabilities out of tolerance (rtol=0, atol=1.000e-15)*batch_size=1*"
        ]
    )


def test_fixture_form_with_marker_settings(project):
    project.makepyfile(
        test_parity_fixture="""
        import pytest

        @pytest.mark.accuracy(dtype="float64", random_rows=0)
        def test_parity(mlops):
            result = mlops.parity(batch_sizes=[3])
            assert result.context["batch_sizes"] == "3"
            assert result.metrics["max_abs_diff_probabilities"] < 1e-12
        """
    )
    declare(project)
    project.runpytest().assert_outcomes(passed=1)


def test_onnx_model_needs_the_native_one(project):
    project.runpython_c(
        "import pandas as pd, toy_model; from pytest_mlops import export_onnx; "
        "export_onnx(toy_model.make(), pd.read_csv('test.csv').head(3), 'toy.onnx')"
    )
    text = (project.path / "pyproject.toml").read_text().replace("toy_model:make", "toy.onnx")
    (project.path / "pyproject.toml").write_text(text)
    declare(project, "parity = { random_rows = 0 }")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the configured model is already ONNX; set 'native'*"])
    declare(project, 'parity = { native = "toy_model:make", random_rows = 0 }')
    project.runpytest().assert_outcomes(passed=1)


def test_misspelled_setting_is_a_usage_error(project):
    declare(project, "parity = { min_label_agrement = 0.9 }")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*did you mean 'min_label_agreement'*"])


# --- CLI -----------------------------------------------------------------------------------


def test_cli_export_writes_and_checks(project, monkeypatch, capsys):
    monkeypatch.chdir(project.path)
    (project.path / "toy_model.py").write_text(
        (project.path / "toy_model.py").read_text() + OTHER_MODEL
    )
    code = main(
        ["export", "-o", "out/toy.onnx", "--metadata", "git_commit=abc", "--random-rows", "5"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "exported out/toy.onnx" in out
    assert "parity PASSED" in out
    meta = {p.key: p.value for p in onnx.load("out/toy.onnx").metadata_props}
    assert meta["git_commit"] == "abc"
    # an .onnx file checked against another model: parity fails, exit status 1
    code = main(["export", "out/toy.onnx", "--native", "toy_model:shifted", "--random-rows", "0"])
    assert code == 1
    assert "parity FAILED: ONNX parity fails: label agreement" in capsys.readouterr().out


def test_cli_export_bad_input(project, monkeypatch, capsys):
    monkeypatch.chdir(project.path)
    assert main(["export", "--metadata", "novalue"]) == 2
    assert "--metadata 'novalue': expected KEY=VALUE" in capsys.readouterr().err
    assert main(["export", "missing.onnx"]) == 2
    assert "'missing.onnx' does not exist" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_steps_on_a_terminal_only():
    terminal = _Terminal()
    progress = Progress(total=2, stream=terminal)
    progress.step("loading model")
    progress.step("parity: CPUExecutionProvider batch size 1", advance=False)
    progress.step("exporting")
    progress.close()
    text = terminal.getvalue()
    assert "[1/2] loading model" in text
    assert "[1/2] parity: CPUExecutionProvider batch size 1" in text
    assert "[2/2] exporting" in text
    assert text.endswith("\r\x1b[2K")
    piped = io.StringIO()
    Progress(total=2, stream=piped).step("loading model")
    assert piped.getvalue() == ""
