"""``accuracy`` gate: a model-quality metric held to a bound."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlops.checks.metrics import ALIASES, METRICS
from pytest_mlops.config import Param
from pytest_mlops.errors import ConfigError
from pytest_mlops.gates import GateContext, GateKind, register
from pytest_mlops.results import CheckResult


def run_accuracy(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    from pytest_mlops.checks.accuracy import check_accuracy

    if params["min"] is None and params["max"] is None:
        raise ConfigError(
            f"gate {params['name']!r}: give a bound, 'min' (for scores such as roc_auc) "
            "or 'max' (for losses such as log_loss)"
        )
    return check_accuracy(
        ctx.model,
        ctx.dataset(params["dataset"]),
        metric=params["metric"],
        min=params["min"],
        max=params["max"],
        name=params["name"],
    )


register(
    GateKind(
        name="accuracy",
        marker="accuracy",
        help="a model-quality metric (sklearn's, by name) is within its bounds",
        params=(
            Param(
                "metric",
                "str",
                "the metric",
                default="accuracy",
                choices=tuple(METRICS) + tuple(ALIASES),
            ),
            Param("min", "number", "lowest acceptable value"),
            Param("max", "number", "highest acceptable value"),
            Param(
                "dataset",
                "str",
                "which data to score",
                default="current",
                choices=("current", "reference"),
            ),
        ),
        run=run_accuracy,
    )
)
