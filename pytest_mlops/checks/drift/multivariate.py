"""Multivariate drift: MMD with a permutation test, and a domain classifier's AUC.

Univariate tests miss a change in how columns move together. Two tests look at rows as a whole:

``mmd``
    The maximum mean discrepancy between the two samples under a Gaussian kernel (median
    heuristic bandwidth), on standardised numeric columns and one-hot categories; its p-value
    comes from a seeded permutation test. Both samples are subsampled to ``n_samples`` rows and
    the permutations stop at ``time_budget`` seconds, so the time is bounded.
``classifier``
    A gradient-boosted classifier learns to tell reference rows from current rows; its
    cross-validated ROC AUC is the effect (0.5: indistinguishable). The p-value is the
    Mann–Whitney normal approximation of the AUC under no drift.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pytest_mlops.checks.drift.columns import as_frame, column_kind
from pytest_mlops.errors import CheckError, DataError, choices_text
from pytest_mlops.results import CheckResult, Status, format_value

__all__ = ["check_multivariate_drift", "mmd_test"]

MultivariateMethod = Literal["mmd", "classifier"]
DEFAULT_SAMPLES = {"mmd": 1000, "classifier": 2000}
MAX_ONE_HOT = 20


def encode(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns standardised on the reference, and its top categories one-hot encoded.

    A missing numeric value becomes 0 plus an indicator; the categories encoded are the
    reference's most frequent ones.
    """
    parts_r: list[np.ndarray] = []
    parts_c: list[np.ndarray] = []
    for column in columns:
        r, c = ref[column], cur[column]
        if (
            column not in categorical
            and column_kind(r) == "numeric"
            and column_kind(c) == "numeric"
        ):
            a = r.to_numpy(dtype=float, na_value=np.nan)
            b = c.to_numpy(dtype=float, na_value=np.nan)
            mean = np.nanmean(a) if np.isfinite(a).any() else 0.0
            std = np.nanstd(a) if np.isfinite(a).any() else 1.0
            std = std if std > 0 else 1.0
            for values, parts in ((a, parts_r), (b, parts_c)):
                z = (values - mean) / std
                missing = ~np.isfinite(z)
                parts.append(np.where(missing, 0.0, z)[:, None])
                if np.isnan(a).any() or np.isnan(b).any():
                    parts.append(missing[:, None].astype(float))
        else:
            top = r.astype(str).value_counts().index[:MAX_ONE_HOT]
            for series, parts in ((r, parts_r), (c, parts_c)):
                text = series.astype(str).to_numpy()
                parts.append((text[:, None] == np.asarray(top)[None, :]).astype(float))
    return np.hstack(parts_r), np.hstack(parts_c)


def mmd_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_permutations: int = 500,
    seed: int = 0,
    time_budget: float | None = None,
) -> tuple[float, float, int]:
    """Squared MMD (biased V-statistic, Gaussian kernel, median heuristic) and its p-value.

    The p-value comes from a permutation test. Returns ``(mmd2, p_value, permutations_done)``.
    """
    z = np.vstack([x, y])
    n, m = len(x), len(y)
    sq = np.einsum("ij,ij->i", z, z)
    distances = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    positive = distances[np.triu_indices(len(z), 1)]
    positive = positive[positive > 0]
    bandwidth = float(np.median(positive)) if len(positive) else 1.0
    kernel = np.exp(-distances / bandwidth)
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(weights @ kernel @ weights)
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    start = time.perf_counter()
    while done < n_permutations:
        block = min(100, n_permutations - done)
        w = np.stack([rng.permutation(weights) for _ in range(block)], axis=1)
        stats = np.einsum("ij,ij->j", w, kernel @ w)
        exceed += int((stats >= observed - 1e-12).sum())
        done += block
        if time_budget is not None and time.perf_counter() - start > time_budget:
            break
    return observed, (1 + exceed) / (1 + done), done


def _classifier_auc(x: np.ndarray, y: np.ndarray, seed: int, folds: int = 5) -> float:

    z = np.vstack([x, y])
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

    # One OpenMP thread: on a shared CI runner more threads spin-wait and run many times slower.
    with threadpool_limits(limits=1):
        scores = cross_val_predict(model, z, labels, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def check_multivariate_drift(
    reference: Any,
    current: Any,
    *,
    method: MultivariateMethod = "mmd",
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    alpha: float = 0.05,
    n_samples: int | None = None,
    n_permutations: int = 500,
    max_auc: float = 0.55,
    time_budget: float | None = 30.0,
    seed: int = 0,
    name: str = "multivariate_drift",
) -> CheckResult:
    """Test whether the joint distribution of the columns changed.

    Parameters
    ----------
    reference, current:
        Datasets, DataFrames or paths.
    method:
        ``"mmd"`` (kernel two-sample test with a permutation p-value) or ``"classifier"``
        (cross-validated AUC of a reference-versus-current classifier).
    n_samples:
        Rows drawn (seeded, without replacement) from each side; default 1000 for MMD and 2000
        for the classifier.
    n_permutations, time_budget:
        MMD permutations, stopped early after *time_budget* seconds.
    max_auc:
        The classifier's AUC at or above which a significant result counts as drift.
    alpha, seed:
        Significance level; seed of the subsampling, permutations and folds.

    Returns
    -------
    CheckResult
        Failed when the p-value is below *alpha* (and, for the classifier, AUC >= *max_auc*).
    """
    if method not in DEFAULT_SAMPLES:
        raise CheckError(
            f"multivariate drift: 'method' must be {choices_text(DEFAULT_SAMPLES)}, got {method!r}"
        )
    limit = n_samples or DEFAULT_SAMPLES[method]
    x, y = _samples(reference, current, columns, categorical, limit, seed)
    context: dict[str, Any] = {"n_ref": len(x), "n_cur": len(y), "method": method, "seed": seed}
    started = time.perf_counter()
    if method == "mmd":
        drifted, metrics, verdict = _mmd(x, y, alpha, n_permutations, seed, time_budget)
    else:
        drifted, metrics, verdict = _classifier(x, y, alpha, max_auc, seed)
    metrics["seconds"] = time.perf_counter() - started
    return _result(name, context, drifted, metrics, verdict, alpha, max_auc)


def _result(
    name: str,
    context: dict[str, Any],
    drifted: bool,
    metrics: dict[str, float],
    verdict: str,
    alpha: float,
    max_auc: float,
) -> CheckResult:
    """The check's result: p-value against alpha (MMD), or AUC against its bound (classifier)."""
    method = context["method"]
    ctx_text = ", ".join(f"{k}={v}" for k, v in context.items())
    status: Status = "failed" if drifted else "passed"
    message = (
        f"multivariate drift ({method}): {verdict}; "
        f"{'drift' if drifted else 'no drift'} at alpha={alpha:g} ({ctx_text})"
    )
    classifier = method == "classifier"
    return CheckResult(
        name=name,
        kind="drift",
        status=status,
        message=message,
        metric="auc" if classifier else "p_value",
        value=metrics["auc"] if classifier else metrics["p_value"],
        op="<" if classifier else ">=",
        bound=max_auc if classifier else alpha,
        metrics=metrics,
        context=context,
    )


def _samples(
    reference: Any,
    current: Any,
    columns: Sequence[str] | None,
    categorical: Sequence[str],
    limit: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to *limit* rows of each side (seeded, without replacement), encoded as numbers."""
    ref, features = as_frame(reference, "reference")
    cur, _ = as_frame(current, "current")
    wanted = list(columns) if columns is not None else list(features or map(str, ref.columns))
    missing = [c for c in wanted if c not in ref.columns or c not in cur.columns]
    if missing:
        raise DataError(
            f"multivariate drift: the column {missing[0]!r} is not in both the reference and the "
            "current data"
        )
    rng = np.random.default_rng(seed)
    ref = ref.iloc[np.sort(rng.permutation(len(ref))[:limit])]
    cur = cur.iloc[np.sort(rng.permutation(len(cur))[:limit])]
    return encode(ref, cur, wanted, categorical)


def _mmd(
    x: np.ndarray,
    y: np.ndarray,
    alpha: float,
    n_permutations: int,
    seed: int,
    time_budget: float | None,
) -> tuple[bool, dict[str, float], str]:
    """The MMD permutation test: drifted, its figures and the verdict's text."""
    mmd2, p, done = mmd_test(
        x, y, n_permutations=n_permutations, seed=seed, time_budget=time_budget
    )
    metrics = {"mmd2": mmd2, "p_value": p, "permutations": float(done)}
    verdict = f"mmd2={format_value(mmd2)}, permutation p={format_value(p)} ({done} permutations)"
    return p < alpha, metrics, verdict


def _classifier(
    x: np.ndarray, y: np.ndarray, alpha: float, max_auc: float, seed: int
) -> tuple[bool, dict[str, float], str]:
    """The domain classifier's AUC against chance: drifted, its figures and the verdict's text."""
    auc = _classifier_auc(x, y, seed)
    n1, n2 = len(x), len(y)
    sd = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    p = float(stats.norm.sf((auc - 0.5) / sd))
    metrics = {"auc": auc, "p_value": p}
    verdict = (
        f"domain classifier AUC={format_value(auc)} (drift at >= {max_auc:g}), p={format_value(p)}"
    )
    return p < alpha and auc >= max_auc, metrics, verdict
