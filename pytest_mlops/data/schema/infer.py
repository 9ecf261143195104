"""Schema inference: a first schema derived from reference data, for a person to review."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from pytest_mlops.data.dataset import Dataset, frame_of
from pytest_mlops.data.schema.model import INFERRED_RULES, ColumnSchema, DType, Schema
from pytest_mlops.errors import DataError, did_you_mean

__all__ = ["QUANTILES", "infer_schema", "inferred_tolerance", "unseen_share"]

#: The quantiles an inferred schema records for each numeric column.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def infer_schema(
    data: Dataset | pd.DataFrame,
    *,
    target: str | None = None,
    max_categories: int = 50,
    min_unique_rows: int = 20,
    tolerance: Mapping[str, float] | None = None,
    strict: bool = True,
) -> Schema:
    """Derive a schema from reference data, to be saved, reviewed and checked in.

    Parameters
    ----------
    data:
        A :class:`Dataset` (its target is recorded) or a DataFrame.
    target:
        The label column of a DataFrame.
    max_categories:
        Text columns with at most this many distinct values get a category set; others (free
        text, ids) only a type.
    min_unique_rows:
        A text column is declared ``unique`` when all its values differ and it has at least this
        many rows (so a tiny sample does not make every column an id). Distinct numbers are not
        taken for ids: add ``"unique": true`` to an integer id column by hand.
    tolerance:
        Schema-wide tolerances to write; by default ``in_range`` and ``in_set`` get
        :func:`inferred_tolerance` of the number of rows, since bounds and category sets seen in
        a sample are estimates, and a column with many rare categories gets its own ``in_set``
        tolerance from :func:`unseen_share`. Pass ``{}`` for none.
    strict:
        Whether the schema rejects columns it does not list.
    """
    frame, target = _frame_and_target(data, target)
    columns = tuple(
        _infer_column(str(name), frame[name], max_categories, min_unique_rows)
        for name in frame.columns
    )
    if tolerance is None:
        columns = tuple(_rare_category_tolerance(c, frame[c.name], len(frame)) for c in columns)
    return Schema(
        columns=columns,
        target=target,
        strict=strict,
        tolerance=dict(
            dict.fromkeys(INFERRED_RULES, inferred_tolerance(len(frame)))
            if tolerance is None
            else tolerance
        ),
        n_rows=len(frame),
    )


def inferred_tolerance(n_rows: int) -> float:
    """The ``mostly`` an inferred schema gives its ranges and category sets.

    The share of new values from the same distribution that fall beyond the minimum and maximum
    of *n* values follows ``Beta(2, n-1)`` for a continuous column (less for a discrete one), with
    mean ``2/(n+1)``. Allowing ``max(0.001, 15/(n+1))`` of the rows beyond them keeps a
    same-distribution batch from failing: ``Beta(2, n-1)`` exceeds ``15/(n+1)`` with probability
    about ``16 e^-15 = 5e-6``. Category sets get the same, or more where many categories are rare
    (see :func:`unseen_share`).
    """
    return _as_mostly(max(0.001, 15.0 / (n_rows + 1)))


def unseen_share(counts: Sequence[int]) -> float:
    """A generous bound on the share of new rows with a category absent from a sample.

    Good-Turing: the share of the population made of values never seen in *n* rows is about
    ``N1/n``, where ``N1`` counts the values seen exactly once. Three times ``(N1 + 1)/n`` leaves
    room for the estimate's noise (a column with many rare categories, such as a country, needs it).
    """
    n = sum(counts)
    singletons = sum(1 for c in counts if c == 1)
    return 3.0 * (singletons + 1) / n if n else 1.0


def _as_mostly(allowed: float) -> float:
    return math.floor((1.0 - min(allowed, 1.0)) * 10_000) / 10_000


def _frame_and_target(
    data: Dataset | pd.DataFrame, target: str | None
) -> tuple[pd.DataFrame, str | None]:
    frame, _ = frame_of(data)
    if isinstance(data, Dataset):
        return frame, target or data.target
    if target is not None and target not in frame.columns:
        cols = [str(c) for c in frame.columns]
        raise DataError(f"the data has no target column {target!r}{did_you_mean(target, cols)}")
    return frame, target


def _rare_category_tolerance(column: ColumnSchema, series: pd.Series, n: int) -> ColumnSchema:
    """A column whose categories are rare gets its own, looser ``in_set`` tolerance."""
    if column.categories is None:
        return column
    mostly = _as_mostly(unseen_share(series.dropna().astype(str).value_counts().tolist()))
    if mostly >= inferred_tolerance(n):
        return column
    return replace(column, mostly={**column.mostly, "in_set": mostly})


def _logical_dtype(series: pd.Series) -> DType:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    values = series.dropna()
    if series.dtype == object and len(values) and values.map(type).isin([bool]).all():
        return "bool"  # booleans with gaps are stored as objects
    return "str"


def _infer_column(
    name: str, series: pd.Series, max_categories: int, min_unique_rows: int
) -> ColumnSchema:
    dtype = _logical_dtype(series)
    values = series.dropna()
    nullable = len(values) < len(series)
    if values.empty:
        return ColumnSchema(name=name, dtype=dtype, nullable=True)
    # Only text ids: distinct numbers in a sample (a weight, an amount) repeat in the next batch.
    unique = (
        dtype == "str"
        and len(series) >= min_unique_rows
        and not nullable
        and bool(values.is_unique)
    )
    if dtype in ("int", "float"):
        return _numeric_column(name, dtype, values, nullable, unique)
    if dtype == "datetime":
        return ColumnSchema(
            name=name,
            dtype=dtype,
            nullable=nullable,
            min=values.min().isoformat(),
            max=values.max().isoformat(),
        )
    if dtype == "bool":
        return ColumnSchema(name=name, dtype=dtype, nullable=nullable)
    text = values.astype(str)
    categories = None
    if not unique and text.nunique() <= max_categories:
        categories = tuple(sorted(text.unique().tolist()))
    return ColumnSchema(
        name=name, dtype="str", nullable=nullable, categories=categories, unique=unique
    )


def _numeric_column(
    name: str, dtype: DType, values: pd.Series, nullable: bool, unique: bool
) -> ColumnSchema:
    """A number column: its bounds, and its quantiles for the reviewer."""
    numbers = values.astype("float64")
    quantiles = numbers.quantile(list(QUANTILES)).to_numpy()
    cast = int if dtype == "int" else float
    return ColumnSchema(
        name=name,
        dtype=dtype,
        nullable=nullable,
        min=cast(numbers.min()),
        max=cast(numbers.max()),
        quantiles={f"{q:g}": _round(float(v)) for q, v in zip(QUANTILES, quantiles, strict=True)},
        unique=unique,
    )


def _round(value: float) -> float:
    return float(f"{value:.6g}")
