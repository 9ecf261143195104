"""The optional alibi-detect backend: the same gate, alibi-detect's detectors.

alibi-detect is under the Business Source License 1.1 (production use needs a commercial licence
from Seldon), pins numpy < 2 and imports torch, transformers and numba. It is never imported
unless ``backend = "alibi"`` is chosen. Univariate detectors (``KSDrift``, ``ChiSquareDrift``)
replace our tests' statistics and p-values column by column; effect sizes, the correction across
columns and the verdict rule stay ours, so the result has the same shape. Multivariate detectors
(``MMDDrift``, ``LSDDDrift``, ``ClassifierDrift``) give the dataset verdict directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pytest_mlops.errors import ConfigError
from pytest_mlops.results import CheckResult, format_value

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["check_drift_alibi"]

Detector = Literal["univariate", "mmd", "lsdd", "classifier"]


def _require_alibi() -> None:
    try:
        import alibi_detect  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        raise ConfigError(
            "drift backend 'alibi' needs alibi-detect, which is not installed here: "
            "pip install 'pytest-mlops[alibi]' in an environment with numpy < 2 "
            "(alibi-detect is BSL 1.1 licensed: production use needs a commercial licence); "
            "or use backend = 'native'"
        ) from None


def _univariate(
    ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str], alpha: float
) -> dict[str, tuple[str, float, float]]:
    from alibi_detect.cd import (  # type: ignore[import-not-found,unused-ignore]
        ChiSquareDrift,
        KSDrift,
    )

    from pytest_mlops.checks.drift.columns import numeric_matrix

    out: dict[str, tuple[str, float, float]] = {}
    a = numeric_matrix(ref, numeric)
    b = numeric_matrix(cur, numeric)
    for i, column in enumerate(numeric):  # per column: alibi has no per-column missing values
        x_ref = a[i][~np.isnan(a[i])][:, None]
        x = b[i][~np.isnan(b[i])][:, None]
        if len(x_ref) == 0 or len(x) == 0:
            continue
        preds = KSDrift(x_ref, p_val=alpha).predict(x, return_p_val=True, return_distance=True)
        out[column] = ("ks", float(preds["data"]["distance"][0]), float(preds["data"]["p_val"][0]))
    for column in categorical:
        r = ref[column].dropna().astype(str)
        c = cur[column].dropna().astype(str)
        if len(r) == 0 or len(c) == 0:
            continue
        codes = {v: i for i, v in enumerate(dict.fromkeys([*r.unique(), *c.unique()]))}
        x_ref = r.map(codes).to_numpy(dtype=np.int64)[:, None]
        x = c.map(codes).to_numpy(dtype=np.int64)[:, None]
        detector = ChiSquareDrift(x_ref, p_val=alpha)
        preds = detector.predict(x, return_p_val=True, return_distance=True)
        out[column] = (
            "chi2",
            float(preds["data"]["distance"][0]),
            float(preds["data"]["p_val"][0]),
        )
    return out


def _multivariate(
    detector: Detector, x_ref: np.ndarray, x: np.ndarray, alpha: float, seed: int
) -> dict[str, Any]:

    np.random.seed(seed)
    if detector == "classifier":
        from alibi_detect.cd import (  # type: ignore[import-not-found,unused-ignore]
            ClassifierDrift,
        )
        from sklearn.ensemble import HistGradientBoostingClassifier

        cd: Any = ClassifierDrift(
            x_ref,
            model=HistGradientBoostingClassifier(random_state=seed),
            backend="sklearn",
            p_val=alpha,
            n_folds=5,
            seed=seed,
        )
    else:
        import torch

        torch.manual_seed(seed)
        if detector == "mmd":
            from alibi_detect.cd import MMDDrift  # type: ignore[import-not-found,unused-ignore]

            cd = MMDDrift(x_ref, backend="pytorch", p_val=alpha, n_permutations=200, device="cpu")
        else:
            from alibi_detect.cd import LSDDDrift  # type: ignore[import-not-found,unused-ignore]

            cd = LSDDDrift(x_ref, backend="pytorch", p_val=alpha, n_permutations=200, device="cpu")
    data: dict[str, Any] = cd.predict(x)["data"]
    return data


def _univariate_columns(
    ref: pd.DataFrame, cur: pd.DataFrame, wanted: list[str], cats: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """The numeric and the categorical columns present on both sides."""
    from pytest_mlops.checks.drift.columns import column_kind

    numeric = [
        c
        for c in wanted
        if c in cur.columns
        and c not in cats
        and column_kind(ref[c]) == "numeric"
        and column_kind(cur[c]) == "numeric"
    ]
    categ = [
        c
        for c in wanted
        if c in cur.columns
        and c not in numeric
        and (c in cats or column_kind(ref[c]) == column_kind(cur[c]))
    ]
    return numeric, categ


def _multivariate_result(
    name: str,
    detector: Detector,
    alpha: float,
    data: dict[str, Any],
    context: dict[str, str | int],
    univariate: CheckResult,
) -> CheckResult:
    """The dataset verdict of a multivariate detector, with our per-column tables for context."""
    p = float(data["p_val"])
    drifted = bool(data["is_drift"])
    ctx = ", ".join(f"{k}={v}" for k, v in context.items())
    return CheckResult(
        name=name,
        kind="drift",
        status="failed" if drifted else "passed",
        message=(
            f"p_value must be >= {format_value(alpha)}: measured {format_value(p)} "
            f"(alibi-detect {detector} drift {'detected' if drifted else 'not detected'}; {ctx})"
        ),
        metric="p_value",
        value=p,
        op=">=",
        bound=alpha,
        metrics={
            "p_value": p,
            "distance": float(data.get("distance", np.nan)),
            "drifted_share": univariate.metrics["drifted_share"],
        },
        context=context,
        tables=univariate.tables,
    )


def check_drift_alibi(
    reference: Any,
    current: Any,
    *,
    detector: Detector = "univariate",
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    seed: int = 0,
    n_samples: int = 1000,
    name: str = "drift",
    **settings: Any,
) -> CheckResult:
    """``check_drift`` run by alibi-detect's detectors; same settings, same result shape.

    ``detector="univariate"`` uses ``KSDrift`` (numeric) and ``ChiSquareDrift`` (categorical)
    per column; ``"mmd"``, ``"lsdd"`` (PyTorch, CPU) and ``"classifier"`` (scikit-learn
    gradient boosting, 5 folds) test rows as a whole on *n_samples* rows of each side and decide
    the verdict; the per-column tables are then ours, for context.
    """
    from pytest_mlops.checks.drift.check import compare_frames
    from pytest_mlops.checks.drift.columns import as_frame
    from pytest_mlops.checks.drift.verdict import DriftSettings

    _require_alibi()
    options = DriftSettings.from_kwargs(settings)
    ref, features = as_frame(reference, "reference")
    cur, _ = as_frame(current, "current")
    wanted = list(columns) if columns is not None else list(features or map(str, ref.columns))
    cats = tuple(categorical)
    if detector == "univariate":
        numeric, categ = _univariate_columns(ref, cur, wanted, cats)
        overrides = _univariate(ref, cur, numeric, categ, options.alpha)
        return compare_frames(ref, cur, wanted, cats, options, name, "drift", overrides)
    from pytest_mlops.checks.drift.multivariate import encode

    rng = np.random.default_rng(seed)
    r = ref.iloc[np.sort(rng.permutation(len(ref))[:n_samples])]
    c = cur.iloc[np.sort(rng.permutation(len(cur))[:n_samples])]
    x_ref, x = encode(r, c, wanted, cats)
    data = _multivariate(
        detector, x_ref.astype(np.float32), x.astype(np.float32), options.alpha, seed
    )
    univariate = compare_frames(ref, cur, wanted, cats, options, name, "drift")
    context: dict[str, str | int] = {
        "n_ref": len(x_ref),
        "n_cur": len(x),
        "backend": "alibi",
        "detector": detector,
    }
    return _multivariate_result(name, detector, options.alpha, data, context, univariate)
