"""One column of a drift profile, and how a column's values are counted on its grid.

A :class:`NumericProfile` holds a column's grid of edges with exact counts at and between them (and
the sums of the values between); a :class:`CategoricalProfile` the counts per category. Both merge
exactly, so partial profiles of the same data add up to the profile of the whole (see
:mod:`~pytest_mlops.checks.drift.profile`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pytest_mlops.checks.drift.columns import BLOCK_BYTES, numeric_matrix

__all__ = [
    "MAX_CATEGORIES",
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "as_categorical",
    "as_numeric",
    "capped",
    "interleave",
    "kind_of",
    "numeric_profiles",
    "with_other",
]

MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class NumericProfile:
    """One numeric column on its grid (see :mod:`~pytest_mlops.checks.drift.profile`)."""

    edges: np.ndarray
    at: np.ndarray
    inside: np.ndarray
    inside_sum: np.ndarray
    n_missing: int
    mean: float
    m2: float  # sum of squared deviations from the mean
    min: float
    max: float

    @property
    def count(self) -> int:
        return int(self.at.sum() + self.inside.sum())

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    def same_grid(self, other: NumericProfile) -> bool:
        return bool(np.array_equal(self.edges, other.edges))

    def merge(self, other: NumericProfile) -> NumericProfile:
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        delta = other.mean - self.mean if n_a and n_b else 0.0
        # A side without values (an all-missing partition) has a NaN mean: it must not count.
        total = (self.mean * n_a if n_a else 0.0) + (other.mean * n_b if n_b else 0.0)
        mean = total / n if n else math.nan
        m2 = (
            (self.m2 if n_a else 0.0)
            + (other.m2 if n_b else 0.0)
            + delta**2 * n_a * n_b / max(n, 1)
        )
        return NumericProfile(
            edges=self.edges,
            at=self.at + other.at,
            inside=self.inside + other.inside,
            inside_sum=self.inside_sum + other.inside_sum,
            n_missing=self.n_missing + other.n_missing,
            mean=mean,
            m2=m2,
            min=_fmin(self.min, other.min),
            max=_fmax(self.max, other.max),
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical column: counts per category (as text), missing values, the rest."""

    counts: Mapping[str, int]
    n_missing: int
    other: int = 0

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        return capped(counts, self.n_missing + other.n_missing, self.other + other.other)


ColumnProfile = NumericProfile | CategoricalProfile


def _fmin(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _fmax(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def capped(counts: Mapping[str, int], missing: int, other: int) -> CategoricalProfile:
    """The :data:`MAX_CATEGORIES` most frequent categories; the rest counted in ``other``."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ordered[:MAX_CATEGORIES])
    rest = sum(v for _, v in ordered[MAX_CATEGORIES:])
    return CategoricalProfile(kept, missing, other + rest)


def kind_of(column: ColumnProfile) -> str:
    """``"numeric"`` or ``"categorical"``."""
    return "numeric" if isinstance(column, NumericProfile) else "categorical"


def as_numeric(column: ColumnProfile) -> NumericProfile:
    """*column*, which must be numeric, typed as such."""
    assert isinstance(column, NumericProfile)  # noqa: S101 - a type the caller guarantees
    return column


def as_categorical(column: ColumnProfile) -> CategoricalProfile:
    """*column*, which must be categorical, typed as such."""
    assert isinstance(column, CategoricalProfile)  # noqa: S101 - a type the caller guarantees
    return column


def with_other(column: CategoricalProfile) -> dict[str, int]:
    """The counts per category, the capped rest as one ``"(other)"`` category."""
    counts = dict(column.counts)
    if column.other:
        counts["(other)"] = counts.get("(other)", 0) + column.other
    return counts


# --- numeric grids ------------------------------------------------------------------------


def numeric_profiles(
    frame: pd.DataFrame,
    columns: list[str],
    bins: int,
    grids: list[np.ndarray] | None,
) -> dict[str, NumericProfile]:
    """Profiles of numeric columns, in blocks of columns; grids from the data when None."""
    per_block = max(1, BLOCK_BYTES // (16 * max(len(frame), 1)))
    out: dict[str, NumericProfile] = {}
    for start in range(0, len(columns), per_block):
        names = columns[start : start + per_block]
        block = numeric_matrix(frame, names)
        block.sort(axis=1)
        edges = grids[start : start + per_block] if grids is not None else _make_grids(block, bins)
        out.update(zip(names, _count_on_grids(block, edges), strict=True))
    return out


def _make_grids(sorted_block: np.ndarray, bins: int) -> list[np.ndarray]:
    """Edges at reference quantiles: ``bins + 1`` levels, duplicates removed."""
    n = sorted_block.shape[1]
    valid = n - np.isnan(sorted_block).sum(axis=1)
    levels = np.linspace(0.0, 1.0, bins + 1)
    index = np.round(levels[None, :] * np.maximum(valid - 1, 0)[:, None]).astype(np.int64)
    picked = np.take_along_axis(sorted_block, index, axis=1) if n else np.full(index.shape, np.nan)
    # Columns with few distinct values keep all of them: their KS is then exact.
    distinct = (np.diff(sorted_block, axis=1) != 0).sum(axis=1) + 1 - (n - valid)
    grids = []
    for i, (row, m) in enumerate(zip(picked, valid, strict=True)):
        if m and distinct[i] <= bins + 1:
            grids.append(np.unique(sorted_block[i, :m]))
        else:
            grids.append(np.unique(row) if m else np.zeros(0))
    return grids


def _count_on_grids(sorted_block: np.ndarray, grids: list[np.ndarray]) -> list[NumericProfile]:
    """Each sorted row (NaN last) counted on its grid: at and between the edges, with sums."""
    n = sorted_block.shape[1]
    valid = n - np.isnan(sorted_block).sum(axis=1)
    return [
        _count_row(sorted_block[i, : int(valid[i])], np.asarray(g, dtype=np.float64), n)
        for i, g in enumerate(grids)
    ]


def _count_row(values: np.ndarray, edges: np.ndarray, n: int) -> NumericProfile:
    count = len(values)
    le = np.searchsorted(values, edges, "right")
    lt = np.searchsorted(values, edges, "left")
    at = (le - lt).astype(np.int64)
    inside = (np.concatenate([lt, [count]]) - np.concatenate([[0], le])).astype(np.int64)
    # Sums segment by segment (not differences of a running sum): each is exact to the
    # rounding of its own few values, so partitions merge to the same sums.
    segment = np.repeat(np.arange(2 * len(edges) + 1), interleave(inside, at).astype(np.int64))
    sums = np.bincount(segment, weights=values, minlength=2 * len(edges) + 1)
    mean = float(values.mean()) if count else math.nan
    return NumericProfile(
        edges=edges,
        at=at,
        inside=inside,
        inside_sum=sums[0::2].astype(np.float64),
        n_missing=int(n - count),
        mean=mean,
        m2=float(((values - mean) ** 2).sum()) if count else 0.0,
        min=float(values[0]) if count else math.nan,
        max=float(values[-1]) if count else math.nan,
    )


def interleave(inside: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The counts in grid order: inside_0, at_0, inside_1, at_1, ..., inside_m (as floats)."""
    seq = np.empty(len(inside) + len(at), dtype=np.float64)
    seq[0::2] = inside
    seq[1::2] = at
    return seq
