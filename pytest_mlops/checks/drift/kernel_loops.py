"""The compiled loops of :mod:`.kernel` (numba; imported only where numba is installed).

Each function is one pass over a column, compiled on first use and cached by numba. The numpy
passes in :mod:`.kernel` and :mod:`.exact` are their reference: the tests run both on the same
data, boundary values included, and compare bins, counts and statistics.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["count", "signed", "walk"]

_jit = numba.njit(cache=True, nogil=True)

#: a bin holding more values than this is sorted with numpy's sort, not by insertion
_INSERTION = 48


@_jit
def _bin(v: float, lo: float, inv: float, top: float) -> tuple[float, int]:
    """``v - lo`` and its bin ``clip(floor((v - lo) * inv + 1), 0, top)``, no fused multiply-add."""
    s = v - lo
    p = s * inv
    p = p + 1.0
    if p < 0.0:
        p = 0.0
    elif p > top:
        p = top
    return s, int(p)


@_jit
def count(values: Any, lo: float, inv: float, bins: int) -> Any:
    """Counts per bin; sums of ``v - lo`` and its square; the smallest and largest value."""
    counts = np.zeros(bins, np.int64)
    top = float(bins - 1)
    total = 0.0
    total_sq = 0.0
    low = np.inf
    high = -np.inf
    for i in range(values.size):
        v = values[i]
        low = min(low, v)
        high = max(high, v)
        s, b = _bin(v, lo, inv, top)
        counts[b] += 1
        total += s
        total_sq += s * s
    return counts, total, total_sq, low, high


@_jit
def signed(values: Any, lo: float, inv: float, sign: Any, n_pick: int) -> Any:
    """``sum(sign[bin] * (v - lo))`` where the sign is not 0; bins and ``v - lo`` of the rest."""
    keys = np.empty(n_pick, np.intp)
    picked = np.empty(n_pick, np.float64)
    top = float(sign.size - 1)
    dot = 0.0
    j = 0
    for i in range(values.size):
        s, b = _bin(values[i], lo, inv, top)
        w = sign[b]
        if w == 0.0:
            keys[j] = b
            picked[j] = s
            j += 1
        else:
            dot += w * s
    return dot, keys, picked


@_jit
def _sort_pairs(value: Any, weight: Any, lo: int, hi: int) -> None:
    """``value[lo:hi]`` sorted in place, ``weight[lo:hi]`` along with it."""
    if hi - lo > _INSERTION:
        order = np.argsort(value[lo:hi]) + lo
        value[lo:hi] = value[order]
        weight[lo:hi] = weight[order]
        return
    for i in range(lo + 1, hi):
        v = value[i]
        w = weight[i]
        j = i - 1
        while j >= lo and value[j] > v:
            value[j + 1] = value[j]
            weight[j + 1] = weight[j]
            j -= 1
        value[j + 1] = v
        weight[j + 1] = w


@_jit
def walk(
    key: Any, value: Any, weight: Any, inv: tuple[float, float], left: Any, right: Any, d_left: Any
) -> Any:
    """KS and the W1 area of the bins holding the values: ``F_ref - F_cur`` walked in each bin.

    The values are grouped by bin (a counting sort) and sorted within each; the difference
    starts at the bin's left edge (``d_left``) and moves by each value's weight (``1/n_ref`` or
    ``-1/n_cur``, *inv* holds the two); it is computed from the counts so far, not summed, so
    that a bin of a million values is as exact as one of ten. KS is read at the last of equal
    values, the area between consecutive values and out to the bin's right edge.
    """
    bins = left.size
    start = np.zeros(bins + 1, np.int64)
    for k in key:
        start[k + 1] += 1
    for b in range(bins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    grouped = np.empty(key.size, np.float64)
    grouped_weight = np.empty(key.size, np.float64)
    for i in range(key.size):
        at = fill[key[i]]
        grouped[at] = value[i]
        grouped_weight[at] = weight[i]
        fill[key[i]] += 1
    ks = 0.0
    area = 0.0
    for b in range(bins):
        lo, hi = start[b], start[b + 1]
        if lo == hi:
            continue
        _sort_pairs(grouped, grouped_weight, lo, hi)
        d = d_left[b]
        area += abs(d) * max(grouped[lo] - left[b], 0.0)
        n_ref = 0
        n_cur = 0
        for j in range(lo, hi):
            v = grouped[j]
            if grouped_weight[j] > 0.0:
                n_ref += 1
            else:
                n_cur += 1
            d = d_left[b] + (n_ref * inv[0] - n_cur * inv[1])
            last = j + 1 == hi
            nxt = right[b] if last else grouped[j + 1]
            if last or nxt != v:
                ks = max(ks, abs(d))
            area += abs(d) * max(nxt - v, 0.0)
    return ks, area
