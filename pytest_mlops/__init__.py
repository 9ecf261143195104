"""pytest-mlops: gate machine-learning models the way pytest gates code.

Vocabulary
----------
model
    Anything :func:`load_model` adapts: a scikit-learn estimator, a PyTorch module, an ONNX file
    or session, ``"package.module:factory"``, or a plain callable.
dataset
    A :class:`Dataset`: a frame with a target and sensitive features.
check
    A plain function ``check_*(...)`` returning a :class:`CheckResult` (passed, failed or
    inconclusive, with the measured value, the bound and the context).
gate
    A check bound to settings: declared in ``[tool.pytest_mlops.gates]`` (one test item each) or
    run from a test through the ``mlops`` fixture.

The public names below are imported on first use, so importing this package (and the pytest
plugin) costs almost nothing. Imports are lazy (inside functions) only on the plugin's import path
and for optional heavy dependencies (torch, onnxruntime, skl2onnx, docker, pyspark, dask,
alibi-detect, tritonclient); everywhere else they sit at the top of the module. The layers and
what each may import: ``docs/architecture.md``. Nothing inside the package imports this module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_mlops._version import __version__
from pytest_mlops.errors import (
    CheckError,
    ConfigError,
    DataError,
    DeployError,
    MlopsError,
    ModelError,
    OutputError,
    ReportError,
)
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.checks.accuracy import check_accuracy
    from pytest_mlops.checks.compare import compare_models
    from pytest_mlops.checks.drift import DriftProfile, check_drift, check_multivariate_drift
    from pytest_mlops.checks.fairness import check_fairness, compare_fairness
    from pytest_mlops.checks.latency import LatencyReport, check_latency, measure_latency
    from pytest_mlops.checks.metrics import list_metrics
    from pytest_mlops.ci import init_ci
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.data.integrity import check_integrity
    from pytest_mlops.data.loaders import load_dataset
    from pytest_mlops.data.privacy import check_privacy
    from pytest_mlops.data.schema import Schema, check_schema, infer_schema, load_schema
    from pytest_mlops.data.validation import check_columns
    from pytest_mlops.deploy.bundle import build_bundle, verify_bundle
    from pytest_mlops.deploy.promote import deploy_to_staging, promote, rollback
    from pytest_mlops.deploy.registries import open_registry
    from pytest_mlops.export.base import OnnxExport, export_onnx
    from pytest_mlops.export.parity import check_parity
    from pytest_mlops.models.base import Model
    from pytest_mlops.models.load import load_model
    from pytest_mlops.monitor.run import MonitorOptions, run_monitor
    from pytest_mlops.report.html import render_html
    from pytest_mlops.report.markdown import render_markdown
    from pytest_mlops.report.merge import load_reports

from pytest_mlops import deploy as _deploy
from pytest_mlops import engines as _engines
from pytest_mlops.config import use_gate_kinds as _use_gate_kinds
from pytest_mlops.gates import GATE_KINDS as _GATE_KINDS

# Extension points are filled from here, the top: the layers below never import what extends them.
_use_gate_kinds(_GATE_KINDS)
_deploy.register()
_engines.register()

# public name -> module that defines it
_LAZY = {
    "Dataset": "pytest_mlops.data.dataset",
    "load_dataset": "pytest_mlops.data.loaders",
    "check_columns": "pytest_mlops.data.validation",
    "Schema": "pytest_mlops.data.schema",
    "infer_schema": "pytest_mlops.data.schema",
    "check_schema": "pytest_mlops.data.schema",
    "load_schema": "pytest_mlops.data.schema",
    "check_integrity": "pytest_mlops.data.integrity",
    "check_privacy": "pytest_mlops.data.privacy",
    "Model": "pytest_mlops.models.base",
    "load_model": "pytest_mlops.models.load",
    "check_accuracy": "pytest_mlops.checks.accuracy",
    "compare_models": "pytest_mlops.checks.compare",
    "check_fairness": "pytest_mlops.checks.fairness",
    "compare_fairness": "pytest_mlops.checks.fairness",
    "list_metrics": "pytest_mlops.checks.metrics",
    "measure_latency": "pytest_mlops.checks.latency",
    "check_latency": "pytest_mlops.checks.latency",
    "LatencyReport": "pytest_mlops.checks.latency",
    "export_onnx": "pytest_mlops.export.base",
    "OnnxExport": "pytest_mlops.export.base",
    "check_parity": "pytest_mlops.export.parity",
    "check_drift": "pytest_mlops.checks.drift",
    "check_multivariate_drift": "pytest_mlops.checks.drift",
    "DriftProfile": "pytest_mlops.checks.drift",
    "load_reports": "pytest_mlops.report.merge",
    "render_markdown": "pytest_mlops.report.markdown",
    "render_html": "pytest_mlops.report.html",
    "run_monitor": "pytest_mlops.monitor.run",
    "MonitorOptions": "pytest_mlops.monitor.run",
    "init_ci": "pytest_mlops.ci",
    "build_bundle": "pytest_mlops.deploy.bundle",
    "verify_bundle": "pytest_mlops.deploy.bundle",
    "deploy_to_staging": "pytest_mlops.deploy.promote",
    "promote": "pytest_mlops.deploy.promote",
    "rollback": "pytest_mlops.deploy.promote",
    "open_registry": "pytest_mlops.deploy.registries",
}

__all__ = [
    "CheckError",
    "CheckResult",
    "ConfigError",
    "DataError",
    "Dataset",
    "DeployError",
    "DriftProfile",
    "LatencyReport",
    "MlopsError",
    "Model",
    "ModelError",
    "MonitorOptions",
    "OnnxExport",
    "OutputError",
    "ReportError",
    "Schema",
    "__version__",
    "build_bundle",
    "check_accuracy",
    "check_columns",
    "check_drift",
    "check_fairness",
    "check_integrity",
    "check_latency",
    "check_multivariate_drift",
    "check_parity",
    "check_privacy",
    "check_schema",
    "compare_fairness",
    "compare_models",
    "deploy_to_staging",
    "export_onnx",
    "infer_schema",
    "init_ci",
    "list_metrics",
    "load_dataset",
    "load_model",
    "load_reports",
    "load_schema",
    "measure_latency",
    "open_registry",
    "promote",
    "render_html",
    "render_markdown",
    "rollback",
    "run_monitor",
    "verify_bundle",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_mlops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
