"""Exact KS and 1-Wasserstein without sorting the samples: a fine histogram, refined where needed.

For a block of columns (``(k, n)`` arrays, NaN for missing) every value is placed in one of
up to ``FINE_BINS`` bins per column (equal width between the 0.1% and 99.9% quantiles of a strided
subsample, plus two outer bins up to the minimum and maximum) with one multiply and one
``bincount``: linear time, vectorised across the block.

The empirical CDFs are then known exactly at every bin boundary, and inside bin ``i`` the
difference ``F_ref - F_cur`` stays within ``[d_i - c_i, d_i + r_i]`` (``d_i`` its value at the
bin's left edge, ``r_i``/``c_i`` the bin's shares). So:

- KS: the largest boundary difference is attained at a data point, a lower bound ``D_low`` on
  ``D``; only bins whose bound exceeds ``D_low`` can hold the maximum. Their values (few) are
  sorted and merged exactly.
- Wasserstein-1: where ``F_ref - F_cur`` cannot change sign inside a bin, the integral of its
  absolute value is the absolute value of its integral, which per-bin counts and sums give
  exactly; the bins where it may change sign are merged exactly like the KS candidates.

Both statistics are therefore exact (up to floating-point rounding), whatever the data; data that
defeats the histogram (everything in a few bins) only makes more bins exact ones, i.e. slower.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FINE_BINS", "ks_wasserstein"]

FINE_BINS = 1 << 17
SUBSAMPLE = 20_000


def _range(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row 0.1% / 99.9% quantiles of a strided subsample of both samples."""
    import numpy as np

    step_r = max(1, ref.shape[1] // SUBSAMPLE)
    step_c = max(1, cur.shape[1] // SUBSAMPLE)
    sample = np.concatenate([ref[:, ::step_r], cur[:, ::step_c]], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing rows
        lo, hi = np.nanquantile(sample, [0.001, 0.999], axis=1)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    return lo, hi


def _bin(
    values: np.ndarray, lo: np.ndarray, inv_width: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift *values* in place to ``values - lo``; return the flat bin index per value
    (row * (bins + 1) + bin; NaN -> the row's sentinel ``bins``), counts and sums per bin."""
    import numpy as np

    k = values.shape[0]
    values -= lo[:, None]
    position = values * inv_width[:, None]
    np.floor(position, out=position)
    np.clip(position, -1, bins - 2, out=position)
    position += 1
    missing = np.isnan(values)
    any_missing = bool(missing.any())
    if any_missing:
        position[missing] = bins
    # intp, not int32: bincount and fancy indexing would convert a copy each time.
    flat = position.astype(np.intp)
    del position
    flat += (np.arange(k, dtype=np.intp) * (bins + 1))[:, None]
    if any_missing:
        values[missing] = 0.0
    size = k * (bins + 1)
    counts = np.bincount(flat.ravel(), minlength=size).reshape(k, bins + 1)[:, :bins]
    sums = np.bincount(flat.ravel(), weights=values.ravel(), minlength=size)
    return flat, counts.astype(np.float64), sums.reshape(k, bins + 1)[:, :bins]


def ks_wasserstein(ref: np.ndarray, cur: np.ndarray) -> dict[str, np.ndarray]:
    """Exact KS ``D``, 1-Wasserstein and moments for each row of a block (arrays are modified).

    Returns ``(k,)`` arrays ``ks``, ``wasserstein``, ``n_ref``, ``n_cur``, ``mean_ref``,
    ``std_ref``, ``std_cur``, ``min``, ``max``, and ``ref_cum``/``cur_cum`` (cumulative counts at
    the fine bins' right edges, ``(k, bins)``) with ``right_edges`` (their values).
    """
    import numpy as np

    # About 16 values per bin, between 1024 and FINE_BINS bins (any partition keeps it exact).
    wanted = (ref.shape[1] + cur.shape[1]) // 16
    bins = int(min(FINE_BINS, max(1024, 1 << max(wanted, 1).bit_length())))
    k = ref.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.fmin(np.nanmin(ref, axis=1), np.nanmin(cur, axis=1))
        high = np.fmax(np.nanmax(ref, axis=1), np.nanmax(cur, axis=1))
    lo, hi = _range(ref, cur)
    width = (hi - lo) / (bins - 2)
    width = np.where(width > 0, width, 1.0)
    inv = 1.0 / width
    flat_r, counts_r, sums_r = _bin(ref, lo, inv, bins)
    flat_c, counts_c, sums_c = _bin(cur, lo, inv, bins)
    m1 = counts_r.sum(axis=1)
    m2 = counts_c.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv1, inv2 = 1.0 / m1, 1.0 / m2
        mean_t_r = sums_r.sum(axis=1) * inv1
        var_r = np.einsum("ij,ij->i", ref, ref) * inv1 - mean_t_r**2
        mean_t_c = sums_c.sum(axis=1) * inv2
        var_c = np.einsum("ij,ij->i", cur, cur) * inv2 - mean_t_c**2
    # Bin boundaries in shifted units: bin 0 = [low, lo), bin b = [(b-1)w, bw), last up to high.
    b = np.arange(bins, dtype=np.float64)
    left = (b[None, :] - 1) * width[:, None]
    right = b[None, :] * width[:, None]
    left[:, 0] = np.minimum(low - lo, 0.0)
    right[:, 0] = 0.0
    right[:, -1] = np.maximum(high - lo, left[:, -1])
    cum_r = np.cumsum(counts_r, axis=1)
    cum_c = np.cumsum(counts_c, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = counts_r * inv1[:, None]
        c = counts_c * inv2[:, None]
        d_right = cum_r * inv1[:, None] - cum_c * inv2[:, None]
    d_left = np.concatenate([np.zeros((k, 1)), d_right[:, :-1]], axis=1)
    d_low = np.abs(d_right).max(axis=1)
    occupied = (counts_r > 0) | (counts_c > 0)
    may_exceed = np.maximum(np.abs(d_left + r), np.abs(d_left - c)) > d_low[:, None]
    may_cross = (d_left - c < 0) & (d_left + r > 0)
    exact = occupied & (may_exceed | may_cross)
    # Analytic W1 where the sign is fixed: |integral of F_ref - F_cur| over the bin.
    span = right - left
    with np.errstate(invalid="ignore", divide="ignore"):
        integral = d_left * span + (
            (counts_r * right - sums_r) * inv1[:, None]
            - (counts_c * right - sums_c) * inv2[:, None]
        )
    w1 = np.where(exact, 0.0, np.abs(integral)).sum(axis=1)
    ks = d_low.copy()
    if exact.any():
        _refine(
            ref,
            cur,
            flat_r,
            flat_c,
            exact,
            (d_left, d_right),
            left,
            right,
            inv1,
            inv2,
            ks,
            w1,
            bins,
        )
    return {
        "ks": ks,
        "wasserstein": w1,
        "n_ref": m1.astype(np.int64),
        "n_cur": m2.astype(np.int64),
        "mean_ref": mean_t_r + lo,
        "std_ref": np.sqrt(np.maximum(var_r, 0.0)),
        "std_cur": np.sqrt(np.maximum(var_c, 0.0)),
        "min": low,
        "max": high,
        "ref_cum": cum_r,
        "cur_cum": cum_c,
        "right_edges": right + lo[:, None],
    }


def _refine(
    ref: np.ndarray,
    cur: np.ndarray,
    flat_r: np.ndarray,
    flat_c: np.ndarray,
    exact: np.ndarray,
    differences: tuple[np.ndarray, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
    inv1: np.ndarray,
    inv2: np.ndarray,
    ks: np.ndarray,
    w1: np.ndarray,
    bins: int,
) -> None:
    """Merge the values of the *exact* bins (both samples) and update *ks* and *w1* in place."""
    import numpy as np

    k = exact.shape[0]
    lut = np.zeros(k * (bins + 1), dtype=bool)
    lut.reshape(k, bins + 1)[:, :bins] = exact
    picks_r = np.flatnonzero(lut[flat_r.ravel()])
    picks_c = np.flatnonzero(lut[flat_c.ravel()])
    key = np.concatenate([flat_r.ravel()[picks_r], flat_c.ravel()[picks_c]])
    value = np.concatenate([ref.ravel()[picks_r], cur.ravel()[picks_c]])
    d_left, d_right = differences
    row = key // (bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.concatenate([inv1[row[: len(picks_r)]], -inv2[row[len(picks_r) :]]])
    # Bins holding a single distinct value (discrete data): F jumps once, at that value.
    low = np.full(k * (bins + 1), np.inf)
    high = np.full(k * (bins + 1), -np.inf)
    np.minimum.at(low, key, value)
    np.maximum.at(high, key, value)
    point = low == high
    keys = np.flatnonzero(point)
    if len(keys):
        p_row = keys // (bins + 1)
        p_bin = keys - p_row * (bins + 1)
        v = low[keys]
        area = np.abs(d_left[p_row, p_bin]) * np.maximum(v - left[p_row, p_bin], 0.0) + np.abs(
            d_right[p_row, p_bin]
        ) * np.maximum(right[p_row, p_bin] - v, 0.0)
        w1 += np.bincount(p_row, weights=area, minlength=k)
        keep = ~point[key]
        key, value, weight, row = key[keep], value[keep], weight[keep], row[keep]
        if not len(key):
            return
    order = np.lexsort((value, key))
    key, value, weight, row = key[order], value[order], weight[order], row[order]
    local = key - row * (bins + 1)
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    end = np.ones(len(key), dtype=bool)
    end[:-1] = start[1:]
    running = np.cumsum(weight)
    first = np.flatnonzero(start)
    base = (running - weight)[first]
    group = np.cumsum(start) - 1
    diff = d_left[row, local] + running - base[group]
    tie_end = end.copy()
    tie_end[:-1] |= value[1:] != value[:-1]
    present, row_start = np.unique(row, return_index=True)  # rows are sorted
    best = np.maximum.reduceat(np.where(tie_end, np.abs(diff), 0.0), row_start)
    ks[present] = np.maximum(ks[present], best)
    # W1 inside the exact bins: left edge -> first value -> ... -> last value -> right edge.
    nxt = np.empty_like(value)
    nxt[:-1] = value[1:]
    nxt[end] = right[row[end], local[end]]
    area = np.abs(diff) * np.maximum(nxt - value, 0.0)
    head = np.abs(d_left[row[start], local[start]]) * np.maximum(
        value[start] - left[row[start], local[start]], 0.0
    )
    w1 += np.bincount(row, weights=area, minlength=k)
    w1 += np.bincount(row[start], weights=head, minlength=k)
    # Exact bins without values on either side cannot occur (they are occupied by definition).
