"""``check_drift``: reference versus current, column by column, with one dataset verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops._engines import engine_for
from pytest_mlops.checks.drift.columns import (
    as_frame,
    categorical_stats,
    category_counts,
    column_kind,
    numeric_matrix,
    plan_columns,
    tested_categorical,
    tested_numeric,
)
from pytest_mlops.checks.drift.profile import DriftProfile
from pytest_mlops.checks.drift.univariate import numeric_block
from pytest_mlops.checks.drift.verdict import (
    CategoricalStats,
    ColumnNote,
    DriftSettings,
    NumericStats,
    judge,
)
from pytest_mlops.results import CheckResult

# column_kind, numeric_matrix and plan_columns live in columns.py; importable from here as before
__all__ = ["check_drift", "column_kind", "compare_frames", "numeric_matrix", "plan_columns"]


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
    return compare_frames(ref_frame, cur_frame, columns, tuple(categorical), options, name, kind)


def compare_frames(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    columns: Sequence[str] | None,
    categorical: tuple[str, ...],
    settings: DriftSettings,
    name: str,
    kind: str,
    overrides: Mapping[str, tuple[str, float, float]] | None = None,
) -> CheckResult:
    """The exact comparison of two in-memory frames (what :func:`check_drift` runs).

    *overrides* maps a column to ``(test, statistic, p_value)`` computed by another backend
    (see :func:`~pytest_mlops.checks.drift.verdict.judge`).
    """
    ref_kinds = {
        str(c): ("categorical" if str(c) in categorical else column_kind(ref[c]))
        for c in ref.columns
    }
    plan = plan_columns(ref_kinds, cur, columns=columns, categorical=categorical)
    notes = list(plan.notes)
    numeric = None
    if plan.numeric:
        numeric, empty = tested_numeric(_exact_numeric(ref, cur, plan.numeric))
        notes += empty
    cats = None
    if plan.categorical:
        cats, empty = _exact_categorical(ref, cur, plan.categorical)
        notes += empty
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


def _exact_numeric(ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]) -> NumericStats:
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


def _exact_categorical(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]
) -> tuple[CategoricalStats, list[ColumnNote]]:
    ref_c = [category_counts(ref[c]) for c in columns]
    cur_c = [category_counts(cur[c]) for c in columns]
    cats = categorical_stats(
        columns,
        [r[0] for r in ref_c],
        [r[1] for r in ref_c],
        [c[0] for c in cur_c],
        [c[1] for c in cur_c],
    )
    n_ref = [sum(r[0].values()) for r in ref_c]
    n_cur = [sum(c[0].values()) for c in cur_c]
    return tested_categorical(cats, n_ref, n_cur)
