"""Exact KS and 1-Wasserstein without sorting the samples: a fine histogram, refined where needed.

Columns are processed one at a time (a column's working set stays in the CPU's cache; a block of
columns would not); with the compiled passes of :mod:`.kernel`, a column per thread, on as many
threads as the process may use CPUs. Every value is placed in one of up to ``FINE_BINS`` bins
(equal width between the 0.1% and 99.9% quantiles of a strided subsample, plus two outer bins
down to the minimum and up to the maximum) with a few passes and a count: linear time.

The empirical CDFs are then known exactly at every bin boundary, and inside bin ``i`` the
difference ``F_ref - F_cur`` stays within ``[d_i - c_i, d_i + r_i]`` (``d_i`` its value at the
bin's left edge, ``r_i``/``c_i`` the bin's shares). So:

- KS: the largest boundary difference is attained at a data point, a lower bound ``D_low`` on
  ``D``; only bins whose bound exceeds ``D_low`` can hold the maximum. Their values (few) are
  sorted and merged exactly.
- Wasserstein-1: where ``F_ref - F_cur`` cannot change sign inside a bin, the integral of its
  absolute value is the sign times the integral, and the sum of those signed integrals over all
  such bins needs only the per-bin counts and one weighted sum of the values; the bins where it
  may change sign are merged exactly like the KS candidates. A bin holding a single distinct value
  (discrete data) is exact without sorting: ``F`` jumps once, at that value.

Both statistics are therefore exact (up to floating-point rounding), whatever the data; data that
defeats the histogram (everything in a few bins) only makes more bins exact ones, i.e. slower.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlops.checks.drift.kernel import Binned, bin_values, for_size, signed_sum, threads_for

__all__ = ["FINE_BINS", "ks_wasserstein"]

FINE_BINS = 1 << 17
SUBSAMPLE = 4096
VALUES_PER_BIN = 32


def fine_bins(n_values: int) -> int:
    """About 32 values per bin, a power of two between 1024 and ``FINE_BINS``."""
    wanted = n_values // VALUES_PER_BIN
    return int(min(FINE_BINS, max(1024, 1 << max(wanted, 1).bit_length())))


def ks_wasserstein(
    ref: np.ndarray | Sequence[np.ndarray], cur: np.ndarray | Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Exact KS ``D``, 1-Wasserstein and moments for each row of a block (read, not modified).

    *ref* ``(k, n1)`` and *cur* ``(k, n2)`` are float64 with NaN for missing values: 2-D arrays
    or ``k`` rows each (views of a frame's columns, say).

    Returns ``(k,)`` arrays ``ks``, ``wasserstein``, ``n_ref``, ``n_cur``, ``mean_ref``,
    ``std_ref``, ``std_cur``, ``min``, ``max``, and ``ref_cum``/``cur_cum`` (cumulative counts at
    the fine bins' right edges, ``(k, bins)``) with ``right_edges`` (their values).
    """
    k = len(ref)
    bins = fine_bins((len(ref[0]) + len(cur[0])) if k else 0)
    scalars = ("ks", "wasserstein", "n_ref", "n_cur", "mean_ref", "std_ref", "std_cur")
    out = {name: np.zeros(k) for name in (*scalars, "min", "max")}
    out["ref_cum"] = np.zeros((k, bins))
    out["cur_cum"] = np.zeros((k, bins))
    out["right_edges"] = np.zeros((k, bins))

    def one(i: int) -> _Column:
        return _column(_present(ref[i]), _present(cur[i]), bins)

    workers = threads_for(k, (len(ref[0]) + len(cur[0])) if k else 0)
    if workers > 1:  # the compiled passes release the GIL, and so do numpy's on whole arrays
        with ThreadPoolExecutor(workers, thread_name_prefix="pytest-mlops-drift") as pool:
            columns = list(pool.map(one, range(k)))
    else:
        columns = [one(i) for i in range(k)]
    for i, column in enumerate(columns):
        for name in scalars:
            out[name][i] = getattr(column, name)
        out["min"][i], out["max"][i] = column.low, column.high
        out["ref_cum"][i], out["cur_cum"][i] = column.ref_cum, column.cur_cum
        out["right_edges"][i] = column.right_edges
    out["n_ref"] = out["n_ref"].astype(np.int64)
    out["n_cur"] = out["n_cur"].astype(np.int64)
    return out


def _present(values: np.ndarray) -> np.ndarray:
    """The finite values (one pass to learn that there is nothing to drop, the usual case)."""
    if math.isfinite(float(np.add.reduce(values))):
        return values
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


@dataclass
class _Column:
    ks: float
    wasserstein: float
    n_ref: int
    n_cur: int
    mean_ref: float
    std_ref: float
    std_cur: float
    low: float
    high: float
    ref_cum: np.ndarray
    cur_cum: np.ndarray
    right_edges: np.ndarray


@dataclass
class _Side:
    """One sample on the fine grid: its bins' counts and the moments of the shifted values."""

    binned: Binned
    counts: np.ndarray
    n: int
    mean: float  # of the shifted values
    var: float


@dataclass
class _Grid:
    """The fine grid's boundaries (shifted units) and the CDF differences at them."""

    left: np.ndarray
    right: np.ndarray
    d_left: np.ndarray
    d_right: np.ndarray
    inv1: float
    inv2: float


def _range(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """0.1% / 99.9% quantiles of a strided subsample of both samples."""
    step_r = max(1, len(ref) // SUBSAMPLE)
    step_c = max(1, len(cur) // SUBSAMPLE)
    sample = np.sort(np.concatenate([ref[::step_r], cur[::step_c]]))
    last = len(sample) - 1
    return float(sample[round(0.001 * last)]), float(sample[round(0.999 * last)])


def _side(values: np.ndarray, lo: float, inv: float, bins: int, kernel: Any | None) -> _Side:
    """*values* binned (see :mod:`.kernel`): bin 0 below ``lo``, the last above."""
    n = len(values)
    binned = bin_values(values, lo, inv, bins, kernel)
    # rounding may move a value on a boundary to the next bin, which keeps the assignment
    # monotone (all the method needs)
    mean = binned.total / n
    var = max(binned.total_sq / n - mean * mean, 0.0)
    return _Side(binned, binned.counts, n, mean, var)


def _column(ref: np.ndarray, cur: np.ndarray, bins: int) -> _Column:

    n1, n2 = len(ref), len(cur)
    if n1 == 0 or n2 == 0:
        return _empty(ref, cur, bins)
    lo, hi = _range(ref, cur)
    width = (hi - lo) / (bins - 2)
    width = width if width > 0 else 1.0
    kernel = for_size(n1 + n2)
    r = _side(ref, lo, 1.0 / width, bins, kernel)
    c = _side(cur, lo, 1.0 / width, bins, kernel)
    low = min(r.binned.low, c.binned.low)
    high = max(r.binned.high, c.binned.high)
    grid = _grid(r, c, bins, width, low - lo, high - lo)
    ks, w1 = _statistics(r, c, grid, bins)
    return _Column(
        ks=ks,
        wasserstein=w1,
        n_ref=n1,
        n_cur=n2,
        mean_ref=r.mean + lo,
        std_ref=math.sqrt(r.var),
        std_cur=math.sqrt(c.var),
        low=low,
        high=high,
        ref_cum=np.cumsum(r.counts).astype(np.float64),
        cur_cum=np.cumsum(c.counts).astype(np.float64),
        right_edges=grid.right + lo,
    )


def _empty(ref: np.ndarray, cur: np.ndarray, bins: int) -> _Column:
    """A side without values: counts only (the verdict leaves the column out)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        both = np.concatenate([ref, cur])
        low = float(both.min()) if len(both) else math.nan
        high = float(both.max()) if len(both) else math.nan
        mean = float(ref.mean()) if len(ref) else math.nan
        std_r = float(ref.std()) if len(ref) else 0.0
        std_c = float(cur.std()) if len(cur) else 0.0
    zeros = np.zeros(bins)
    return _Column(0.0, 0.0, len(ref), len(cur), mean, std_r, std_c, low, high, zeros, zeros, zeros)


def _grid(r: _Side, c: _Side, bins: int, width: float, low: float, high: float) -> _Grid:
    """Boundaries in shifted units: bin 0 = [low, 0), bin b = [(b-1)w, bw), the last up to high."""
    b = np.arange(bins, dtype=np.float64)
    left = (b - 1) * width
    right = b * width
    left[0] = min(low, 0.0)
    right[0] = 0.0
    right[-1] = max(high, left[-1])
    inv1, inv2 = 1.0 / r.n, 1.0 / c.n
    d_right = np.cumsum(r.counts) * inv1 - np.cumsum(c.counts) * inv2
    d_left = np.empty_like(d_right)
    d_left[0] = 0.0
    d_left[1:] = d_right[:-1]
    return _Grid(left, right, d_left, d_right, inv1, inv2)


def _statistics(r: _Side, c: _Side, grid: _Grid, bins: int) -> tuple[float, float]:
    """KS and W1: analytic where the sign of ``F_ref - F_cur`` is fixed in a bin, exact elsewhere."""
    share_r = r.counts * grid.inv1
    share_c = c.counts * grid.inv2
    upper = grid.d_left + share_r  # F_ref - F_cur inside the bin stays in [lower, upper]
    lower = grid.d_left - share_c
    d_low = float(np.abs(grid.d_right).max())
    # An empty bin has lower == upper == d_left, within D_low and of one sign: never exact.
    exact = (upper > d_low) | (lower < -d_low) | ((lower < 0) & (upper > 0))
    # Where the sign is fixed, |integral| = sign * integral over the bin; summed over those bins
    # the values enter through one weighted sum per sample. Exact bins get the weight 0.
    sign = np.where(lower >= 0, 1.0, -1.0)
    sign[exact] = 0.0
    per_bin = grid.d_left * (grid.right - grid.left)
    per_bin += (share_r - share_c) * grid.right
    w1 = float(np.einsum("i,i->", sign, per_bin))
    dot_r, key_r, value_r = signed_sum(r.binned, sign)
    dot_c, key_c, value_c = signed_sum(c.binned, sign)
    w1 -= dot_r * grid.inv1
    w1 += dot_c * grid.inv2
    ks = d_low
    if exact.any():
        picked = ((key_r, value_r), (key_c, value_c))
        ks, extra = _refine(picked, exact, grid, d_low, bins, r.binned.kernel)
        w1 += extra
    return ks, max(w1, 0.0)


def _refine(
    picked: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    exact: np.ndarray,
    grid: _Grid,
    d_low: float,
    bins: int,
    kernel: Any | None,
) -> tuple[float, float]:
    """KS and the W1 area of the *exact* bins, from their values.

    *picked* holds ``(bins, shifted values)`` of the reference, then of the current sample.
    """
    if kernel is not None:  # grouped by bin, sorted within each, merged and walked
        inv = (grid.inv1, grid.inv2)
        ks, area = kernel.walk(*picked, inv, grid.left, grid.right, grid.d_left)
        return max(d_low, float(ks)), float(area)
    picked_r, picked_c = picked
    key = np.concatenate([picked_r[0], picked_c[0]])
    value = np.concatenate([picked_r[1], picked_c[1]])
    weight = np.empty(len(key))
    weight[: len(picked_r[0])] = grid.inv1
    weight[len(picked_r[0]) :] = -grid.inv2
    # Bins holding one distinct value: F jumps once there, no sorting needed.
    first = np.empty(bins)
    first[key] = value
    mixed = np.zeros(bins, dtype=bool)
    mixed[key[value != first[key]]] = True
    point = exact & ~mixed
    area = 0.0
    if point.any():
        at = np.flatnonzero(point)
        v = first[at]
        area += float(
            (
                np.abs(grid.d_left[at]) * np.maximum(v - grid.left[at], 0.0)
                + np.abs(grid.d_right[at]) * np.maximum(grid.right[at] - v, 0.0)
            ).sum()
        )
        keep = mixed[key]
        key, value, weight = key[keep], value[keep], weight[keep]
    if not len(key):
        return d_low, area
    order = np.argsort(value)  # the bin grows with the value: sorted by bin too
    key, value, weight = key[order], value[order], weight[order]
    ks, walked = _walk(key, value, weight, grid)
    return max(d_low, ks), area + walked


def _walk(
    key: np.ndarray, value: np.ndarray, weight: np.ndarray, grid: _Grid
) -> tuple[float, float]:
    """Merge the sorted values of the mixed exact bins: KS at tie ends, W1 between values."""
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    end = np.ones(len(key), dtype=bool)
    end[:-1] = start[1:]
    running = np.cumsum(weight)
    first = np.flatnonzero(start)
    base = (running - weight)[first]
    group = np.cumsum(start) - 1
    diff = grid.d_left[key] + running - base[group]
    tie_end = end.copy()
    tie_end[:-1] |= value[1:] != value[:-1]
    ks = float(np.abs(diff[tie_end]).max())
    # W1 inside the bins: left edge -> first value -> ... -> last value -> right edge.
    nxt = np.empty_like(value)
    nxt[:-1] = value[1:]
    nxt[end] = grid.right[key[end]]
    area = float((np.abs(diff) * np.maximum(nxt - value, 0.0)).sum())
    head = np.abs(grid.d_left[key[start]]) * np.maximum(value[start] - grid.left[key[start]], 0.0)
    return ks, area + float(head.sum())
