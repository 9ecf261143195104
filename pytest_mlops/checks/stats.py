"""Seeded resampling statistics shared by the statistical gates.

Every statistical gate reports an effect size with its uncertainty; this module computes the
bootstrap intervals and turns an interval and a bound into a verdict that can be INCONCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pytest_mlops.errors import CheckError
from pytest_mlops.results import Status

__all__ = [
    "Interval",
    "bootstrap",
    "bootstrap_counts",
    "bootstrap_indices",
    "bootstrap_vectorized",
    "interval_verdict",
    "mcnemar_exact",
]

GateOn = Literal["estimate", "lower", "upper", "interval"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.confidence:.0%} CI {self.low:.4g}, {self.high:.4g}]"


def bootstrap_indices(
    n: int, *, n_resamples: int, seed: int, chunk: int = 64
) -> Iterator[np.ndarray]:
    """Yield blocks of resampling index rows (``chunk x n``), seeded so reruns are identical."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(size, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)
        done += size


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap of ``statistic(indices)`` over *n* rows.

    *statistic* receives an index array into the rows and returns a number; it is called once on
    ``arange(n)`` for the estimate and once per resample. Resamples where the statistic is
    undefined (NaN, e.g. a single class drawn) are dropped; if more than 10% are, the interval is
    not trusted and a CheckError says so.
    """
    if n < 2:
        raise CheckError(f"a bootstrap needs at least 2 rows, got {n}")
    if not 0 < confidence < 1:
        raise CheckError(f"confidence must be between 0 and 1, got {confidence}")
    estimate = float(statistic(np.arange(n)))
    values = np.array(
        [
            statistic(row)
            for block in bootstrap_indices(n, n_resamples=n_resamples, seed=seed)
            for row in block
        ],
        dtype=float,
    )
    finite = values[np.isfinite(values)]
    if len(finite) < 0.9 * n_resamples:
        raise CheckError(
            f"the statistic is undefined in {n_resamples - len(finite)} of {n_resamples} bootstrap "
            "resamples (too few rows or too few of a class)"
        )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high), confidence, n_resamples, seed)


def interval_verdict(
    interval: Interval,
    *,
    min: float | None = None,
    max: float | None = None,
    on: GateOn = "estimate",
) -> Status:
    """Judge an interval against bounds.

    ``on="estimate"`` judges the point estimate only; ``"lower"``/``"upper"`` judge one end of the
    interval; ``"interval"`` passes when the whole interval is within bounds, fails when the whole
    interval is outside, and is ``"inconclusive"`` when it straddles a bound.
    """

    def inside(value: float) -> bool:
        return (min is None or value >= min) and (max is None or value <= max)

    if on == "estimate":
        return "passed" if inside(interval.estimate) else "failed"
    if on == "lower":
        return "passed" if inside(interval.low) else "failed"
    if on == "upper":
        return "passed" if inside(interval.high) else "failed"
    low_ok, high_ok = inside(interval.low), inside(interval.high)
    if low_ok and high_ok:
        return "passed"
    whole_below = min is not None and interval.high < min
    whole_above = max is not None and interval.low > max
    return "failed" if whole_below or whole_above else "inconclusive"


def bootstrap_counts(
    n: int, *, n_resamples: int, seed: int, max_cells: int = 2**21
) -> Iterator[np.ndarray]:
    """Yield blocks of resamples as counts (``b x n`` float64): how often each row was drawn.

    A statistic on the counts ``w`` equals the statistic on the rows repeated ``w`` times, so
    metrics written as weighted sums run over a whole block with one matrix product. Blocks hold
    at most *max_cells* counts (16 MiB), whatever *n*; reruns with the same seed are identical.
    """
    chunk = max(1, min(64, max_cells // max(n, 1)))
    for block in bootstrap_indices(n, n_resamples=n_resamples, seed=seed, chunk=chunk):
        size = block.shape[0]
        flat = (block + (np.arange(size, dtype=np.int64) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float64)


def bootstrap_vectorized(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    estimate: float | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap of a statistic that takes a block of counts (see :func:`bootstrap_counts`).

    *statistic* maps counts ``W`` (``b x n``) to ``b`` values. *estimate* is the point estimate
    (by default the statistic on all rows once each). Resamples where the statistic is undefined
    (NaN) are dropped; if more than 10% are, a CheckError says the interval cannot be trusted. A
    paired comparison passes a statistic that scores two models on the same counts.
    """
    if n < 2:
        raise CheckError(f"a bootstrap needs at least 2 rows, got {n}")
    if not 0 < confidence < 1:
        raise CheckError(f"confidence must be between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise CheckError(f"n_resamples must be at least 1, got {n_resamples}")
    if estimate is None:
        estimate = float(statistic(np.ones((1, n)))[0])
    values = np.concatenate(
        [
            np.asarray(statistic(block), dtype=np.float64)
            for block in bootstrap_counts(n, n_resamples=n_resamples, seed=seed)
        ]
    )
    finite = values[np.isfinite(values)]
    if len(finite) < 0.9 * n_resamples:
        raise CheckError(
            f"the statistic is undefined in {n_resamples - len(finite)} of {n_resamples} bootstrap "
            "resamples (too few rows or too few of a class)"
        )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(float(estimate), float(low), float(high), confidence, n_resamples, seed)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs.

    *only_first* counts rows the first model gets right and the second wrong, *only_second* the
    reverse. Under "equally accurate" each discordant row is a fair coin, so the p-value is the
    two-sided binomial test of ``only_first`` successes in ``only_first + only_second`` trials
    (1.0 when the models never disagree).
    """
    if only_first < 0 or only_second < 0:
        raise CheckError("discordant pair counts must be >= 0")
    total = only_first + only_second
    if total == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(only_first, total, 0.5, alternative="two-sided").pvalue)
