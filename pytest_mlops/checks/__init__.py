"""Pure checks: each takes models and data and returns a CheckResult; none knows pytest."""

from __future__ import annotations

from pytest_mlops.checks.accuracy import check_accuracy
from pytest_mlops.checks.compare import compare_models
from pytest_mlops.checks.metrics import METRICS, get_metric, list_metrics

__all__ = ["METRICS", "check_accuracy", "compare_models", "get_metric", "list_metrics"]
