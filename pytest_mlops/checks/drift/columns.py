"""The columns both drift paths share: frames in, column kinds, value matrices and counts.

The exact path (:func:`~pytest_mlops.checks.drift.check_drift` on two samples) and the profile
path (:class:`~pytest_mlops.checks.drift.DriftProfile`) read their data, type their columns and
count categories the same way, and both leave the columns without values on one side out of the
tests with an explicit note; those steps live here, below both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types

from pytest_mlops.checks.drift.verdict import CategoricalStats, ColumnNote, NumericStats
from pytest_mlops.data.dataset import Dataset
from pytest_mlops.data.loaders import load_dataset
from pytest_mlops.errors import DataError, did_you_mean

__all__ = [
    "BLOCK_BYTES",
    "ColumnPlan",
    "as_frame",
    "categorical_stats",
    "category_counts",
    "column_kind",
    "numeric_matrix",
    "plan_columns",
    "split_empty",
    "take_categorical",
    "take_numeric",
    "tested_categorical",
    "tested_numeric",
]

BLOCK_BYTES = 64_000_000
"""Numeric columns are processed in blocks of about this many bytes of merged samples."""


def as_frame(data: Any, role: str) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """A DataFrame from a Dataset, a DataFrame or anything ``load_dataset`` takes.

    Returns the frame and, for a Dataset, its feature columns (the default columns to compare).
    """
    if isinstance(data, Dataset):
        return data.frame, data.feature_names
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        try:
            frame = load_dataset(data, name=role).frame
        except DataError as exc:
            raise DataError(f"drift: the {role} data: {exc}") from None
    if len(frame) == 0 or len(frame.columns) == 0:
        raise DataError(
            f"drift: the {role} data is empty ({len(frame)} rows, {len(frame.columns)} columns)"
        )
    return frame, None


def column_kind(series: pd.Series) -> str:
    """``"numeric"`` for int/float columns (not bool), ``"categorical"`` for everything else."""
    if types.is_bool_dtype(series.dtype):
        return "categorical"
    return "numeric" if types.is_numeric_dtype(series.dtype) else "categorical"


@dataclass
class ColumnPlan:
    """Which columns are compared how, and the ones that cannot be compared."""

    numeric: list[str]
    categorical: list[str]
    notes: list[ColumnNote]
    order: list[str]


def plan_columns(
    ref_kinds: Mapping[str, str],
    cur_frame: pd.DataFrame,
    *,
    columns: Sequence[str] | None,
    categorical: Sequence[str],
    ref_label: str = "reference",
    cur_label: str = "current",
) -> ColumnPlan:
    """Match the reference's columns (name -> kind) with the current frame's.

    A column the reference has and the current data lacks, or whose kind changed, gets an
    explicit drifted status; a column only the current data has is reported, untested.
    Explicitly requested *columns* must exist in the reference (a DataError otherwise).
    """
    wanted = _wanted_columns(ref_kinds, columns, ref_label)
    plan = ColumnPlan([], [], [], list(wanted))
    current = {str(c): c for c in cur_frame.columns}
    for column in wanted:
        kind = "categorical" if column in categorical else ref_kinds[column]
        if column not in current:
            plan.notes.append(
                ColumnNote(column, kind, f"missing from the {cur_label} data", drifted=True)
            )
            continue
        cur_kind = (
            "categorical" if column in categorical else column_kind(cur_frame[current[column]])
        )
        if cur_kind != kind:
            text = f"type changed: {kind} in {ref_label}, {cur_kind} in {cur_label}"
            plan.notes.append(ColumnNote(column, kind, text, drifted=True))
            continue
        (plan.numeric if kind == "numeric" else plan.categorical).append(column)
    if columns is None:
        _note_new_columns(plan, ref_kinds, cur_frame, current, ref_label)
    return plan


def _wanted_columns(
    ref_kinds: Mapping[str, str], columns: Sequence[str] | None, ref_label: str
) -> list[str]:
    """The requested columns (each must be in the reference), or all of the reference's."""
    if columns is None:
        return list(ref_kinds)
    for column in columns:
        if column not in ref_kinds:
            raise DataError(
                f"drift: the column {column!r} is not in the {ref_label}"
                f"{did_you_mean(column, ref_kinds)}; its columns are {list(ref_kinds)[:30]}"
            )
    return list(columns)


def _note_new_columns(
    plan: ColumnPlan,
    ref_kinds: Mapping[str, str],
    cur_frame: pd.DataFrame,
    current: Mapping[str, Any],
    ref_label: str,
) -> None:
    """Columns only the current data has: reported, not tested."""
    for column in current:
        if column not in ref_kinds:
            kind = column_kind(cur_frame[current[column]])
            plan.notes.append(
                ColumnNote(column, kind, f"not in the {ref_label}: not tested", drifted=False)
            )
            plan.order.append(column)


def numeric_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(len(columns), rows)`` float64, NaN for missing and non-finite values."""
    out = np.empty((len(columns), len(frame)), dtype=np.float64)
    for i, column in enumerate(columns):  # a copy per column; the statistics are vectorised
        out[i] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        out[infinite] = np.nan
    return out


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Counts per category (as text) and the number of missing values."""
    missing = int(series.isna().sum())
    counts = series.dropna().astype(str).value_counts(sort=True)
    return {str(k): int(v) for k, v in counts.items()}, missing


def categorical_stats(
    names: list[str],
    ref_counts: list[dict[str, int]],
    ref_missing: list[int],
    cur_counts: list[dict[str, int]],
    cur_missing: list[int],
) -> CategoricalStats:
    """Count matrices over the union of categories, reference categories first."""
    categories: list[list[str]] = []
    for ref, cur in zip(ref_counts, cur_counts, strict=True):
        categories.append(list(ref) + [c for c in cur if c not in ref])
    width = max((len(c) for c in categories), default=1)
    k = len(names)
    ref_m = np.zeros((k, width))
    cur_m = np.zeros((k, width))
    unseen = np.zeros(k)
    for i, cats in enumerate(categories):
        ref_m[i, : len(cats)] = [ref_counts[i].get(c, 0) for c in cats]
        cur_m[i, : len(cats)] = [cur_counts[i].get(c, 0) for c in cats]
        total = cur_m[i].sum()
        unseen[i] = sum(v for c, v in cur_counts[i].items() if c not in ref_counts[i]) / max(
            total, 1
        )
    ref_rows = ref_m.sum(axis=1) + np.asarray(ref_missing)
    cur_rows = cur_m.sum(axis=1) + np.asarray(cur_missing)
    return CategoricalStats(
        names=names,
        categories=categories,
        ref_counts=ref_m,
        cur_counts=cur_m,
        missing_ref=np.asarray(ref_missing) / np.maximum(ref_rows, 1),
        missing_cur=np.asarray(cur_missing) / np.maximum(cur_rows, 1),
        unseen=unseen,
    )


def split_empty(
    stats_names: list[str],
    n_ref: Any,
    n_cur: Any,
    missing_ref: Any,
    missing_cur: Any,
    kind: str,
) -> tuple[list[int], list[ColumnNote]]:
    """Indices of columns with values on both sides, and notes for the all-missing ones."""
    keep: list[int] = []
    notes: list[ColumnNote] = []
    for i, name in enumerate(stats_names):
        if n_ref[i] > 0 and n_cur[i] > 0:
            keep.append(i)
            continue
        if n_ref[i] == 0 and n_cur[i] == 0:
            text, drifted = "all values missing in both: not tested", False
        elif n_ref[i] == 0:
            text, drifted = "all values missing in the reference: not tested", False
        else:
            text, drifted = "all values missing in the current data", True
        notes.append(
            ColumnNote(name, kind, text, drifted, float(missing_ref[i]), float(missing_cur[i]))
        )
    return keep, notes


def take_numeric(stats: NumericStats, keep: list[int]) -> NumericStats:
    """The columns *keep* (indices) of *stats*."""
    if len(keep) == len(stats.names):
        return stats
    idx = np.asarray(keep, dtype=np.int64)
    values = {
        k: (v[idx] if hasattr(v, "shape") else v) for k, v in vars(stats).items() if k != "names"
    }
    return NumericStats(names=[stats.names[i] for i in keep], **values)


def take_categorical(stats: CategoricalStats, keep: list[int]) -> CategoricalStats:
    """The columns *keep* (indices) of *stats*."""
    if len(keep) == len(stats.names):
        return stats
    idx = np.asarray(keep, dtype=np.int64)
    return CategoricalStats(
        names=[stats.names[i] for i in keep],
        categories=[stats.categories[i] for i in keep],
        ref_counts=stats.ref_counts[idx],
        cur_counts=stats.cur_counts[idx],
        missing_ref=stats.missing_ref[idx],
        missing_cur=stats.missing_cur[idx],
        unseen=stats.unseen[idx],
    )


def tested_numeric(stats: NumericStats) -> tuple[NumericStats, list[ColumnNote]]:
    """*stats* without the columns that have no values on one side, and notes for those."""
    keep, notes = split_empty(
        stats.names, stats.n_ref, stats.n_cur, stats.missing_ref, stats.missing_cur, "numeric"
    )
    return take_numeric(stats, keep), notes


def tested_categorical(
    stats: CategoricalStats, n_ref: Sequence[int], n_cur: Sequence[int]
) -> tuple[CategoricalStats, list[ColumnNote]]:
    """:func:`tested_numeric` for categorical columns, given their counts of values."""
    keep, notes = split_empty(
        stats.names, n_ref, n_cur, stats.missing_ref, stats.missing_cur, "categorical"
    )
    return take_categorical(stats, keep), notes
