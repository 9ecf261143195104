"""Drift gates: ``drift`` (features), ``prediction_drift``, ``target_drift``, ``multivariate_drift``.

All carry the ``drift`` marker. The statistical settings are shared (see ``docs/drift.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from pytest_mlops.project import GateContext

STAT_PARAMS: tuple[Param, ...] = (
    Param(
        "method",
        "str",
        "auto: p-value up to small_sample values, p-value and effect size above; test; effect; both",
        default="auto",
        choices=("auto", "test", "effect", "both"),
    ),
    Param(
        "correction",
        "str",
        "multiple-testing correction across columns",
        default="bh",
        choices=("bh", "bonferroni", "none"),
    ),
    Param(
        "alpha",
        "number",
        "significance level of the corrected p-values",
        default=0.05,
        minimum=1e-12,
        maximum=0.5,
    ),
    Param(
        "numeric_effect",
        "str",
        "effect size of numeric columns",
        default="wasserstein+ks",
        choices=("wasserstein+ks", "wasserstein", "psi", "ks"),
    ),
    Param(
        "categorical_effect",
        "str",
        "effect size of categorical columns",
        default="jensenshannon",
        choices=("jensenshannon", "psi"),
    ),
    Param(
        "thresholds",
        "table",
        "effect-size thresholds by effect, e.g. { wasserstein = 0.1, psi = 0.2 }",
    ),
    Param(
        "max_drifted_share",
        "number",
        "the share of drifted columns allowed (0: none)",
        default=0.0,
        minimum=0,
        maximum=1,
    ),
    Param(
        "max_missing_change",
        "number",
        "a column drifts when its missing rate moves by more than this (1 disables)",
        default=0.1,
        minimum=0,
        maximum=1,
    ),
    Param(
        "small_sample",
        "int",
        "sample size up to which method=auto uses the p-value alone",
        default=1000,
        minimum=0,
    ),
)

BACKEND_PARAMS: tuple[Param, ...] = (
    Param(
        "backend",
        "str",
        "native (ours) or alibi (alibi-detect, installed separately)",
        default="native",
        choices=("native", "alibi"),
    ),
    Param(
        "detector",
        "str",
        "alibi backend: which detector",
        default="univariate",
        choices=("univariate", "mmd", "lsdd", "classifier"),
    ),
)


def _stat_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    names = {p.name for p in STAT_PARAMS}
    return {k: v for k, v in params.items() if k in names and v is not None}


def run_drift(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a drift gate: current data against the reference, a saved profile or alibi."""
    from pytest_mlops.checks.drift import DriftProfile, check_drift

    settings = _stat_settings(params)
    columns = list(params["columns"]) if params["columns"] else None
    categorical = list(params["categorical"] or ())
    current = ctx.dataset("current")
    if params["backend"] == "alibi":
        from pytest_mlops.checks.drift.alibi import check_drift_alibi

        return check_drift_alibi(
            ctx.dataset("reference"),
            current,
            detector=params["detector"],
            columns=columns,
            categorical=categorical,
            seed=ctx.seed,
            name=params["name"],
            **settings,
        )
    if params["profile"]:
        path = ctx.config.resolve_path(params["profile"])
        profile = DriftProfile.load(path)
        if columns is None:
            features = set(current.feature_names)
            columns = [c for c in profile.columns if c in features]
        return profile.compare(current, columns=columns, name=params["name"], **settings)
    return check_drift(
        ctx.dataset("reference"),
        current,
        columns=columns,
        categorical=categorical,
        name=params["name"],
        **settings,
    )


def _outputs(ctx: GateContext, which: str) -> tuple[pd.DataFrame, list[str]]:
    """The model's outputs on a dataset: probabilities where it has them, else predictions."""
    import numpy as np
    import pandas as pd

    model = ctx.model
    data = ctx.dataset(which)
    if model.has_proba:
        proba = np.asarray(model.predict_proba(data.X), dtype=float)
        classes = model.classes
        if proba.ndim == 2 and proba.shape[1] == 2:
            return pd.DataFrame({"prediction": proba[:, 1]}), []
        names = [f"proba_{c}" for c in (classes if classes is not None else range(proba.shape[1]))]
        return pd.DataFrame(proba, columns=names), []
    predicted = np.asarray(model.predict(data.X))
    frame = pd.DataFrame({"prediction": predicted})
    return frame, (["prediction"] if model.task == "classification" else [])


def run_prediction_drift(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a prediction drift gate: the model's outputs on reference and current data."""
    from pytest_mlops.checks.drift import check_drift

    ref, categorical = _outputs(ctx, "reference")
    cur, _ = _outputs(ctx, "current")
    return check_drift(
        ref, cur, categorical=categorical, name=params["name"], **_stat_settings(params)
    )


def run_target_drift(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a target drift gate: the target column of reference and current data."""
    from pytest_mlops.checks.drift import check_drift

    target = ctx.settings.target
    if not target:
        raise ConfigError(
            f"gate {params['name']!r}: target drift needs the 'target' setting "
            f"in {ctx.config.source}"
        )
    ref = ctx.dataset("reference").frame[[target]]
    cur = ctx.dataset("current").frame[[target]]
    kind = params["target_type"]
    if kind == "auto":
        from pytest_mlops.checks.drift.check import column_kind

        few = ref[target].nunique() <= 20
        kind = "categorical" if few or column_kind(ref[target]) == "categorical" else "numeric"
    categorical = [target] if kind == "categorical" else []
    return check_drift(
        ref, cur, categorical=categorical, name=params["name"], **_stat_settings(params)
    )


def run_multivariate(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a multivariate drift gate: MMD or a domain classifier on both datasets."""
    from pytest_mlops.checks.drift import check_multivariate_drift

    return check_multivariate_drift(
        ctx.dataset("reference"),
        ctx.dataset("current"),
        method=params["method"],
        columns=list(params["columns"]) if params["columns"] else None,
        categorical=list(params["categorical"] or ()),
        alpha=params["alpha"],
        n_samples=params["n_samples"],
        n_permutations=params["n_permutations"],
        max_auc=params["max_auc"],
        time_budget=params["time_budget"],
        seed=ctx.seed,
        name=params["name"],
    )


COLUMN_PARAMS: tuple[Param, ...] = (
    Param("columns", "list[str]", "columns to compare (default: the model's features)"),
    Param(
        "categorical",
        "list[str]",
        "columns to treat as categorical whatever their dtype",
        default=(),
    ),
)

DRIFT = GateKind(
    name="drift",
    marker="drift",
    help="the current data's feature columns are distributed like the reference's",
    params=(
        *COLUMN_PARAMS,
        *STAT_PARAMS,
        Param(
            "profile",
            "str",
            "a reference profile (.npz from DriftProfile.save) used instead of the reference data",
        ),
        *BACKEND_PARAMS,
    ),
    run=run_drift,
)

PREDICTION_DRIFT = GateKind(
    name="prediction_drift",
    marker="drift",
    help="the model's outputs on the current data are distributed like on the reference",
    params=STAT_PARAMS,
    run=run_prediction_drift,
)

TARGET_DRIFT = GateKind(
    name="target_drift",
    marker="drift",
    help="the target is distributed in the current data like in the reference",
    params=(
        *STAT_PARAMS,
        Param(
            "target_type",
            "str",
            "how to test the target (auto: categorical up to 20 distinct values)",
            default="auto",
            choices=("auto", "categorical", "numeric"),
        ),
    ),
    run=run_target_drift,
)

MULTIVARIATE_DRIFT = GateKind(
    name="multivariate_drift",
    marker="drift",
    help="rows as a whole are distributed like the reference's (MMD or domain classifier)",
    params=(
        *COLUMN_PARAMS,
        Param(
            "method",
            "str",
            "mmd (permutation test) or classifier (cross-validated AUC)",
            default="mmd",
            choices=("mmd", "classifier"),
        ),
        Param("alpha", "number", "significance level", default=0.05, minimum=1e-12, maximum=0.5),
        Param(
            "n_samples",
            "int",
            "rows drawn from each side (default 1000 mmd, 2000 classifier)",
            minimum=10,
        ),
        Param("n_permutations", "int", "MMD permutations", default=500, minimum=10),
        Param(
            "max_auc",
            "number",
            "classifier AUC at or above which drift is called",
            default=0.55,
            minimum=0.5,
            maximum=1,
        ),
        Param(
            "time_budget",
            "number",
            "seconds after which MMD permutations stop",
            default=30.0,
            minimum=0,
        ),
    ),
    run=run_multivariate,
)

KINDS = (DRIFT, PREDICTION_DRIFT, TARGET_DRIFT, MULTIVARIATE_DRIFT)
