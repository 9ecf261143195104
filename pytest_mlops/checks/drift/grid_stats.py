"""The statistics of a column from two grid summaries: KS, 1-Wasserstein, deciles, error bounds.

What :meth:`~pytest_mlops.checks.drift.DriftProfile.compare` computes from the reference's and the
current data's counts on one grid (the bounds are explained in
:mod:`~pytest_mlops.checks.drift.profile`).
"""

from __future__ import annotations

import math

import numpy as np

from pytest_mlops.checks.drift.column_profiles import NumericProfile, interleave
from pytest_mlops.checks.drift.univariate import PSI_BINS, psi
from pytest_mlops.checks.drift.verdict import NumericStats

__all__ = ["grid_pair", "grid_stats"]


def grid_stats(
    names: list[str], refs: list[NumericProfile], curs: list[NumericProfile]
) -> NumericStats:
    """Per-column statistics of the numeric columns *names* from their two grid summaries."""
    pairs = [grid_pair(r, c) for r, c in zip(refs, curs, strict=True)]

    def col(key: str) -> np.ndarray:
        return np.array([p[key] for p in pairs], dtype=float)

    def stack(key: str) -> np.ndarray:
        return np.stack([np.asarray(p[key], dtype=float) for p in pairs])

    n_ref = np.array([r.count for r in refs])
    n_cur = np.array([c.count for c in curs])
    ref_bins, cur_bins = stack("ref_bins"), stack("cur_bins")
    return NumericStats(
        names=names,
        n_ref=n_ref,
        n_cur=n_cur,
        missing_ref=np.array([r.n_missing / max(r.n_missing + r.count, 1) for r in refs]),
        missing_cur=np.array([c.n_missing / max(c.n_missing + c.count, 1) for c in curs]),
        ks=col("ks"),
        wasserstein=col("wasserstein"),
        std_ref=np.array([r.std if r.count else 0.0 for r in refs]),
        std_cur=np.array([c.std if c.count else 0.0 for c in curs]),
        psi=psi(ref_bins, cur_bins),
        psi_edges=stack("psi_edges"),
        ref_bins=ref_bins,
        cur_bins=cur_bins,
        ks_error=col("ks_error"),
        wasserstein_error=col("wasserstein_error"),
    )


def grid_pair(ref: NumericProfile, cur: NumericProfile) -> dict[str, float | np.ndarray]:
    """KS, W1, deciles and the error bounds of one column from its two grid summaries."""
    seq_r = interleave(ref.inside, ref.at)
    seq_c = interleave(cur.inside, cur.at)
    n_r, n_c = ref.count, cur.count
    cum_r = np.cumsum(seq_r) / max(n_r, 1)
    cum_c = np.cumsum(seq_c) / max(n_c, 1)
    share_r = ref.inside / max(n_r, 1)
    share_c = cur.inside / max(n_c, 1)
    w1, w_error = _wasserstein(ref, cur, share_r, share_c)
    return {
        "ks": float(np.abs(cum_r - cum_c).max()) if len(seq_r) else 0.0,
        "ks_error": float(np.minimum(share_r, share_c).max()),
        "wasserstein": w1,
        "wasserstein_error": w_error,
        **_deciles(ref.edges, seq_r, seq_c, n_r, n_c),
    }


def _points(p: NumericProfile, edges: np.ndarray) -> np.ndarray:
    """Where the counts of *p* sit: edges exactly, in-between values at their interval's mean."""
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(p.inside > 0, p.inside_sum / np.maximum(p.inside, 1), np.nan)
    fill = np.concatenate([[edges[0] if len(edges) else 0.0], edges])
    means = np.where(np.isnan(means), fill, means)
    pts = np.empty(len(p.inside) + len(edges))
    pts[0::2] = means
    pts[1::2] = edges
    return pts


def _wasserstein(
    ref: NumericProfile, cur: NumericProfile, share_r: np.ndarray, share_c: np.ndarray
) -> tuple[float, float]:
    """W1 with the in-between values at their means (edges are exact points), and its bound."""
    edges = ref.edges
    seq_r = interleave(ref.inside, ref.at)
    seq_c = interleave(cur.inside, cur.at)
    pts = np.concatenate([_points(ref, edges), _points(cur, edges)])
    mass = np.concatenate([seq_r / max(ref.count, 1), -seq_c / max(cur.count, 1)])
    order = np.argsort(pts, kind="stable")
    cum = np.cumsum(mass[order])
    w1 = float((np.diff(pts[order]) * np.abs(cum[:-1])).sum())
    widths = np.diff(edges)
    w_error = float(((share_r[1:-1] + share_c[1:-1]) * widths).sum() / 2)
    for tail in (0, -1):
        if share_r[tail] > 0 and share_c[tail] > 0:
            w_error = math.inf
    return w1, w_error


def _deciles(
    edges: np.ndarray, seq_r: np.ndarray, seq_c: np.ndarray, n_r: int, n_c: int
) -> dict[str, np.ndarray]:
    """Decile bins of the reference, as in the exact path (nearest-rank quantiles)."""
    le_r = np.cumsum(seq_r)[1::2]
    le_c = np.cumsum(seq_c)[1::2]
    levels = np.arange(1, PSI_BINS) / PSI_BINS
    targets = np.floor(levels * max(n_r - 1, 0)) + 1
    idx = np.minimum(np.searchsorted(le_r, targets, "left"), max(len(edges) - 1, 0))
    psi_edges = edges[idx] if len(edges) else np.full(PSI_BINS - 1, np.nan)
    ref_cum = np.concatenate([[0.0], le_r[idx] if len(edges) else np.zeros(PSI_BINS - 1), [n_r]])
    # Current values above the last edge are not in le_c: the last bin gets them.
    cur_cum = np.concatenate([[0.0], le_c[idx] if len(edges) else np.zeros(PSI_BINS - 1), [n_c]])
    return {
        "psi_edges": psi_edges,
        "ref_bins": np.diff(ref_cum) / max(n_r, 1),
        "cur_bins": np.diff(cur_cum) / max(n_c, 1),
    }
