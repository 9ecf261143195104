"""Metrics over bootstrap resamples, vectorised.

A bootstrap resample is a row of counts ``w`` (how often each row was drawn); a metric on the
resample equals the metric on the rows repeated ``w`` times. Each ``prepare_*`` function takes the
labels and the model outputs once (sorting scores, encoding classes) and returns a function that
maps a block of count rows ``W`` (``b x n``) to ``b`` metric values, with matrix products instead
of ``b`` calls to scikit-learn. On the full data (``W`` = ones) every value equals scikit-learn's
function; a value that is undefined on a resample (a class missing) is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_mlops.errors import CheckError

__all__ = ["Resampled", "prepare"]

Resampled = Callable[["np.ndarray"], "np.ndarray"]
"""Counts ``W`` (``b x n``) -> ``b`` metric values."""

ECE_BINS = 10


def _div(num: np.ndarray, den: np.ndarray, fill: float = float("nan")) -> np.ndarray:

    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _binary_scores(outputs: Any, classes: Any) -> Any:

    proba = np.asarray(outputs, dtype=np.float64)
    return proba[:, 1] if proba.ndim == 2 else proba


def _grouped(
    Ws: np.ndarray, pos: np.ndarray, neg: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per group of tied scores (rows sorted by score)."""
    P, N = Ws * pos, Ws * neg
    if len(starts) == Ws.shape[1]:  # no ties: every row is its own group
        return P, N
    return np.add.reduceat(P, starts, axis=1), np.add.reduceat(N, starts, axis=1)


def _auc(is_pos: np.ndarray, score: np.ndarray) -> Resampled:
    """Weighted ROC AUC (ties count one half), the Mann-Whitney form sklearn's equals."""
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    pos = is_pos[order].astype(np.float64)
    neg = 1.0 - pos

    def compute(W: np.ndarray) -> np.ndarray:
        P, N = _grouped(W[:, order], pos, neg, starts)
        below = np.cumsum(N, axis=1) - N
        wins = np.sum(P * (below + 0.5 * N), axis=1)
        return _div(wins, P.sum(axis=1) * N.sum(axis=1))

    return compute


def _average_precision(is_pos: np.ndarray, score: np.ndarray) -> Resampled:
    """Weighted average precision: sum over descending thresholds of (R_k - R_k-1) * P_k."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    pos = is_pos[order].astype(np.float64)
    neg = 1.0 - pos

    def compute(W: np.ndarray) -> np.ndarray:
        P, N = _grouped(W[:, order], pos, neg, starts)
        tp = np.cumsum(P, axis=1)
        precision = _div(tp, tp + np.cumsum(N, axis=1), fill=0.0)
        return _div(np.sum(P * precision, axis=1), tp[:, -1])

    return compute


def _mean_of(values: np.ndarray) -> Resampled:

    values = np.asarray(values, dtype=np.float64)

    def compute(W: np.ndarray) -> np.ndarray:
        return _div(W @ values, W.sum(axis=1))

    return compute


def _confusion(y: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], Any]:
    """Per-class weighted true positives, true counts and predicted counts."""
    true_1h = (y[:, None] == labels[None, :]).astype(np.float64)
    pred_1h = (pred[:, None] == labels[None, :]).astype(np.float64)
    hit_1h = true_1h * pred_1h

    def counts(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return W @ hit_1h, W @ true_1h, W @ pred_1h

    return counts


def _label_metric(kind: str, y: Any, pred: Any, classes: Any) -> Resampled:

    y, pred = np.asarray(y), np.asarray(pred)
    if kind == "accuracy":
        return _mean_of(y == pred)
    labels = np.unique(np.concatenate([y, pred]))
    counts = _confusion(y, pred, labels)
    binary = classes is not None and len(classes) == 2 and kind != "balanced_accuracy"

    def compute(W: np.ndarray) -> np.ndarray:
        tp, true, predicted = counts(W)
        if kind == "balanced_accuracy":
            recall = _div(tp, true)
            return np.asarray(np.nanmean(np.where(true > 0, recall, np.nan), axis=1))
        if binary:
            index = np.flatnonzero(labels == classes[1])
            if len(index) == 0:
                return np.zeros(W.shape[0])
            tp, true, predicted = tp[:, index[0]], true[:, index[0]], predicted[:, index[0]]
        per = {
            "precision": _div(tp, predicted, 0.0),
            "recall": _div(tp, true, 0.0),
            "f1": _div(2 * tp, true + predicted, 0.0),
        }[kind]
        if binary:
            return per
        present = (true + predicted) > 0
        return _div(np.sum(np.where(present, per, 0.0), axis=1), present.sum(axis=1))

    return compute


def _proba_metric(kind: str, y: Any, proba: Any, classes: Any) -> Resampled:

    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.asarray(classes)
    if kind == "roc_auc" and proba.ndim == 2 and proba.shape[1] > 2:
        per_class = [_auc(y == c, proba[:, i]) for i, c in enumerate(classes)]
        return lambda W: np.mean(np.column_stack([f(W) for f in per_class]), axis=1)
    if kind == "log_loss":
        eps = np.finfo(np.float64).eps
        true_col = np.argmax(y[:, None] == classes[None, :], axis=1)
        p_true = np.clip(proba, eps, 1 - eps)[np.arange(len(y)), true_col]
        return _mean_of(-np.log(p_true))
    if kind == "ece":
        return _ece(y, proba, classes)
    is_pos = y == classes[-1]
    score = _binary_scores(proba, classes)
    if kind == "roc_auc":
        return _auc(is_pos, score)
    if kind == "pr_auc":
        return _average_precision(is_pos, score)
    if kind == "brier":
        return _mean_of((score - is_pos) ** 2)
    raise KeyError(kind)


def ece_bins(confidence: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Equal-width bin of each confidence on [0, 1], as ``sklearn.calibration_curve`` bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.asarray(np.searchsorted(edges[1:-1], confidence))


def ece_inputs(y: Any, proba: Any, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, outcome) pairs ECE compares: binary P(positive) vs the label; else top-label."""
    y, proba, classes = np.asarray(y), np.asarray(proba, dtype=np.float64), np.asarray(classes)
    if proba.ndim == 1 or proba.shape[1] == 2:
        return _binary_scores(proba, classes), (y == classes[-1]).astype(np.float64)
    top = proba.argmax(axis=1)
    return proba.max(axis=1), (classes[top] == y).astype(np.float64)


def _ece(y: Any, proba: Any, classes: Any) -> Resampled:

    confidence, outcome = ece_inputs(y, proba, classes)
    onehot = ece_bins(confidence)[:, None] == np.arange(ECE_BINS)[None, :]
    gap = onehot * (outcome - confidence)[:, None]

    def compute(W: np.ndarray) -> np.ndarray:
        return _div(np.abs(W @ gap).sum(axis=1), W.sum(axis=1))

    return compute


def _value_metric(kind: str, y: Any, pred: Any) -> Resampled:

    y = np.asarray(y, dtype=np.float64)
    err = y - np.asarray(pred, dtype=np.float64).reshape(y.shape)
    if kind == "mae":
        return _mean_of(np.abs(err))
    if kind == "mse":
        return _mean_of(err**2)
    if kind == "rmse":
        mse = _mean_of(err**2)
        return lambda W: np.sqrt(mse(W))
    sq_err, y2 = err**2, y**2

    def r2(W: np.ndarray) -> np.ndarray:
        total = W.sum(axis=1)
        ss_res = W @ sq_err
        ss_tot = W @ y2 - _div((W @ y) ** 2, total, 0.0)
        # sklearn's force_finite: a constant target scores 1 when predicted exactly, else 0
        ss_tot = np.where(np.abs(ss_tot) <= 1e-12 * np.maximum(W @ y2, 1.0), 0.0, ss_tot)
        perfect = np.where(ss_res == 0, 1.0, 0.0)
        return np.where(ss_tot == 0, perfect, 1.0 - _div(ss_res, ss_tot, 0.0))

    return r2


_LABEL = ("accuracy", "balanced_accuracy", "precision", "recall", "f1")
_PROBA = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
_VALUE = ("mae", "mse", "rmse", "r2")


def prepare(metric: str, y: Any, outputs: Any, classes: Any) -> Resampled:
    """The resampled form of *metric* (a name in ``METRICS``) on these labels and outputs."""
    if metric in _LABEL:
        return _label_metric(metric, y, outputs, classes)
    if metric in _PROBA:
        if classes is None:
            classes = np.unique(np.asarray(y))
        return _proba_metric(metric, y, outputs, classes)
    if metric in _VALUE:
        return _value_metric(metric, y, outputs)
    raise CheckError(f"the metric {metric!r} has no resampled form, so no bootstrap interval")
