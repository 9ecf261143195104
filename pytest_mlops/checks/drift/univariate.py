"""Univariate drift statistics, vectorised across columns.

Numeric columns arrive as blocks of shape ``(columns, rows)`` and every statistic is computed for
the whole block at once: the Kolmogorov–Smirnov statistic ``D`` and its p-value, the 1-Wasserstein
distance, and the population stability index (PSI) on reference deciles. Categorical columns
arrive as count matrices ``(columns, categories)`` (zero-padded): chi-square homogeneity test,
Jensen–Shannon distance and PSI.

The exact path (:func:`numeric_block`) merges the two sorted samples of every column of a block
with one stable argsort (timsort merges two sorted runs in linear time), so ``D`` and the
Wasserstein distance are exact, equal to ``scipy.stats.ks_2samp`` and
``scipy.stats.wasserstein_distance`` up to rounding. Missing values (NaN) are left out per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = [
    "PSI_EPS",
    "Correction",
    "adjust_pvalues",
    "batched_searchsorted",
    "chi2_homogeneity",
    "jensen_shannon",
    "ks_pvalue",
    "numeric_block",
    "psi",
]

Correction = Literal["bh", "bonferroni", "none"]
PSI_EPS = 1e-4
"""Shares are floored at this value before PSI's logarithm (Evidently's convention)."""
EXACT_KS_MAX_N = 10_000
"""Like scipy's ``ks_2samp(method="auto")``: exact p-values up to this sample size."""
PSI_BINS = 10


def batched_searchsorted(
    sorted_rows: np.ndarray, needles: np.ndarray, side: Literal["left", "right"] = "left"
) -> np.ndarray:
    """``np.searchsorted`` row by row, for every row at once.

    Parameters
    ----------
    sorted_rows:
        ``(k, n)``, each row sorted ascending (NaN last).
    needles:
        ``(k, m)`` values to place in the matching row.
    side:
        As in ``np.searchsorted``.

    Returns
    -------
    ``(k, m)`` int64 insertion indices. A vectorised bisection: ``log2(n)`` passes over ``k * m``
    needles, no Python loop over rows.
    """
    k, n = sorted_rows.shape
    lo = np.zeros(needles.shape, dtype=np.int64)
    hi = np.full(needles.shape, n, dtype=np.int64)
    rows = np.arange(k)[:, None]
    for _ in range(max(1, int(n).bit_length())):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        value = sorted_rows[rows, np.minimum(mid, n - 1)]
        with np.errstate(invalid="ignore"):
            # NaN sorts last: it is greater than every needle.
            go_right = (value < needles) if side == "left" else (value <= needles)
        go_right &= ~np.isnan(value) | np.isnan(needles)
        lo = np.where(active & go_right, mid + 1, lo)
        hi = np.where(active & ~go_right, mid, hi)
    return lo


def numeric_block(
    ref: np.ndarray | Sequence[np.ndarray], cur: np.ndarray | Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Exact two-sample statistics for every row of a ``(k, n)`` block.

    *ref* ``(k, n1)`` and *cur* ``(k, n2)`` are float64, NaN for missing (2-D arrays, or ``k``
    rows each); they are read, not modified.
    ``D`` and the Wasserstein distance are exact (see :mod:`.exact`: a fine histogram refined
    where it cannot decide, no full sort).

    Returns
    -------
    A dict of ``(k,)`` arrays: ``n_ref``, ``n_cur`` (non-missing counts), ``ks`` (the KS ``D``),
    ``wasserstein`` (1-Wasserstein distance, in the column's units), ``psi`` (on reference
    deciles), ``std_ref``, ``std_cur``, ``mean_ref``, ``min``, ``max``; and ``psi_edges``
    ``(k, 9)``, ``ref_bins``/``cur_bins`` ``(k, 10)`` shares of the decile bins.
    """
    from pytest_mlops.checks.drift.exact import ks_wasserstein

    out = ks_wasserstein(ref, cur)
    m1, m2 = out["n_ref"], out["n_cur"]
    ref_cum, cur_cum, right = out.pop("ref_cum"), out.pop("cur_cum"), out.pop("right_edges")
    levels = np.arange(1, PSI_BINS) / PSI_BINS
    targets = np.floor(levels[None, :] * np.maximum(m1 - 1, 0)[:, None]) + 1
    index = np.minimum(batched_searchsorted(ref_cum, targets, "left"), right.shape[1] - 1)
    rows = np.arange(len(m1))[:, None]
    edges = right[rows, index]
    ref_le = ref_cum[rows, index]
    cur_le = cur_cum[rows, index]
    ref_bins = _bin_shares(ref_le, m1.astype(float))
    cur_bins = _bin_shares(cur_le, m2.astype(float))
    out.update(
        psi=psi(ref_bins, cur_bins),
        psi_edges=edges,
        ref_bins=ref_bins,
        cur_bins=cur_bins,
    )
    return out


def _bin_shares(le: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Shares of the bins ``(-inf, e1], (e1, e2], ..., (e9, inf)`` from cumulative counts."""
    cumulative = np.concatenate([np.zeros((le.shape[0], 1)), le, total[:, None]], axis=1)
    counts = np.minimum(np.diff(cumulative, axis=1), total[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares: np.ndarray = counts / total[:, None]
    return shares


def psi(ref_shares: np.ndarray, cur_shares: np.ndarray, eps: float = PSI_EPS) -> np.ndarray:
    """Population stability index of each row: ``sum((c - r) * ln(c / r))``, shares floored."""
    r = np.maximum(ref_shares, eps)
    c = np.maximum(cur_shares, eps)
    value: np.ndarray = ((c - r) * np.log(c / r)).sum(axis=-1)
    return value


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (natural log, like ``scipy.spatial.distance.jensenshannon``)."""
    p = ref_counts / ref_counts.sum(axis=-1, keepdims=True)
    q = cur_counts / cur_counts.sum(axis=-1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    value: np.ndarray = np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))
    return value


def chi2_homogeneity(
    ref_counts: np.ndarray, cur_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity on the ``2 x K`` table of each row.

    Same as ``scipy.stats.chi2_contingency`` (with its Yates correction when there is one degree
    of freedom) on the table with its empty categories dropped.

    Returns
    -------
    ``(statistic, p_value, dof)``, each ``(k,)``. A row with one category has p = 1.
    """
    from scipy import stats

    observed = np.stack([ref_counts, cur_counts], axis=1).astype(float)  # (k, 2, K)
    column_total = observed.sum(axis=1, keepdims=True)
    row_total = observed.sum(axis=2, keepdims=True)
    total = observed.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = row_total * column_total / total
    present = column_total[:, 0, :] > 0
    dof = np.maximum(present.sum(axis=1) - 1, 0)
    deviation = np.abs(observed - expected)
    yates = (dof == 1)[:, None, None]
    deviation = np.where(yates, np.maximum(deviation - 0.5, 0.0), deviation)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, deviation**2 / expected, 0.0)
    statistic = terms.sum(axis=(1, 2))
    p = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    return statistic, p, dof


def ks_pvalue(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Two-sided two-sample KS p-values, as ``scipy.stats.ks_2samp(method="auto")`` computes them.

    Exact (our lattice-path routine, :mod:`~pytest_mlops.checks.drift.ks_exact`, tested against
    scipy's) when both samples have at most 10,000 values,
    otherwise Smirnov's asymptotic distribution ``kstwo.sf(d, round(n1 * n2 / (n1 + n2)))``;
    in its tail (``n d^2 >= 2.2``, p < 0.025) scipy evaluates ``2 * smirnov(n, d)``, which costs
    hundreds of milliseconds per column at a million rows: there we use its first-order
    expansion, which agrees with it to better than 4e-6 for ``n >= 5000``.
    """
    from scipy import stats

    from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalues

    d = np.asarray(d, dtype=float)
    n1 = np.asarray(n1, dtype=np.int64)
    n2 = np.asarray(n2, dtype=np.int64)
    p = np.full(d.shape, np.nan)
    ok = (n1 > 0) & (n2 > 0) & np.isfinite(d)
    big = np.maximum(n1, n2).astype(float)
    small = np.minimum(n1, n2).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = np.round(big * small / (big + small))
    asymptotic = ok & (np.maximum(n1, n2) > EXACT_KS_MAX_N)
    with np.errstate(invalid="ignore"):
        nx2 = en * d**2
    # Where scipy evaluates 2 * smirnov(n, d) (n * d**2 >= 2.2; hundreds of ms each for large n),
    # the first-order expansion 2 exp(-2 n d^2) (1 - 2d/3) agrees with it to < 4e-6 for n >= 5000.
    tail = asymptotic & (en >= 5000) & (nx2 >= 2.2)
    p[tail] = np.where(nx2[tail] >= 370, 0.0, 2 * np.exp(-2 * nx2[tail]) * (1 - 2 * d[tail] / 3))
    rest = asymptotic & ~tail
    if rest.any():
        p[rest] = stats.kstwo.sf(d[rest], en[rest])
    exact = np.flatnonzero(ok & ~asymptotic)
    for sizes in {(int(n1[i]), int(n2[i])) for i in exact}:  # one lattice pass per pair of sizes
        same = exact[(n1[exact] == sizes[0]) & (n2[exact] == sizes[1])]
        p[same] = ks_2samp_exact_pvalues(d[same], *sizes)
    result: np.ndarray = np.clip(p, 0.0, 1.0)
    return result


def adjust_pvalues(p: np.ndarray, method: Correction) -> np.ndarray:
    """Multiple-testing correction across columns; NaN p-values are left out and stay NaN.

    ``"bonferroni"`` multiplies by the number of tests (capped at 1); ``"bh"`` gives
    Benjamini–Hochberg adjusted p-values (the step-up procedure's q-values); ``"none"`` returns
    *p* unchanged.
    """
    p = np.asarray(p, dtype=float)
    out: np.ndarray = p.copy()
    finite = np.isfinite(p)
    m = int(finite.sum())
    if method == "none" or m == 0:
        return out
    values = p[finite]
    if method == "bonferroni":
        out[finite] = np.minimum(values * m, 1.0)
        return out
    order = np.argsort(values)
    ranked = values[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    out[finite] = adjusted
    return out
