"""``champion`` gate: the candidate model is not worse than a baseline on the same rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.metrics import ALIASES, METRICS
from pytest_mlops.gates.accuracy import INTERVAL_PARAMS
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext


def run_champion(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a champion gate: compare the model with its baseline on the dataset."""
    from pytest_mlops.checks.compare import compare_models

    return compare_models(
        ctx.model,
        ctx.load_model(params["baseline"]),
        ctx.dataset(params["dataset"]),
        metric=params["metric"],
        margin=params["margin"],
        confidence=params["confidence"],
        n_resamples=params["n_resamples"],
        seed=ctx.seed,
        name=params["name"],
    )


CHAMPION = GateKind(
    name="champion",
    marker="accuracy",
    help="champion/challenger: the model is not worse than a baseline (paired bootstrap, margin)",
    params=(
        Param(
            "baseline",
            "str",
            "the model to beat: an .onnx path, 'package.module:factory' or 'registry:<stage>'",
            required=True,
        ),
        Param(
            "metric",
            "str",
            "the metric compared",
            default="accuracy",
            choices=tuple(METRICS) + tuple(ALIASES),
        ),
        Param(
            "margin",
            "number",
            "non-inferiority margin in the metric's units: fail only if worse by more",
            default=0.0,
            minimum=0.0,
        ),
        INTERVAL_PARAMS[0],
        Param(
            "n_resamples",
            "int",
            "paired bootstrap resamples",
            default=1000,
            minimum=1,
            maximum=100_000,
        ),
        Param(
            "dataset",
            "str",
            "which data both models score",
            default="current",
            choices=("current", "reference"),
        ),
    ),
    run=run_champion,
)

KINDS = (CHAMPION,)
