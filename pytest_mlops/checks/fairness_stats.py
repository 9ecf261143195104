"""Vectorised group statistics and intervals behind :mod:`pytest_mlops.checks.fairness`.

Rates come from confusion cells (group x label x decision) counted once; the bootstrap draws cell
counts (or, for a metric by name, row counts) and computes every group's rates for all resamples
at once. Nothing here knows about models, datasets or results.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pytest_mlops.checks.metrics import get_metric
from pytest_mlops.checks.stats import Interval

__all__ = [
    "MAX_UNDEFINED",
    "RATES",
    "Disparity",
    "Estimate",
    "Grouping",
    "Outcomes",
    "Resampler",
    "aggregate",
    "group_intervals",
    "masked",
    "percentile_interval",
    "rates",
    "simultaneous_interval",
    "thin_groups",
]

Aggregate = Literal["difference", "ratio"]
RATES = ("selection_rate", "tpr", "fpr", "accuracy")
MAX_UNDEFINED = 0.1  # as stats.bootstrap: more undefined resamples than this and no interval


@dataclass(frozen=True)
class Disparity:
    """A disparity: which group statistics it compares and how."""

    name: str
    stats: tuple[str, ...]
    agg: Aggregate
    help: str
    default_min: float | None = None

    @property
    def higher_is_fairer(self) -> bool:
        return self.agg == "ratio"

    def of(self, stats: Mapping[str, np.ndarray]) -> np.ndarray:
        """The disparity from per-group values (last axis = groups; NaN = undefined group)."""
        parts = [aggregate(stats[s], self.agg) for s in self.stats]
        if len(parts) == 1:
            return parts[0]
        stacked = np.stack(parts)
        return np.asarray(stacked.max(axis=0) if self.agg == "difference" else stacked.min(axis=0))


def aggregate(values: np.ndarray, agg: Aggregate) -> np.ndarray:
    """Largest minus smallest (or smallest over largest) over the defined groups; NaN if < 2."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    high = np.where(finite, values, -np.inf).max(axis=-1)
    low = np.where(finite, values, np.inf).min(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = high - low if agg == "difference" else low / high
    return np.asarray(np.where(finite.sum(axis=-1) >= 2, out, np.nan))


def rates(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Group rates from confusion cells ``[..., group, (y,pred) = 00, 01, 10, 11]``."""
    n = cells.sum(axis=-1)
    negatives = cells[..., 0] + cells[..., 1]
    positives = cells[..., 2] + cells[..., 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "selection_rate": (cells[..., 1] + cells[..., 3]) / n,
            "tpr": cells[..., 3] / positives,
            "fpr": cells[..., 1] / negatives,
            "accuracy": (cells[..., 0] + cells[..., 3]) / n,
        }


@dataclass(frozen=True)
class Outcomes:
    """Binary labels and decisions as 0/1, and scores where a metric needs them."""

    model: str
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None = None


@dataclass(frozen=True)
class Grouping:
    """One way of splitting the rows into groups: a label, each row's group code, the names."""

    label: str
    codes: np.ndarray
    names: tuple[str, ...]

    @property
    def sizes(self) -> np.ndarray:

        return np.bincount(self.codes, minlength=len(self.names))


class Resampler:
    """Group statistics of one or two models over the same seeded resamples of the rows.

    Rates depend on the rows only through the confusion cells (group x label x decisions), and
    drawing ``n`` rows with replacement gives Multinomial(``n``, cell shares) cell counts, so the
    rates are resampled by drawing cell counts directly: exactly the row bootstrap, in
    milliseconds. A classification metric by name (``roc_auc``...) needs the rows themselves and
    goes through :func:`~pytest_mlops.checks.stats.bootstrap_counts`.
    """

    def __init__(
        self,
        outs: Sequence[Outcomes],
        grouping: Grouping,
        included: np.ndarray,
        extra: str | None,
    ) -> None:

        groups = np.flatnonzero(included)
        column = np.full(len(grouping.names), -1, dtype=np.int64)
        column[groups] = np.arange(len(groups))
        self.models = len(outs)
        self.groups = len(groups)
        self.per_group = 2 ** (1 + self.models)
        col = column[grouping.codes]
        cell = col * 2 + outs[0].y
        for out in outs:
            cell = cell * 2 + out.pred
        self.cell = np.where(col >= 0, cell, self.groups * self.per_group)  # last: excluded rows
        self.extra: list[list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]] = []
        self.extra_name = extra
        if extra is not None:
            from pytest_mlops.checks.metrics import resampled

            spec = get_metric(extra)
            for out in outs:
                outputs = out.pred if spec.needs != "proba" or out.proba is None else out.proba
                fns = []
                for g in groups:
                    idx = np.flatnonzero(grouping.codes == g)
                    fns.append((idx, resampled(spec, out.y[idx], outputs[idx], np.array([0, 1]))))
                self.extra.append(fns)

    def stats(self, cells: np.ndarray, W: np.ndarray | None = None) -> list[dict[str, np.ndarray]]:
        """Per model, the group statistics (``b x groups``) from cell counts (``b x cells``)."""
        b = cells.shape[0]
        shaped = cells[:, : self.groups * self.per_group].reshape(
            (b, self.groups, 2) + (2,) * self.models
        )
        out = []
        for k in range(self.models):
            others = tuple(3 + j for j in range(self.models) if j != k)
            confusion = shaped.sum(axis=others) if others else shaped
            stats = rates(confusion.reshape(b, self.groups, 4))
            if W is not None and self.extra_name is not None:
                stats[self.extra_name] = np.column_stack(
                    [fn(W[:, idx]) for idx, fn in self.extra[k]]
                )
            out.append(stats)
        return out

    def run(
        self,
        combine: Callable[[list[dict[str, np.ndarray]]], dict[str, np.ndarray]],
        n_resamples: int,
        seed: int,
    ) -> dict[str, np.ndarray]:
        """``combine(stats per model)`` over *n_resamples* seeded resamples of the rows."""
        n = len(self.cell)
        size = self.groups * self.per_group + 1
        blocks: dict[str, list[np.ndarray]] = {}
        if self.extra_name is None:
            counts = np.bincount(self.cell, minlength=size)
            rng = np.random.default_rng(seed)
            cells = rng.multinomial(n, counts / n, size=n_resamples).astype(np.float64)
            return combine(self.stats(cells))
        from pytest_mlops.checks.stats import bootstrap_counts

        onehot = np.zeros((n, size))
        onehot[np.arange(n), self.cell] = 1.0
        for W in bootstrap_counts(n, n_resamples=n_resamples, seed=seed):
            for name, values in combine(self.stats(W @ onehot, W)).items():
                blocks.setdefault(name, []).append(values)
        return {name: np.concatenate(parts) for name, parts in blocks.items()}


@dataclass(frozen=True)
class Estimate:
    """A disparity with its interval, or the reason it is undefined."""

    value: float
    interval: Interval | None = None
    reason: str = ""


def thin_groups(
    grouping: Grouping, included: np.ndarray, positives: np.ndarray, min_group_size: int
) -> dict[str, np.ndarray]:
    """Included groups whose TPR (FPR) rests on fewer than *min_group_size* positives (negatives).

    A rate is only as good as the rows it divides by: a TPR from three positives swings between
    0 and 1, and its bootstrap error (zero when all three agree) is no guide. Such a group stays
    in the other disparities and is left out of the TPR (FPR) ones, and the result says so.
    """
    sizes = grouping.sizes[included]
    pos = positives[included]
    return {"tpr": pos < min_group_size, "fpr": (sizes - pos) < min_group_size}


def masked(
    stats: Mapping[str, np.ndarray], thin: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """*stats* (last axis = included groups) with the thin groups' rates set to NaN (undefined)."""
    out = dict(stats)
    for key, mask in thin.items():
        if key in out and mask.any():
            values = np.array(out[key], dtype=np.float64)
            values[..., mask] = np.nan
            out[key] = values
    return out


def group_intervals(
    samples: Mapping[str, np.ndarray], included: np.ndarray, confidence: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile intervals of each group's own rates (NaN for excluded groups), for the tables."""
    alpha = (1 - confidence) / 2
    out = {}
    for stat in RATES:
        low, high = np.full(len(included), np.nan), np.full(len(included), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a rate never defined
            low[included], high[included] = np.nanquantile(
                samples[stat], [alpha, 1 - alpha], axis=0
            )
        out[stat] = (low, high)
    return out


def _pairwise_gaps(
    spec: Disparity, point: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of defined groups' gap (of ``log r`` for a ratio): point and resampled."""
    gaps, boots = [], []
    for stat in spec.stats:
        values = np.asarray(point[stat], dtype=np.float64)
        draws = np.asarray(samples[stat], dtype=np.float64)
        defined = np.flatnonzero(np.isfinite(values))
        if spec.agg == "ratio":
            with np.errstate(divide="ignore", invalid="ignore"):
                values, draws = np.log(np.maximum(values, 1e-12)), np.log(np.maximum(draws, 1e-12))
        i, j = np.triu_indices(len(defined), k=1)
        gaps.append(values[defined[i]] - values[defined[j]])
        boots.append(draws[:, defined[i]] - draws[:, defined[j]])
    return np.concatenate(gaps), np.concatenate(boots, axis=1)


def _critical_value(gap: np.ndarray, boot: np.ndarray, se: np.ndarray, confidence: float) -> float:
    """The max-t critical value covering all pairs at once, at least Bonferroni's."""
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.where(se > 0, np.abs(boot - gap) / se, 0.0)
    # Bonferroni's normal quantile is a floor: with small groups the bootstrap's own spread of
    # the largest deviation runs a little narrow, and the gate must not fail fair models.
    from scipy.stats import norm

    return max(
        float(np.quantile(deviation.max(axis=1), confidence)),
        float(norm.ppf(1 - (1 - confidence) / (2 * len(gap)))),
    )


def simultaneous_interval(
    spec: Disparity,
    estimate: float,
    point: Mapping[str, np.ndarray],
    samples: Mapping[str, np.ndarray],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Estimate:
    """An interval for a disparity from simultaneous intervals of all pairwise group gaps.

    A difference is the largest gap ``|r_i - r_j|`` over pairs of groups (a ratio, the largest
    gap of ``log r``). The percentile interval of that maximum is biased upwards (noise in small
    groups alone widens it) and would flag fair models; instead each pair's gap gets a bootstrap
    standard error, one critical value covers all pairs at once (the ``confidence`` quantile of the
    largest studentised deviation over the resamples, "max-t", and at least Bonferroni's normal
    quantile), and the disparity's interval is
    ``[max(|gap| - c se), max(|gap| + c se)]``. If every pair is covered, so is the disparity:
    the interval holds the true disparity at least ``confidence`` of the time.
    """
    if not math.isfinite(estimate):
        return Estimate(estimate, None, "undefined on the data")
    gap, boot = _pairwise_gaps(spec, point, samples)
    valid = np.isfinite(boot).all(axis=1)
    if valid.sum() < (1 - MAX_UNDEFINED) * n_resamples:
        return Estimate(
            estimate,
            None,
            f"undefined in {n_resamples - int(valid.sum())} of {n_resamples} bootstrap resamples "
            "(a group too small or without positives)",
        )
    boot = boot[valid]
    se = boot.std(axis=0, ddof=1)
    c = _critical_value(gap, boot, se, confidence)
    low = float(np.max(np.abs(gap) - c * se, initial=0.0))
    high = float(np.max(np.abs(gap) + c * se))
    if spec.agg == "ratio":
        low, high = math.exp(-high), math.exp(-low)
    elif all(stat in RATES for stat in spec.stats):
        high = min(high, 1.0)
    low, high = min(low, estimate), max(high, estimate)
    return Estimate(estimate, Interval(estimate, low, high, confidence, n_resamples, seed))


def percentile_interval(
    estimate: float, samples: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> Estimate:
    """The percentile interval of *estimate* from its bootstrap *samples*."""
    if not math.isfinite(estimate):
        return Estimate(estimate, None, "undefined on the data")
    finite = samples[np.isfinite(samples)]
    if len(finite) < (1 - MAX_UNDEFINED) * n_resamples:
        return Estimate(
            estimate,
            None,
            f"undefined in {n_resamples - len(finite)} of {n_resamples} bootstrap resamples "
            "(a group too small or without positives)",
        )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Estimate(
        estimate, Interval(estimate, float(low), float(high), confidence, n_resamples, seed)
    )
