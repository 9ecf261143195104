"""Helpers of the deploy tests: a tiny project's config, reports and bundles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_mlops.config import ProjectConfig, load_config
from pytest_mlops.deploy.bundle import Bundle, build_bundle
from pytest_mlops.report.evidence import TestRecord
from pytest_mlops.report.json import ReportEntry, build_report, write_report
from pytest_mlops.results import CheckResult

FEATURES = ["a", "b", "c", "d"]

CONFIG = """\
model = "model.onnx"
reference = "data.csv"
current = "data.csv"
target = "y"

[gates]
accuracy = { metric = "roc_auc", min = 0.9 }

[deploy]
name = "tiny"
registry = "registry"
smoke_rows = 8
"""


def write_report_file(path: Path, *, passed: bool = True, value: float = 0.97) -> Path:
    """A JSON report as --mlops-report writes it for the tiny project: its accuracy gate ran."""
    result = CheckResult.threshold(
        name="accuracy", kind="accuracy", metric="roc_auc", value=value if passed else 0.5, min=0.9
    )
    outcome = "passed" if passed else "failed"
    entry = ReportEntry(nodeid="mlops.toml::accuracy", outcome=outcome, result=result)
    test = TestRecord("mlops.toml::accuracy", outcome, gate="accuracy")
    config = path.parent / "mlops.toml"
    project = load_config(config) if config.is_file() else None
    report = build_report([entry], project=project, exitstatus=0 if passed else 1, tests=[test])
    write_report(path, report)
    return path


def project_config(root: Path) -> ProjectConfig:
    return load_config(root / "mlops.toml")


def fresh_bundle(root: Path, n: int) -> Bundle:
    """Package the project at *root* as candidate *n* (its own report, so its own digest)."""
    report = write_report_file(root / f"report-{n}.json", value=0.95 + n / 1000)
    return build_bundle(project_config(root), root / "build" / f"bundle-{n}", report=report)


def require_service(what: str, reason: str | None) -> None:
    """A real part the tests need is missing (*reason*): fail in CI (CI=true), skip elsewhere."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the {what} tests must run in CI: {reason}", pytrace=False)
    pytest.skip(f"no {what}: {reason}")
