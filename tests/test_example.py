"""The credit-scoring example runs end to end and writes its report; -n 2 gives the same report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "credit_scoring"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


# Timings differ from run to run by nature (latency results, the "seconds" a check took);
# everything else must be identical.
_TIMED = ("message", "value", "metrics", "tables", "details")


def _stable_result(result: dict[str, Any]) -> dict[str, Any]:
    if result["kind"] == "latency":
        return {k: v for k, v in result.items() if k not in _TIMED}
    metrics = {k: v for k, v in result["metrics"].items() if k != "seconds"}
    return {**result, "metrics": metrics}


def _stable(report: dict[str, Any]) -> dict[str, Any]:
    stable = {k: v for k, v in report.items() if k not in ("created", "environment")}
    stable["results"] = [_stable_result(r) for r in report["results"]]
    return stable


def test_example_passes_and_reports(tmp_path):
    serial = _run(f"--mlops-report={tmp_path / 'serial.json'}")
    assert serial.returncode == 0, serial.stdout[-3000:] + serial.stderr[-2000:]
    assert "= mlops =" in serial.stdout
    assert "pyproject.toml::accuracy" in serial.stdout
    report = json.loads((tmp_path / "serial.json").read_text())
    assert report["summary"]["verdict"] == "passed"
    names = {r["name"] for r in report["results"]}
    assert {"schema", "accuracy"} <= names
    auc = next(r for r in report["results"] if r["nodeid"] == "pyproject.toml::accuracy")
    assert auc["metric"] == "roc_auc"
    assert auc["value"] > 0.88

    parallel = _run("-n", "2", f"--mlops-report={tmp_path / 'parallel.json'}")
    assert parallel.returncode == 0, parallel.stdout[-3000:]
    assert _stable(report) == _stable(json.loads((tmp_path / "parallel.json").read_text()))
