"""Data integrity: the faults that make a model look better or worse than it is.

:func:`check_integrity` looks for duplicate rows, constant columns, identical features with
conflicting labels, a rare class, rows of the current data that also sit in the reference
(train/test leakage) and single features that predict the target almost perfectly (target
leakage). Each finding has its own threshold; the result lists every one in tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from pytest_mlops.data.dataset import Dataset, frame_of
from pytest_mlops.errors import CheckError, DataError, did_you_mean
from pytest_mlops.results import CheckResult, format_value

__all__ = ["check_integrity", "feature_power", "roc_auc"]

N_EXAMPLES = 5


@dataclass(frozen=True)
class _Finding:
    check: str
    metric: str
    value: float
    op: str
    bound: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.bound if self.op == "<=" else self.value >= self.bound

    def text(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.metric} must be {self.op} {format_value(self.bound)}: measured {format_value(self.value)}{note}"

    def row(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "metric": self.metric,
            "value": self.value,
            "bound": f"{self.op} {format_value(self.bound)}",
            "status": "passed" if self.passed else "failed",
            "note": self.note,
        }


def check_integrity(
    data: Dataset | pd.DataFrame,
    *,
    reference: Dataset | pd.DataFrame | None = None,
    target: str | None = None,
    features: Sequence[str] | None = None,
    max_duplicate_share: float = 0.05,
    max_constant_columns: int = 0,
    max_conflicting_share: float = 0.01,
    min_class_share: float = 0.01,
    max_overlap_share: float = 0.01,
    max_feature_power: float = 0.9,
    seed: int = 0,
    name: str = "integrity",
) -> CheckResult:
    """Check *data* for duplicates, constant columns, label conflicts, imbalance and leakage.

    Parameters
    ----------
    data:
        A :class:`Dataset` (its target and features are used) or a DataFrame.
    reference:
        The training data; rows of *data* whose features also appear in it count as overlap.
    target, features:
        Roles for a DataFrame (a Dataset brings its own). Without a target no label checks run.
    max_duplicate_share, max_constant_columns:
        Largest share of rows that repeat an earlier row exactly; how many columns may be constant.
    max_conflicting_share:
        Largest share of rows whose features equal another row's but whose label differs.
    min_class_share, max_overlap_share:
        Smallest share of the rarest class (classification targets only); largest share of rows
        of *data* found in *reference* (by features).
    max_feature_power:
        Largest out-of-fold predictive power of one feature (1: it alone gives the label away):
        ``2*AUC-1`` for a binary target, accuracy above the majority class (normalised) for
        several classes, R² for a numeric target.
    seed:
        Seed of the folds used to score single features.

    Returns
    -------
    CheckResult
        Failed when a finding is beyond its bound; inconclusive under two rows. ``tables`` has
        ``checks`` (every finding), ``duplicates``, ``constant_columns``, ``conflicting_labels``,
        ``class_balance``, ``overlap`` and ``feature_power``.
    """
    bounds = _Bounds(
        max_duplicate_share,
        max_constant_columns,
        max_conflicting_share,
        min_class_share,
        max_overlap_share,
        max_feature_power,
    )
    return _judge(data, reference, target, features, bounds, seed, name)


@dataclass(frozen=True)
class _Bounds:
    """The bound of each finding, the shares checked to lie in [0, 1]."""

    max_duplicate_share: float
    max_constant_columns: int
    max_conflicting_share: float
    min_class_share: float
    max_overlap_share: float
    max_feature_power: float

    def __post_init__(self) -> None:
        for key, value in vars(self).items():
            if key != "max_constant_columns" and not 0.0 <= value <= 1.0:
                raise CheckError(
                    f"check_integrity: {key!r} must be a share in [0, 1], got {value!r}"
                )


def _judge(
    data: Dataset | pd.DataFrame,
    reference: Dataset | pd.DataFrame | None,
    target: str | None,
    features: Sequence[str] | None,
    bounds: _Bounds,
    seed: int,
    name: str,
) -> CheckResult:
    """The findings on *data* (and against *reference*) judged against *bounds*."""
    frame, target, feats, label = _roles(data, target, features)
    if not frame.index.is_unique:  # rows are named by position when labels repeat
        frame = frame.reset_index(drop=True)
    context: dict[str, str | int | float | bool | None] = {"n": len(frame), "split": label}
    context["seed"] = seed
    if len(frame) < 2:
        return _too_few(label, context, name)
    tables: dict[str, list[dict[str, Any]]] = {}
    findings = _findings(frame, feats, target, bounds, seed, tables)
    if reference is not None:
        ref_frame, _, _, ref_label = _roles(reference, None, None)
        context["reference"] = ref_label
        findings.append(_overlap(frame, ref_frame, feats, bounds.max_overlap_share, tables))
    return _result(findings, tables, context, label, name)


def _too_few(
    label: str, context: dict[str, str | int | float | bool | None], name: str
) -> CheckResult:
    """The inconclusive result of data with fewer than two rows."""
    return CheckResult(
        name=name,
        kind="integrity",
        status="inconclusive",
        message=(
            f"{label} has {context['n']} row: "
            "too few to judge duplicates, constant columns or leakage"
        ),
        context=context,
    )


def _findings(
    frame: pd.DataFrame,
    feats: list[str],
    target: str | None,
    bounds: _Bounds,
    seed: int,
    tables: dict[str, list[dict[str, Any]]],
) -> list[_Finding]:
    """The findings on *frame* alone: duplicates, constant columns and the label checks.

    The label checks (conflicts, class balance, single features that leak the target) run only
    with a target.
    """
    findings = [
        _duplicates(frame, bounds.max_duplicate_share, tables),
        _constant_columns(frame, bounds.max_constant_columns, tables),
    ]
    if target is None:
        return findings
    findings.append(_conflicts(frame, feats, target, bounds.max_conflicting_share, tables))
    balance = _class_balance(frame[target], bounds.min_class_share, tables)
    if balance is not None:
        findings.append(balance)
    findings.append(_leaking_features(frame, feats, target, bounds.max_feature_power, seed, tables))
    return findings


def _roles(
    data: Dataset | pd.DataFrame, target: str | None, features: Sequence[str] | None
) -> tuple[pd.DataFrame, str | None, list[str], str]:

    frame, label = frame_of(data)
    if isinstance(data, Dataset):
        target = target or data.target
        features = features or data.feature_names
    columns = [str(c) for c in frame.columns]
    for role, column in [("target", target)] + [("feature", f) for f in features or ()]:
        if column is not None and column not in columns:
            raise DataError(
                f"{label} has no {role} column {column!r}{did_you_mean(column, columns)}"
            )
    feats = list(features) if features else [c for c in columns if c != target]
    return frame, target, feats, label


def _duplicates(frame: pd.DataFrame, bound: float, tables: dict[str, Any]) -> _Finding:

    dup = frame.duplicated(keep="first")
    count = int(dup.sum())
    if count:
        # Row labels only: the values may be personal data, and reports travel far.
        hashes = pd.util.hash_pandas_object(frame, index=False)
        first_seen = (
            pd.Series(frame.index, index=frame.index).groupby(hashes.to_numpy()).transform("first")
        )
        repeated = dup[dup].index[:N_EXAMPLES]
        tables["duplicates"] = [
            {"row": _plain(i), "same_as": _plain(first_seen[i])} for i in repeated
        ]
    return _Finding(
        "duplicates", "duplicate_share", count / len(frame), "<=", bound, f"{count} repeated rows"
    )


def _constant_columns(frame: pd.DataFrame, bound: int, tables: dict[str, Any]) -> _Finding:
    counts = frame.nunique(dropna=True)
    constant = [str(c) for c, k in counts.items() if k <= 1]
    if constant:
        tables["constant_columns"] = [
            {"column": c, "value": _plain(frame[c].dropna().iloc[0]) if counts[c] else None}
            for c in constant
        ]
    note = ", ".join(repr(c) for c in constant[:10])
    return _Finding("constant_columns", "constant_columns", float(len(constant)), "<=", bound, note)


def _conflicts(
    frame: pd.DataFrame, feats: list[str], target: str, bound: float, tables: dict[str, Any]
) -> _Finding:
    labels = frame.groupby(feats, dropna=False, sort=False)[target].transform("nunique")
    conflicting = labels > 1
    count = int(conflicting.sum())
    if count:
        shown = frame[conflicting].sort_values(feats).head(2 * N_EXAMPLES)
        tables["conflicting_labels"] = [
            {"row": _plain(i), target: _plain(r[target])} for i, r in shown.iterrows()
        ]
    return _Finding(
        "conflicting_labels",
        "conflicting_share",
        count / len(frame),
        "<=",
        bound,
        f"{count} rows share features with a row of another label",
    )


def _is_classification(y: pd.Series) -> bool:

    if pd.api.types.is_float_dtype(y):
        values = y.dropna()
        return bool((values == values.round()).all()) and values.nunique() <= 20
    return not pd.api.types.is_numeric_dtype(y) or y.nunique() <= 20


def _class_balance(y: pd.Series, bound: float, tables: dict[str, Any]) -> _Finding | None:
    if not _is_classification(y):
        return None
    counts = y.value_counts(dropna=False)
    shares = counts / len(y)
    tables["class_balance"] = [
        {"class": _plain(c), "count": int(k), "share": round(float(shares[c]), 6)}
        for c, k in counts.items()
    ]
    rarest = shares.idxmin()
    return _Finding(
        "class_balance",
        "min_class_share",
        float(shares.min()),
        ">=",
        bound,
        f"rarest class {_plain(rarest)!r}, {len(counts)} classes",
    )


def _overlap(
    frame: pd.DataFrame,
    ref: pd.DataFrame,
    feats: list[str],
    bound: float,
    tables: dict[str, Any],
) -> _Finding:

    common = [c for c in feats if c in ref.columns]
    if not common:
        raise DataError("the reference data shares no feature column with the data")
    ref_hash = set(pd.util.hash_pandas_object(ref[common], index=False).tolist())
    hashes = pd.util.hash_pandas_object(frame[common], index=False)
    found = hashes.isin(ref_hash).to_numpy()
    count = int(found.sum())
    tables["overlap"] = [
        {"rows": count, "share": round(count / len(frame), 6), "columns_compared": len(common)}
    ]
    return _Finding(
        "overlap",
        "overlap_share",
        count / len(frame),
        "<=",
        bound,
        f"{count} rows also in the reference",
    )


def _leaking_features(
    frame: pd.DataFrame,
    feats: list[str],
    target: str,
    bound: float,
    seed: int,
    tables: dict[str, Any],
) -> _Finding:
    rows = [feature_power(frame[f], frame[target], seed=seed) | {"feature": f} for f in feats]
    rows.sort(key=lambda r: -r["power"])
    tables["feature_power"] = [
        {"feature": r["feature"], "power": round(r["power"], 6), "score": r["score"]} for r in rows
    ]
    top: dict[str, Any] = rows[0] if rows else {"feature": None, "power": 0.0}
    return _Finding(
        "target_leakage",
        "max_feature_power",
        float(top["power"]),
        "<=",
        bound,
        f"strongest single feature {top['feature']!r}",
    )


def feature_power(
    feature: pd.Series, target: pd.Series, *, seed: int = 0, bins: int = 20
) -> dict[str, Any]:
    """How well one feature alone predicts the target, out of fold (0 = not at all, 1 = perfectly).

    The feature is binned (numbers: up to *bins* quantile bins; others: their values), each bin
    predicts the mean (or majority) label of the other fold, and the out-of-fold predictions are
    scored: ``2*AUC-1`` for a binary target (for numbers also the AUC of the raw values, whichever
    is larger), normalised accuracy for several classes, R² for a numeric target.
    """
    keep = target.notna().to_numpy()
    x, y = feature[keep].reset_index(drop=True), target[keep].reset_index(drop=True)
    if len(y) < 4 or y.nunique() < 2:
        return {"power": 0.0, "score": "n/a"}
    codes = _bin_codes(x, bins)
    folds = np.random.default_rng(seed).permutation(len(y)) % 2
    if _is_classification(y) and y.nunique() == 2:
        positive = (y == sorted(y.unique().tolist(), key=str)[-1]).to_numpy()
        oof = _out_of_fold_mean(codes, positive.astype(float), folds)
        auc = roc_auc(positive, oof)
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            raw = x.astype(float).fillna(float(x.median()) if x.notna().any() else 0.0)
            raw_auc = roc_auc(positive, raw.to_numpy())
            auc = max(auc, 1.0 - auc, raw_auc, 1.0 - raw_auc)
        auc = max(auc, 1.0 - auc)
        return {"power": 2.0 * auc - 1.0, "score": f"auc={auc:.4f}"}
    if _is_classification(y):
        labels, classes = pd.factorize(y)
        onehot = np.eye(len(classes))[labels]
        means = np.column_stack(
            [_out_of_fold_mean(codes, onehot[:, k], folds) for k in range(len(classes))]
        )
        acc = float((means.argmax(axis=1) == labels).mean())
        base = float(np.bincount(labels).max() / len(labels))
        power = 0.0 if base >= 1 else max(0.0, (acc - base) / (1.0 - base))
        return {"power": power, "score": f"accuracy={acc:.4f}"}
    values = y.astype(float).to_numpy()
    oof = _out_of_fold_mean(codes, values, folds)
    ss_res = float(((values - oof) ** 2).sum())
    ss_tot = float(((values - values.mean()) ** 2).sum())
    r2 = 0.0 if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return {"power": max(0.0, r2), "score": f"r2={r2:.4f}"}


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (ties count half), as scikit-learn computes it."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bin_codes(x: pd.Series, bins: int) -> np.ndarray:

    if (
        pd.api.types.is_numeric_dtype(x)
        and not pd.api.types.is_bool_dtype(x)
        and x.nunique() > bins
    ):
        ranks = x.rank(method="dense")
        codes = pd.qcut(ranks, q=bins, labels=False, duplicates="drop")
        return np.asarray(codes.fillna(-1).to_numpy(dtype=float), dtype=np.int64) + 1
    codes, _ = pd.factorize(x, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _out_of_fold_mean(codes: np.ndarray, values: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each row gets the mean of *values* in its bin, computed on the other fold only."""
    out = np.empty(len(values), dtype=float)
    size = int(codes.max()) + 1
    for fold in (0, 1):
        train, test = folds != fold, folds == fold
        sums = np.bincount(codes[train], weights=values[train], minlength=size)
        counts = np.bincount(codes[train], minlength=size)
        prior = float(values[train].mean()) if train.any() else 0.0
        means = np.where(counts > 0, sums / np.maximum(counts, 1), prior)
        out[test] = means[codes[test]]
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, str | int | float | bool | type(None)):
        return str(value)
    return value


def _result(
    findings: list[_Finding],
    tables: dict[str, list[dict[str, Any]]],
    context: dict[str, str | int | float | bool | None],
    label: str,
    name: str,
) -> CheckResult:
    failed = [f for f in findings if not f.passed]
    n = context["n"]
    if failed:
        listed = "; ".join(f.text() for f in failed)
        message = (
            f"{len(failed)} of {len(findings)} integrity checks failed in {label} (n={n}): {listed}"
        )
    else:
        message = f"{label} passed {len(findings)} integrity checks (n={n})"
    return CheckResult(
        name=name,
        kind="integrity",
        status="failed" if failed else "passed",
        message=message,
        metric="failed_checks",
        value=float(len(failed)),
        op="<=",
        bound=0.0,
        details="\n".join(f"{f.check}: {f.text()}" for f in findings),
        metrics={f.metric: f.value for f in findings} | {"failed_checks": float(len(failed))},
        context=context,
        tables={"checks": [f.row() for f in findings], **tables},
    )
