"""The exact two-sided p-value of the two-sample Kolmogorov–Smirnov statistic.

Under the null hypothesis every interleaving of the two samples is equally likely: a uniformly
random monotone lattice path from ``(0, 0)`` to ``(n1, n2)``, where step ``i`` takes the next
value of the first sample and step ``j`` the next of the second. After ``i`` and ``j`` steps the
two empirical CDFs differ by ``|i / n1 - j / n2| = |i n2 - j n1| / (n1 n2)``, and
``|i n2 - j n1|`` is a multiple of ``g = gcd(n1, n2)``; so ``D >= d`` exactly when the path
touches a point with ``|i n2 - j n1| >= h g``, where ``h = round(d n1 n2 / g)``.

The p-value is the probability that the random path touches that boundary. It is computed
forward, one anti-diagonal ``i + j = k`` at a time: each point inside the band carries the
probability of reaching it without having touched the boundary, and passes it on with the
probabilities of the next step (``(n1 - i) / r`` and ``(n2 - j) / r``, ``r`` the steps left).
Mass that lands on the boundary is summed into the p-value and not passed on. Every term is a
probability in ``[0, 1]``: no binomial coefficient overflows, and a small p-value is a sum of
positive terms, not one minus a number close to one, so it keeps its relative precision.
Cost: ``O((n1 + n2) * band)``, vectorised along each anti-diagonal. Samples of equal sizes take
the reflection principle's closed series instead (``O(n / h)`` terms).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ks_2samp_exact_pvalue", "ks_2samp_exact_pvalues"]


def ks_2samp_exact_pvalue(d: float, n1: int, n2: int) -> float:
    """``P(D >= d)`` for samples of sizes *n1* and *n2* without ties (two-sided, exact).

    Agrees with ``scipy.stats.ks_2samp(x, y, method="exact").pvalue`` for the statistic ``d``
    of ``x`` and ``y`` (see the tests); *d* is rounded to the lattice of attainable values.
    """
    return float(ks_2samp_exact_pvalues(np.array([d], dtype=float), n1, n2)[0])


def ks_2samp_exact_pvalues(d: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """:func:`ks_2samp_exact_pvalue` for several statistics of same-size samples at once.

    The statistics are the columns of a drift check: one pass over the lattice for all of them.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"sample sizes must be positive, got {n1} and {n2}")
    g = math.gcd(n1, n2)
    h = np.rint(np.asarray(d, dtype=float) * ((n1 // g) * n2)).astype(np.int64)
    p = np.ones(h.shape)
    todo = np.flatnonzero(h > 0)
    if n1 == n2 and todo.size:
        p[todo] = _equal_sizes(h[todo], n1)
    elif todo.size == 1:
        p[todo] = _exit_probability(int(h[todo[0]]) * g, n1, n2)
    elif todo.size:
        p[todo] = _exit_probabilities(h[todo] * g, n1, n2)
    return p


def _equal_sizes(h: np.ndarray, n: int) -> np.ndarray:
    """The exact p-values for equal sample sizes, by the reflection principle.

    For ``n1 == n2 == n`` the reflection principle gives the series
    ``P(D >= h / n) = 2 * sum_k (-1)**(k + 1) * C(2n, n - k h) / C(2n, n)`` (k >= 1, k h <= n);
    the ratios are products ``prod_{t < k h} (n - t) / (n + 1 + t)``, summed as logarithms.
    """
    t = np.arange(n, dtype=np.float64)
    log_ratio = np.concatenate(([0.0], np.cumsum(np.log(n - t) - np.log(n + 1 + t))))
    out = np.empty(len(h))
    for i, step in enumerate(h.tolist()):
        k = np.arange(1, n // step + 1)
        signs = np.where(k % 2 == 1, 1.0, -1.0)
        out[i] = 2.0 * float(np.sum(signs * np.exp(log_ratio[k * step])))
    result: np.ndarray = np.clip(out, 0.0, 1.0)
    return result


def _exit_probability(q: int, n1: int, n2: int) -> float:
    """:func:`_exit_probabilities` for one boundary, with the band's ends as plain integers."""
    total = n1 + n2
    ar = np.arange(n1 + 2, dtype=np.float64)
    to_i = n1 - ar
    lo = hi = 0
    mass = np.ones(1)
    exited = 0.0
    for k in range(1, total + 1):
        mass /= total - k + 1
        arrived = np.zeros(hi - lo + 2)
        arrived[1:] = mass * to_i[lo : hi + 1]
        arrived[:-1] += mass * (ar[lo : hi + 1] + (n2 - k + 1))
        first = max((k * n1 - q) // total + 1, lo, k - n2)
        last = min((k * n1 + q - 1) // total, hi + 1, n1)
        if first > last:
            return min(exited + float(arrived.sum()), 1.0)
        exited += float(arrived[: first - lo].sum() + arrived[last - lo + 1 :].sum())
        mass = arrived[first - lo : last - lo + 1]
        lo, hi = first, last
    return min(max(exited, 0.0), 1.0)


def _exit_probabilities(q: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """For each boundary ``|i * n2 - j * n1| >= q[c]``, the probability a random path touches it.

    That is, ``|i * (n1 + n2) - k * n1| >= q`` on anti-diagonal ``k = i + j``.

    A column's band moves by at most one point per diagonal, so its mass can only land just
    outside it, at ``first - 1`` or ``last + 1``: those two points are all that exits.
    """
    total = n1 + n2
    ar = np.arange(n1 + 2, dtype=np.float64)
    to_i = n1 - ar  # from (i, .) the next value is from sample 1 in n1 - i of the paths left
    rows = np.arange(len(q))
    lo = hi = 0  # the points of the previous anti-diagonal some column still counts as inside
    mass = np.ones((len(q), 1))  # per column: P(at the point, never touched the boundary)
    exited = np.zeros(len(q))
    for k in range(1, total + 1):
        mass /= total - k + 1
        up = mass * to_i[lo : hi + 1]  # to (i + 1, k - 1 - i)
        right = mass * (ar[lo : hi + 1] + (n2 - k + 1))  # to (i, k - i): n2 - j values left
        arrived = np.empty((len(q), hi - lo + 2))  # points lo .. hi + 1 of diagonal k
        arrived[:, 0] = right[:, 0]
        np.add(up[:, :-1], right[:, 1:], out=arrived[:, 1:-1])
        arrived[:, -1] = up[:, -1]
        first = np.maximum((k * n1 - q) // total + 1, max(lo, k - n2)) - lo
        last = np.minimum((k * n1 + q - 1) // total, min(hi + 1, n1)) - lo
        for edge, ok in ((first - 1, first >= 1), (last + 1, last + 1 <= hi - lo + 1)):
            at = rows[ok], edge[ok]
            exited[ok] += arrived[at]
            arrived[at] = 0.0
        empty = first > last
        if empty.any():
            exited[empty] += arrived[empty].sum(axis=1)
            arrived[empty] = 0.0
            if empty.all():
                break
        a, b = int(first[~empty].min()), int(last[~empty].max())
        mass = arrived[:, a : b + 1]
        lo, hi = lo + a, lo + b
    result: np.ndarray = np.clip(exited, 0.0, 1.0)
    return result
