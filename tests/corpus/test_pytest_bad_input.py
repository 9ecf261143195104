"""Bad input through pytest: the exit status, the message on the terminal, nothing written.

pytest's statuses: 1 a test (a gate) failed or errored, 4 usage error (our configuration errors
are usage errors: nothing ran).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from corpus_helpers import Case, snapshot

from pytest_mlops._gpu import cuda_available

cuda_available()  # torch, if installed, loads once outside the in-process runs

USAGE, FAILED = pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.TESTS_FAILED


def config(old: str, new: str):
    """A setup that edits mlops.toml."""

    def setup(root: Path) -> None:
        text = (root / "mlops.toml").read_text()
        assert old in text
        (root / "mlops.toml").write_text(text.replace(old, new, 1))

    return setup


def extra_test(source: str):
    def setup(root: Path) -> None:
        (root / "test_extra.py").write_text(source)

    return setup


def data(change):
    def setup(root: Path) -> None:
        import pandas as pd

        frame = pd.read_csv(root / "data.csv")
        change(frame).to_csv(root / "current.csv", index=False)
        text = (root / "mlops.toml").read_text()
        (root / "mlops.toml").write_text(
            text.replace('current = "data.csv"', 'current = "current.csv"')
        )

    return setup


def _cut_short(root: Path) -> None:
    lines = (root / "data.csv").read_text().splitlines()
    lines[9] = lines[9].rsplit(",", 2)[0]
    (root / "current.csv").write_text("\n".join(lines) + "\n")
    text = (root / "mlops.toml").read_text()
    (root / "mlops.toml").write_text(
        text.replace('current = "data.csv"', 'current = "current.csv"')
    )


def args(*argv: str):
    return lambda root: argv


# fmt: off
CASES = [
    Case("config-unknown-setting", args(), USAGE, ("mlops.toml", "'modle'", "did you mean 'model'"), config('model = "model.onnx"', 'modle = "model.onnx"')),
    Case("config-unknown-gate-kind", args(), USAGE, ("'acuracy'",), config("accuracy = { metric", "quality = { kind = \"acuracy\", metric")),
    Case("config-misspelled-gate-setting", args(), USAGE, ("'mni'", "did you mean 'min'"), config("min = 0.8", "mni = 0.8")),
    Case("config-bad-toml", args(), USAGE, ("mlops.toml", "line"), config("[gates]", "[gates")),
    Case("config-wrong-type", args(), USAGE, ("'seed'",), config('target = "y"', 'target = "y"\nseed = "zero"')),
    Case("option-missing-config", args("--mlops-config", "gone.toml"), USAGE, ("gone.toml",)),
    Case("option-seed", args("--mlops-seed", "abc"), USAGE, ("--mlops-seed", "invalid int value: 'abc'")),
    Case("option-set-value", args("--mlops-set", "gates.accuracy.min=abc"), USAGE, ("'min'", "'abc'")),
    Case("option-set-syntax", args("--mlops-set", "seed"), USAGE, ("'seed'", "KEY=VALUE")),
    Case("option-inconclusive", args("--mlops-inconclusive", "maybe"), USAGE, ("invalid choice: 'maybe'",)),
    Case("option-deploy-production", args("--mlops-deploy", "production"), USAGE, ("pytest deploys to 'staging' only", "pytest-mlops promote --to production")),
    Case("option-report-blocked", args("--mlops-report", "blocker/r.json"), USAGE, ("mlops report NOT written", "cannot write the report", "blocker/r.json", "is a file, not a directory")),
    Case("gate-model-missing", args(), FAILED, ("gone.onnx", "does not exist"), config('model = "model.onnx"', 'model = "gone.onnx"')),
    Case("gate-data-missing", args(), FAILED, ("nothing.csv", "does not exist"), config('current = "data.csv"', 'current = "nothing.csv"')),
    Case("gate-target-missing", args(), FAILED, ("'label'",), config('target = "y"', 'target = "label"')),
    Case("gate-row-cut-short", args(), FAILED, ("current.csv", "fewer fields than its header", "data rows [8]"), _cut_short),
    Case("gate-yes-no-labels", args(), FAILED, ("labels 'no', 'yes'", "classes (0, 1)"), data(lambda f: f.assign(y=f["y"].map({0: "no", 1: "yes"})))),
    Case("gate-missing-labels", args(), FAILED, ("target column 'y'", "missing label(s)"), data(lambda f: f.assign(y=f["y"].where(f.index % 50 != 0)))),
    Case("gate-impossible-bound", args(), FAILED, ("roc_auc lies in [0, 1]", "min = 2 can never hold"), config("min = 0.8", "min = 2")),
    Case("marker-unknown-setting", args(), FAILED, ("@pytest.mark.accuracy", "'metrc'", "did you mean 'metric'"), extra_test("import pytest\n\n@pytest.mark.accuracy(metrc='f1')\ndef test_q(mlops):\n    mlops.accuracy()\n")),
    Case("fixture-unknown-check", args(), FAILED, ("'mlops' has no check 'acuracy'", "did you mean 'accuracy'"), extra_test("def test_q(mlops):\n    mlops.acuracy()\n")),
    Case("fixture-unknown-gate", args(), FAILED, ("no gate named 'quality'",), extra_test("def test_q(mlops):\n    mlops.run('accuracy', gate='quality')\n")),
    Case("fixture-unknown-sensitive", args(), FAILED, ("'sex'",), extra_test("def test_f(mlops):\n    mlops.fairness(sensitive='sex', metric='demographic_parity_ratio', min=0.8)\n")),
    Case("gpu-required", args("--mlops-require-gpu"), FAILED, ("GPU required (--mlops-require-gpu)",), extra_test("import pytest\n\n@pytest.mark.gpu\ndef test_g():\n    pass\n"), marks=(pytest.mark.skipif(cuda_available()[0], reason="a CUDA device is present"),)),
]
# fmt: on


@pytest.fixture
def session_project(template: Path, pytester: pytest.Pytester) -> Path:
    for item in template.iterdir():
        target = pytester.path / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copyfile(item, target)
    return pytester.path


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_through_pytest(
    case: Case, session_project: Path, pytester: pytest.Pytester
) -> None:
    if case.setup is not None:
        case.setup(session_project)
    before = snapshot(session_project)
    result = pytester.runpytest("-p", "no:cacheprovider", *case.run(session_project))
    message = result.stdout.str() + result.stderr.str()
    assert result.ret == case.expect, message
    for words in case.words:
        assert words in message, f"{words!r} not in {message!r}"
    assert "pytest_mlops/" not in message.replace("pytest_mlops/tests", "")  # no internal traceback
    assert snapshot(session_project) == before, "the failed run wrote, removed or moved something"
