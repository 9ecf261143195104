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


def _jit(function: Any) -> Any:
    """*function* compiled on first call, cached on disk where numba finds a writable place."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "no locator available": compiled in memory, once per process
        return numba.njit(nogil=True)(function)


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


#: a bin holding more values than this is sorted with numpy's sort, not by insertion
_INSERTION = 32


@_jit
def _sort(values: Any, lo: int, hi: int) -> None:
    """``values[lo:hi]`` sorted in place: by insertion for the few values a bin usually holds."""
    if hi - lo > _INSERTION:
        values[lo:hi].sort()
        return
    for i in range(lo + 1, hi):
        v = values[i]
        j = i - 1
        while j >= lo and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@_jit
def _group(key: Any, value: Any, bins: int) -> tuple[Any, Any]:
    """*value* grouped by bin (a counting sort): the groups, and where bin ``b``'s starts."""
    start = np.zeros(bins + 1, np.int64)
    for k in key:
        start[k + 1] += 1
    for b in range(bins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    grouped = np.empty(key.size, np.float64)
    for i in range(key.size):
        grouped[fill[key[i]]] = value[i]
        fill[key[i]] += 1
    return grouped, start


@_jit
def walk(
    picked_ref: tuple[Any, Any],
    picked_cur: tuple[Any, Any],
    inv: tuple[float, float],
    left: Any,
    right: Any,
    d_left: Any,
) -> Any:
    """KS and the W1 area of the bins holding the picked values: ``F_ref - F_cur`` walked in each.

    *picked_ref* and *picked_cur* are ``(bins, values)``. Each sample's values are grouped by bin
    and sorted within it; the two are merged from the bin's left edge, where the difference is
    ``d_left``. The difference is computed from the counts so far (*inv* holds ``1/n_ref`` and
    ``1/n_cur``), not summed step by step, so a bin of a million values is as exact as one of
    ten. KS is read after each distinct value, the area between consecutive values and out to
    the bin's right edge.
    """
    bins = left.size
    ref, start_r = _group(picked_ref[0], picked_ref[1], bins)
    cur, start_c = _group(picked_cur[0], picked_cur[1], bins)
    ks = 0.0
    area = 0.0
    for b in range(bins):
        i, end_r = start_r[b], start_r[b + 1]
        j, end_c = start_c[b], start_c[b + 1]
        if i == end_r and j == end_c:
            continue
        _sort(ref, i, end_r)
        _sort(cur, j, end_c)
        v = min(ref[i] if i < end_r else np.inf, cur[j] if j < end_c else np.inf)
        area += abs(d_left[b]) * max(v - left[b], 0.0)
        n_ref = 0
        n_cur = 0
        while i < end_r or j < end_c:
            while i < end_r and ref[i] == v:
                i += 1
                n_ref += 1
            while j < end_c and cur[j] == v:
                j += 1
                n_cur += 1
            d = d_left[b] + (n_ref * inv[0] - n_cur * inv[1])
            ks = max(ks, abs(d))
            nxt = min(ref[i] if i < end_r else np.inf, cur[j] if j < end_c else np.inf)
            if nxt == np.inf:
                nxt = right[b]
            area += abs(d) * max(nxt - v, 0.0)
            v = nxt
    return ks, area
