"""Percentiles, their order-statistic confidence bounds, and the stopping rule.

The upper confidence bound of a quantile comes from order statistics, with no assumption on the
shape of the latency distribution: among ``n`` independent runs, the number that fall below the
true ``q``-quantile is Binomial(n, q), so the ``k``-th smallest run (1-based) lies at or above the
quantile with probability ``P(Binomial(n, q) <= k - 1)``. The bound is the smallest such ``k`` that
reaches the confidence; it exists only once ``1 - q**n >= confidence`` (299 runs for p99 at 95%,
2995 for p99.9).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "PERCENTILES",
    "histogram",
    "min_runs_for_bound",
    "tail_settled",
    "upper_bound_index",
]

# name used in tables and settings -> percentile
PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p999": 99.9,
}


def upper_bound_index(n: int, percentile: float, confidence: float) -> int | None:
    """0-based index into the sorted runs of the one-sided upper bound of *percentile*.

    ``None`` when *n* runs are too few for a bound at *confidence*.
    """
    from scipy.stats import binom

    if n <= 0:
        return None
    q = percentile / 100.0
    index = int(binom.ppf(confidence, n, q))
    # ppf is the smallest m with cdf(m) >= confidence; guard against its float edge cases
    while index > 0 and binom.cdf(index - 1, n, q) >= confidence:
        index -= 1
    while index < n and binom.cdf(index, n, q) < confidence:
        index += 1
    return index if index <= n - 1 else None


def min_runs_for_bound(percentile: float, confidence: float) -> int:
    """The fewest runs for which the upper bound of *percentile* exists at *confidence*."""
    q = percentile / 100.0
    if q <= 0.0:
        return 1
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(q) - 1e-12))


def tail_settled(
    sorted_ms: np.ndarray, percentile: float, confidence: float, tolerance: float
) -> bool:
    """True when the upper bound of *percentile* is known and within *tolerance* of its estimate."""
    index = upper_bound_index(len(sorted_ms), percentile, confidence)
    if index is None:
        return False
    estimate = float(np.percentile(sorted_ms, percentile))
    return float(sorted_ms[index]) <= estimate * (1.0 + tolerance)


def histogram(samples_ms: np.ndarray, bins: int = 12) -> list[tuple[float, int]]:
    """``(lower edge in ms, count)`` over ``[min, p99]``; the slowest 1% join the last bin."""
    if len(samples_ms) == 0:
        return []
    low = float(samples_ms.min())
    high = float(np.percentile(samples_ms, 99.0))
    if high <= low:
        return [(low, len(samples_ms))]
    counts, edges = np.histogram(np.clip(samples_ms, low, high), bins=bins, range=(low, high))
    return [(float(e), int(c)) for e, c in zip(edges[:-1], counts, strict=True)]
