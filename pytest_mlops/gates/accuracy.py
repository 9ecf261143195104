"""``accuracy`` gate: a model-quality metric held to a bound, with a bootstrap interval and slices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.metrics import ALIASES, METRICS
from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext

GATE_ON = ("estimate", "lower", "upper", "interval")

INTERVAL_PARAMS = (
    Param(
        "confidence",
        "number",
        "two-sided level of the bootstrap interval",
        default=0.95,
        minimum=0.5,
        maximum=0.999,
    ),
    Param(
        "n_resamples",
        "int",
        "bootstrap resamples (0: no interval)",
        default=1000,
        minimum=0,
        maximum=100_000,
    ),
)


def run_accuracy(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run an accuracy gate: the model's metric on the dataset, held to its bounds."""
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
        on=params["on"],
        confidence=params["confidence"],
        n_resamples=params["n_resamples"],
        seed=ctx.seed,
        slice_by=params["slice_by"],
        slices=params["slices"] or (),
        min_slice_size=params["min_slice_size"],
        name=params["name"],
    )


ACCURACY = GateKind(
    name="accuracy",
    marker="accuracy",
    help="a model-quality metric (sklearn's, by name) is within its bounds, overall and per slice",
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
            "on",
            "str",
            "what the bound applies to: the estimate, an end of the interval, or the whole "
            "interval (inconclusive when it straddles the bound)",
            default="estimate",
            choices=GATE_ON,
        ),
        *INTERVAL_PARAMS,
        Param("slice_by", "str|list[str]", "also gate each value of these columns"),
        Param("slices", "list[str]", 'also gate these slices, e.g. ["age >= 60"]'),
        Param(
            "min_slice_size",
            "int",
            "smaller slices are reported, not gated",
            default=100,
            minimum=1,
        ),
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

KINDS = (ACCURACY,)
