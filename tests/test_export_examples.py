"""Both examples export their model to ONNX and pass their parity gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(example: str, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLES / example),
            "-p",
            "no:cacheprovider",
            f"--mlops-report={report}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("example", "selection", "profile"),
    [
        ("credit_scoring", "parity", "sklearn"),
        ("pytorch_mlp", "parity", "network"),
    ],
)
def test_example_parity(tmp_path, example, selection, profile):
    report_path = tmp_path / "report.json"
    run = _run(example, report_path, "-k", selection)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads(report_path.read_text())
    parity = [r for r in report["results"] if r["kind"] == "parity"]
    assert parity
    assert all(r["status"] == "passed" for r in parity)
    gate = next(r for r in parity if r["nodeid"] == "pyproject.toml::parity")
    assert gate["context"]["profile"] == profile
    assert gate["context"]["batch_sizes"] == "1,37,1024"
    assert gate["metrics"]["label_agreement"] == 1.0
    assert gate["tables"]["random_rows"][0]["examples"] > 0
    exported = (
        EXAMPLES / example / "build" / ("credit.onnx" if profile == "sklearn" else "mlp.onnx")
    )
    assert exported.is_file()
