"""``check_drift``: reference versus current, column by column, with one dataset verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.drift.verdict import (
    CategoricalStats,
    ColumnNote,
    DriftSettings,
    NumericStats,
    judge,
)
from pytest_mlops.errors import DataError, did_you_mean
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


__all__ = ["check_drift", "column_kind", "plan_columns"]

BLOCK_BYTES = 64_000_000
"""Numeric columns are processed in blocks of about this many bytes of merged samples."""


def column_kind(series: pd.Series) -> str:
    """``"numeric"`` for int/float columns (not bool), ``"categorical"`` for everything else."""
    from pandas.api import types

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
    current = {str(c): c for c in cur_frame.columns}
    if columns is not None:
        for column in columns:
            if column not in ref_kinds:
                raise DataError(
                    f"drift: the column {column!r} is not in the {ref_label}"
                    f"{did_you_mean(column, ref_kinds)}; its columns are {list(ref_kinds)[:30]}"
                )
        wanted = list(columns)
    else:
        wanted = list(ref_kinds)
    plan = ColumnPlan([], [], [], list(wanted))
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
            plan.notes.append(
                ColumnNote(
                    column,
                    kind,
                    f"type changed: {kind} in {ref_label}, {cur_kind} in {cur_label}",
                    drifted=True,
                )
            )
            continue
        (plan.numeric if kind == "numeric" else plan.categorical).append(column)
    if columns is None:
        for column in current:
            if column not in ref_kinds:
                plan.notes.append(
                    ColumnNote(
                        column,
                        column_kind(cur_frame[current[column]]),
                        f"not in the {ref_label}: not tested",
                        drifted=False,
                    )
                )
                plan.order.append(column)
    return plan


def numeric_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(len(columns), rows)`` float64, NaN for missing and non-finite values."""
    import numpy as np

    out = np.empty((len(columns), len(frame)), dtype=np.float64)
    for i, column in enumerate(columns):  # a copy per column; the statistics are vectorised
        out[i] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        out[infinite] = np.nan
    return out


def _exact_numeric(ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]) -> NumericStats:
    import numpy as np

    from pytest_mlops.checks.drift.univariate import numeric_block

    def values(frame: pd.DataFrame, column: str) -> np.ndarray:
        # a view where the column is already float64: the kernel reads it, never writes
        column_values: np.ndarray = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        return column_values

    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(columns), 8):  # the per-bin outputs of 8 columns at a time
        names = columns[start : start + 8]
        part = numeric_block([values(ref, c) for c in names], [values(cur, c) for c in names])
        parts.append(part)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return NumericStats(
        names=list(columns),
        n_ref=joined["n_ref"],
        n_cur=joined["n_cur"],
        missing_ref=1 - joined["n_ref"] / max(len(ref), 1),
        missing_cur=1 - joined["n_cur"] / max(len(cur), 1),
        ks=joined["ks"],
        wasserstein=joined["wasserstein"],
        std_ref=joined["std_ref"],
        std_cur=joined["std_cur"],
        psi=joined["psi"],
        psi_edges=joined["psi_edges"],
        ref_bins=joined["ref_bins"],
        cur_bins=joined["cur_bins"],
    )


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
    import numpy as np

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


def as_frame(data: Any, role: str) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """A DataFrame from a Dataset, a DataFrame or anything ``load_dataset`` takes.

    Returns the frame and, for a Dataset, its feature columns (the default columns to compare).
    """
    import pandas as pd

    from pytest_mlops.data.dataset import Dataset

    if isinstance(data, Dataset):
        return data.frame, data.feature_names
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        from pytest_mlops.data.loaders import load_dataset

        try:
            frame = load_dataset(data, name=role).frame
        except DataError as exc:
            raise DataError(f"drift: the {role} data: {exc}") from None
    if len(frame) == 0 or len(frame.columns) == 0:
        raise DataError(
            f"drift: the {role} data is empty ({len(frame)} rows, {len(frame.columns)} columns)"
        )
    return frame, None


def check_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    name: str = "drift",
    kind: str = "drift",
    **settings: Any,
) -> CheckResult:
    """Compare *current* with *reference*, column by column, and judge the dataset.

    Parameters
    ----------
    reference:
        A :class:`~pytest_mlops.Dataset`, a DataFrame, a path, or a
        :class:`~pytest_mlops.DriftProfile` (then the comparison runs against the stored profile).
    current:
        A Dataset, a DataFrame or a path (CSV/Parquet; with a profile reference, read chunk by
        chunk). A Spark or Dask DataFrame on either side is summarised where it lives (partial
        profiles merged on the driver) and compared through profiles.
    columns:
        The columns to compare (default: the reference's features, or all its columns).
    categorical:
        Columns to treat as categorical whatever their dtype.
    name, kind:
        The result's name and family.
    settings:
        :class:`~pytest_mlops.checks.drift.verdict.DriftSettings`: ``method``, ``correction``,
        ``alpha``, ``numeric_effect``, ``categorical_effect``, ``thresholds``,
        ``max_drifted_share``, ``max_missing_change``, ``small_sample``.

    Returns
    -------
    CheckResult
        Failed when the share of drifted columns exceeds ``max_drifted_share``. Tables:
        ``columns`` (one row per column: test, statistic, p_value, p_adjusted, effect, threshold,
        drifted, missing rates, unseen share, note) and ``histograms`` (up to 11 bins per column).
    """
    from pytest_mlops._engines import engine_for
    from pytest_mlops.checks.drift.profile import DriftProfile

    options = DriftSettings.from_kwargs(settings)
    if not isinstance(reference, DriftProfile) and (
        engine_for(reference) is not None or engine_for(current) is not None
    ):  # a Spark or Dask DataFrame on either side: compare profiles, counted where the data is
        reference = DriftProfile.fit(reference, columns=columns, categorical=categorical)
    if isinstance(reference, DriftProfile):
        return reference.compare(current, columns=columns, name=name, kind=kind, settings=options)
    ref_frame, ref_features = as_frame(reference, "reference")
    cur_frame, _ = as_frame(current, "current")
    if columns is None and ref_features is not None:
        columns = list(ref_features)
    return _compare_frames(ref_frame, cur_frame, columns, tuple(categorical), options, name, kind)


def _compare_frames(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    columns: Sequence[str] | None,
    categorical: tuple[str, ...],
    settings: DriftSettings,
    name: str,
    kind: str,
    overrides: Mapping[str, tuple[str, float, float]] | None = None,
) -> CheckResult:
    ref_kinds = {
        str(c): ("categorical" if str(c) in categorical else column_kind(ref[c]))
        for c in ref.columns
    }
    plan = plan_columns(ref_kinds, cur, columns=columns, categorical=categorical)
    notes = list(plan.notes)
    numeric = None
    if plan.numeric:
        numeric = _exact_numeric(ref, cur, plan.numeric)
        keep, empty = split_empty(
            numeric.names,
            numeric.n_ref,
            numeric.n_cur,
            numeric.missing_ref,
            numeric.missing_cur,
            "numeric",
        )
        notes += empty
        numeric = _take_numeric(numeric, keep)
    cats = None
    if plan.categorical:
        ref_c = [category_counts(ref[c]) for c in plan.categorical]
        cur_c = [category_counts(cur[c]) for c in plan.categorical]
        cats = categorical_stats(
            plan.categorical,
            [r[0] for r in ref_c],
            [r[1] for r in ref_c],
            [c[0] for c in cur_c],
            [c[1] for c in cur_c],
        )
        n_ref = [sum(r[0].values()) for r in ref_c]
        n_cur = [sum(c[0].values()) for c in cur_c]
        keep, empty = split_empty(
            cats.names, n_ref, n_cur, cats.missing_ref, cats.missing_cur, "categorical"
        )
        notes += empty
        cats = _take_categorical(cats, keep)
    context = {"n_ref": len(ref), "n_cur": len(cur), "split": "reference vs current"}
    return judge(
        numeric,
        cats,
        notes,
        settings,
        name=name,
        context=context,
        kind=kind,
        order=plan.order,
        overrides=overrides,
    )


def _take_numeric(stats: NumericStats, keep: list[int]) -> NumericStats:
    import numpy as np

    if len(keep) == len(stats.names):
        return stats
    idx = np.asarray(keep, dtype=np.int64)
    values = {
        k: (v[idx] if hasattr(v, "shape") else v) for k, v in vars(stats).items() if k != "names"
    }
    return NumericStats(names=[stats.names[i] for i in keep], **values)


def _take_categorical(stats: CategoricalStats, keep: list[int]) -> CategoricalStats:
    import numpy as np

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
