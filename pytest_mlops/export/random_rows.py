"""Hypothesis-driven parity: random valid rows, and the smallest one on which the models disagree.

Rows come from the schema-based strategies of :mod:`pytest_mlops.checks.properties` (bounds,
quantiles and every category of a reviewed :class:`~pytest_mlops.data.schema.Schema`, or one
inferred from the data). Where no schema can be had, they are drawn column by column from what
the data shows: numbers between the column's minimum and maximum (whole numbers for integer
columns, missing values where the column has them), categories sampled from the values seen.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["frames_from", "row_strategies"]

# Categories per column offered to Hypothesis: the most frequent ones (shrinking goes to the first).
MAX_CATEGORIES = 200


def row_strategies(frame: pd.DataFrame) -> dict[str, Any]:
    """One Hypothesis strategy per column of *frame*, producing values that column could hold."""
    from hypothesis import strategies as st

    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        has_missing = bool(column.isna().any())
        values = column.dropna()
        if pd.api.types.is_bool_dtype(column):
            strategy: Any = st.booleans()
        elif pd.api.types.is_numeric_dtype(column) and len(values):
            low, high = float(values.min()), float(values.max())
            if pd.api.types.is_integer_dtype(column):
                strategy = st.integers(math.floor(low), math.ceil(high))
            else:
                strategy = st.floats(low, high, allow_nan=False, allow_infinity=False)
        elif len(values):
            common = values.astype(str).value_counts().index[:MAX_CATEGORIES]
            strategy = st.sampled_from([str(v) for v in common])
        else:
            strategy = st.none()
        out[str(name)] = st.one_of(st.none(), strategy) if has_missing else strategy
    return out


def frames_from(frame: pd.DataFrame, *, schema: Any = None, max_rows: int = 16) -> Any:
    """A strategy of small DataFrames of valid rows with the columns of *frame*.

    Parameters
    ----------
    frame:
        Rows the model takes (its columns are the ones generated).
    schema:
        A :class:`~pytest_mlops.data.schema.Schema` or the path of a schema file; default: one
        inferred from *frame*.
    max_rows:
        Largest batch drawn.
    """
    from_schema = _schema_frames(frame, schema, max_rows)
    return from_schema if from_schema is not None else _frames_from_data(frame, max_rows)


def _schema_frames(frame: pd.DataFrame, schema: Any, max_rows: int) -> Any:
    from pytest_mlops.checks.properties import frames
    from pytest_mlops.data.schema import Schema, infer_schema, load_schema

    columns = [str(c) for c in frame.columns]
    if schema is None:
        if not all(isinstance(c, str) for c in frame.columns):
            return None
        try:
            schema = infer_schema(frame)
        except Exception:  # a frame the inference cannot type: draw from the data instead
            return None
    elif not isinstance(schema, Schema):
        schema = load_schema(schema)
    return frames(schema, columns=columns, max_size=max_rows)


def _frames_from_data(frame: pd.DataFrame, max_rows: int) -> Any:
    from hypothesis import strategies as st

    columns = row_strategies(frame)
    rows = st.lists(st.fixed_dictionaries(columns), min_size=1, max_size=max_rows)

    def to_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
        out = pd.DataFrame(items, columns=list(frame.columns))
        for name in frame.columns:
            dtype = frame[name].dtype
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                target = dtype if not out[name].isna().any() else "float64"
                out[name] = pd.to_numeric(out[name]).astype(target)
            elif dtype.kind != "O":
                # the column's own dtype, so a missing string is NaN as in the data, not None
                out[name] = out[name].astype(dtype)
        return out

    return rows.map(to_frame)
