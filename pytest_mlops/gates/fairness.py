"""``fairness`` and ``fairness_regression`` gates: group disparities, alone or against a baseline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.metrics import METRICS
from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext


def metric_choices() -> tuple[str, ...]:
    """The names of ``checks.fairness.DISPARITIES``, without importing it (start-up cost)."""
    standard = ("demographic_parity", "equalized_odds", "equal_opportunity")
    stats: tuple[str, ...] = ("selection_rate", "true_positive_rate", "false_positive_rate")
    stats += tuple(m for m, spec in METRICS.items() if spec.needs != "values")
    names = [f"{p}_{agg}" for p in standard for agg in ("difference", "ratio")]
    return (
        *names,
        "four_fifths",
        *(f"{s}_{agg}" for s in stats for agg in ("difference", "ratio")),
    )


ON_CHOICES = ("estimate", "lower", "upper", "interval")


def _common(ctx: GateContext, params: Mapping[str, Any]) -> dict[str, Any]:
    sensitive = params["sensitive"] or ctx.settings.sensitive
    if not sensitive:
        raise ConfigError(
            f"gate {params['name']!r}: no sensitive feature; set 'sensitive' on the gate or at "
            f'the top of {ctx.config.source} (e.g. sensitive = ["sex", "race"])'
        )
    return {
        "sensitive": tuple(sensitive),
        "metric": params["metric"],
        "intersectional": params["intersectional"],
        "min_group_size": params["min_group_size"],
        "on": params["on"],
        "n_resamples": params["n_resamples"],
        "confidence": params["confidence"],
        "threshold": params["threshold"],
        "seed": ctx.seed,
        "name": params["name"],
    }


def run_fairness(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a fairness gate: a disparity of the model across groups, held to its bounds."""
    from pytest_mlops.checks.fairness import DISPARITIES, check_fairness

    spec = DISPARITIES[params["metric"]]
    if params["min"] is None and params["max"] is None and spec.default_min is None:
        hint = "'min' (for a ratio)" if spec.agg == "ratio" else "'max' (for a difference)"
        raise ConfigError(
            f"gate {params['name']!r}: give a bound for {spec.name}, {hint}, e.g. "
            + ("min = 0.8" if spec.agg == "ratio" else "max = 0.1")
        )
    return check_fairness(
        ctx.model,
        ctx.dataset(params["dataset"]),
        min=params["min"],
        max=params["max"],
        **_common(ctx, params),
    )


def run_fairness_regression(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a fairness regression gate: the model's disparity against its baseline's."""
    from pytest_mlops.checks.fairness import compare_fairness

    return compare_fairness(
        ctx.model,
        ctx.load_model(params["baseline"]),
        ctx.dataset(params["dataset"]),
        margin=params["margin"],
        **_common(ctx, params),
    )


_SHARED = (
    Param(
        "sensitive",
        "str|list[str]",
        "sensitive columns (default: the top-level 'sensitive')",
    ),
    Param(
        "metric",
        "str",
        "the disparity",
        default="demographic_parity_difference",
        choices=metric_choices(),
    ),
    Param(
        "intersectional",
        "bool",
        "group by combinations of the sensitive columns (sex x race) instead of one by one",
        default=False,
    ),
    Param(
        "min_group_size",
        "int",
        "groups with fewer rows are listed and left out",
        default=30,
        minimum=1,
    ),
    Param(
        "on",
        "str",
        "what is held to the bound: the estimate, one end of the interval, or the whole interval",
        default="interval",
        choices=ON_CHOICES,
    ),
    Param("n_resamples", "int", "bootstrap resamples", default=1000, minimum=10),
    Param(
        "confidence",
        "number",
        "confidence of the bootstrap interval",
        default=0.95,
        minimum=0.5,
        maximum=0.999,
    ),
    Param(
        "threshold",
        "number",
        "cut the positive-class probability here instead of using predict",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "dataset",
        "str",
        "which data to score",
        default="current",
        choices=("current", "reference"),
    ),
)

FAIRNESS = GateKind(
    name="fairness",
    marker="fairness",
    help="a group disparity (demographic parity, equalized odds, four-fifths...) is within bounds",
    params=(
        *_SHARED,
        Param("min", "number", "lowest acceptable value (ratios)"),
        Param("max", "number", "highest acceptable value (differences)"),
    ),
    run=run_fairness,
)

FAIRNESS_REGRESSION = GateKind(
    name="fairness_regression",
    marker="fairness",
    help="the model is not less fair than a baseline by more than a margin (paired bootstrap)",
    params=(
        Param(
            "baseline",
            "str",
            "the baseline model: an .onnx path, 'package.module:factory' or 'registry:<stage>'",
            required=True,
        ),
        *_SHARED,
        Param(
            "margin",
            "number",
            "how much less fair the model may be, in the disparity's units",
            default=0.01,
            minimum=0.0,
        ),
    ),
    run=run_fairness_regression,
)

KINDS = (FAIRNESS, FAIRNESS_REGRESSION)
