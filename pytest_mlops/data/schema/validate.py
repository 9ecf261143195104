"""Validation: every violation of a schema, counted and shown, with the tolerances applied.

:func:`check_schema` runs the steps below on a DataFrame in this process. They are public so that
an engine that counts violations where the data lives (Spark, Dask) builds the same result:
:func:`structural_violations` (missing and extra columns), :func:`column_violations` (the rules of
one column), :func:`mostly_by_rule` and :func:`with_tolerance` (the tolerance that applies) and
:func:`schema_result` (the verdict and its message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops.data.dataset import Dataset, frame_of
from pytest_mlops.data.schema.model import (
    TOLERANT_RULES,
    ColumnSchema,
    Rule,
    Schema,
    Violation,
    load_schema,
    parse_tolerance,
)
from pytest_mlops.errors import did_you_mean
from pytest_mlops.results import CheckResult

__all__ = [
    "MAX_EXAMPLE_CHARS",
    "N_EXAMPLES",
    "check_schema",
    "column_violations",
    "mostly_by_rule",
    "schema_result",
    "structural_violations",
    "with_tolerance",
]

#: Examples (values and row labels) a violation shows.
N_EXAMPLES = 5
#: A text example longer than this is shortened (a result never carries a cell whole).
MAX_EXAMPLE_CHARS = 80


def check_schema(
    data: Dataset | pd.DataFrame,
    schema: Schema | str | Path,
    *,
    mostly: float | Mapping[str, float] | None = None,
    name: str = "schema",
) -> CheckResult:
    """Validate *data* against *schema*, listing every violation.

    Parameters
    ----------
    data:
        A :class:`Dataset` or a DataFrame.
    schema:
        A :class:`Schema` or the path of a schema file.
    mostly:
        Tolerance: the share of rows that must satisfy each rule (``0.99`` lets 1% of the rows break
        it). A number applies to every tolerant rule (``not_null``, ``dtype``, ``in_range``,
        ``in_set``, ``unique``); a mapping sets it per rule, e.g. ``{"in_range": 0.99}``. It
        overrides the schema's ``tolerance``; a column's own ``mostly`` in the file wins over both.
        Missing, extra and all-missing columns are never tolerated.
    name:
        The check name in the result.

    Returns
    -------
    CheckResult
        Failed when a violation exceeds its tolerance. ``tables["violations"]`` lists every
        violation (tolerated ones too) with count, share, examples and row labels.
    """
    if not isinstance(schema, Schema):
        schema = load_schema(schema)
    frame, label = frame_of(data)
    if not frame.index.is_unique:  # rows are named by position when labels repeat
        frame = frame.reset_index(drop=True)
    rule_mostly = mostly_by_rule(mostly)
    violations = structural_violations(frame, schema)
    for column in schema.columns:
        if column.name in frame.columns:
            found = column_violations(column, frame[column.name])
            violations += [with_tolerance(v, column, schema, rule_mostly) for v in found]
    return schema_result(violations, frame, schema, label, name)


def mostly_by_rule(mostly: float | Mapping[str, float] | None) -> dict[str, float]:
    """The ``mostly`` argument of :func:`check_schema`, validated, as rule -> fraction.

    A number applies to every tolerant rule; ``None`` sets none.

    Raises
    ------
    ConfigError
        When a rule takes no tolerance or a fraction is outside [0, 1].
    """
    if mostly is None:
        return {}
    if isinstance(mostly, Mapping):
        return parse_tolerance(mostly, "check_schema(mostly=...)")
    return parse_tolerance(dict.fromkeys(TOLERANT_RULES, mostly), "check_schema(mostly=...)")


def with_tolerance(
    violation: Violation, column: ColumnSchema, schema: Schema, mostly: Mapping[str, float]
) -> Violation:
    """*violation* with the tolerance that applies to its rule.

    The column's own ``mostly`` wins, then the *mostly* argument (see :func:`mostly_by_rule`),
    then the schema's ``tolerance``; structural rules are never tolerated.
    """
    rule = violation.rule
    if rule not in TOLERANT_RULES:
        return violation
    for layer in (column.mostly, mostly, schema.tolerance):
        if rule in layer:
            return replace(violation, mostly=float(layer[rule]))
    return violation


def structural_violations(frame: pd.DataFrame, schema: Schema) -> list[Violation]:
    """Required columns missing from *frame*, and (for a strict schema) columns it does not list.

    Each counts every row of *frame*.
    """
    present = [str(c) for c in frame.columns]
    n = len(frame)
    out = [
        Violation(
            column=c.name,
            rule="missing_column",
            count=n,
            n=n,
            expected=f"a column {c.name!r}{did_you_mean(c.name, present)}",
        )
        for c in schema.columns
        if c.required and c.name not in present
    ]
    if schema.strict:
        names = schema.names
        out += [
            Violation(
                column=c,
                rule="extra_column",
                count=n,
                n=n,
                expected=f"only the schema's columns{did_you_mean(c, names)}",
            )
            for c in present
            if c not in names
        ]
    return out


def column_violations(column: ColumnSchema, series: pd.Series) -> list[Violation]:
    """Every rule *series* breaks, with examples; tolerances are applied by :func:`with_tolerance`.

    Rules run on the values the earlier rules could read: ``not_null``, then ``dtype``, then
    ``in_range``, ``in_set`` and ``unique`` on the values of the right type. A column with no
    value at all is one ``all_null`` violation (listed, not failed, for a nullable column).
    """
    null = series.isna()
    n = len(series)
    if n and bool(null.all()):
        # A nullable column may be empty in a small batch; the violation is listed, not failed.
        allowed = 0.0 if column.nullable else 1.0
        return [
            Violation(
                column.name,
                "all_null",
                n,
                n,
                "at least one value (all are missing)",
                mostly=allowed,
            )
        ]
    found: list[Violation | None] = []
    if not column.nullable:
        found.append(_violation(column, "not_null", series, null, "no missing values"))
    values = series[~null]
    typed, bad_type, expected_type = _coerce(column, values)
    found.append(_violation(column, "dtype", values, bad_type, expected_type))
    if typed is not None:
        found.append(_range_violation(column, values, typed))
        found.append(_set_violation(column, values, typed))
        if column.unique:
            dup = typed.duplicated(keep=False)
            found.append(_violation(column, "unique", values, dup, "every value distinct"))
    return [v for v in found if v is not None]


def schema_result(
    violations: list[Violation], frame: pd.DataFrame, schema: Schema, label: str, name: str
) -> CheckResult:
    """The verdict of :func:`check_schema` on *violations* found in *frame* (its rows are ``n``).

    Failed when a violation exceeds its tolerance; the message lists the first three, the details
    and ``tables["violations"]`` every one (tolerated ones too).
    """
    failed = [v for v in violations if v.failed]
    tolerated = [v for v in violations if not v.failed]
    n = len(frame)
    context: dict[str, str | int | float | bool | None] = {
        "n": n,
        "split": label,
        "schema": schema.source,
        "columns": len(schema.columns),
    }
    return CheckResult(
        name=name,
        kind="schema",
        status="failed" if failed else "passed",
        message=_message(failed, tolerated, schema, label, n),
        metric="violations",
        value=float(len(failed)),
        op="<=",
        bound=0.0,
        details="\n".join(v.text() for v in failed + tolerated),
        metrics={
            "violations": float(len(failed)),
            "tolerated_violations": float(len(tolerated)),
            "violating_rows": float(sum(v.count for v in failed if v.rule in TOLERANT_RULES)),
        },
        context=context,
        tables={"violations": [v.to_row() for v in failed + tolerated]},
    )


def _message(
    failed: list[Violation], tolerated: list[Violation], schema: Schema, label: str, n: int
) -> str:
    if failed:
        listed = "; ".join(v.text() for v in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        plural = "s" if len(failed) != 1 else ""
        return (
            f"{len(failed)} violation{plural} of {schema.describe()} in {label} (n={n}): "
            f"{listed}{more}"
        )
    note = f", {len(tolerated)} tolerated violation(s)" if tolerated else ""
    return f"{label} conforms to {schema.describe()} ({len(schema.columns)} columns, n={n}{note})"


# --- the rules -------------------------------------------------------------------------------


def _violation(
    column: ColumnSchema, rule: Rule, series: pd.Series, mask: Any, expected: str
) -> Violation | None:
    count = int(mask.sum())
    if count == 0:
        return None
    examples, rows = _examples(series, mask)
    return Violation(column.name, rule, count, len(series), expected, examples, rows)


def _coerce(column: ColumnSchema, values: pd.Series) -> tuple[pd.Series | None, Any, str]:
    """Values as the schema's type (``None`` if none can be read) and the mask of unreadable ones."""
    none = pd.Series(False, index=values.index)
    if column.dtype in ("int", "float"):
        return _coerce_numbers(column, values, none)
    if column.dtype == "str":
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            return values.astype(str), ~none, f"text, got {values.dtype} values"
        return values.astype(str), none, "text"
    if column.dtype == "bool":
        return _coerce_booleans(values, none)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values, none, "timestamps"
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = stamps.isna()
    return stamps[~bad], bad, "timestamps"


def _coerce_numbers(
    column: ColumnSchema, values: pd.Series, none: pd.Series
) -> tuple[pd.Series | None, Any, str]:
    """Numbers as floats; an ``int`` column's fractions and infinities are of the wrong type."""
    expected = "whole numbers" if column.dtype == "int" else "numbers"
    if pd.api.types.is_bool_dtype(values):
        return None, ~none, f"{expected}, got booleans"
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        bad = none
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = numbers.isna()
    if column.dtype == "int":
        finite = numbers[~bad]
        frac = pd.Series(False, index=values.index)
        frac[~bad] = ~np.isfinite(finite) | (finite != np.floor(finite))
        bad = bad | frac
    return numbers[~bad], bad, expected


def _coerce_booleans(values: pd.Series, none: pd.Series) -> tuple[pd.Series | None, Any, str]:
    """Booleans, or the text ``true``/``false`` in any case."""
    if pd.api.types.is_bool_dtype(values):
        return values, none, "true/false"
    mapping: dict[Any, bool] = {True: True, False: False, "true": True, "false": False}
    keys = values.map(lambda v: v.lower() if isinstance(v, str) else v)
    mapped = keys.map(lambda v: mapping.get(v) if isinstance(v, str | int | float) else None)
    bad = mapped.isna()
    return mapped[~bad], bad, "true/false"


def _range_violation(column: ColumnSchema, values: pd.Series, typed: pd.Series) -> Violation | None:
    if column.min is None and column.max is None:
        return None
    low, high = column.min, column.max
    if column.dtype == "datetime":
        low = pd.Timestamp(low) if low is not None else None
        high = pd.Timestamp(high) if high is not None else None
    elif column.dtype not in ("int", "float"):
        return None
    outside = pd.Series(False, index=values.index)
    if low is not None:
        outside[typed.index] |= typed < low
    if high is not None:
        outside[typed.index] |= typed > high
    bounds = f"[{column.min if low is not None else '-inf'}, {column.max if high is not None else 'inf'}]"
    return _violation(column, "in_range", values, outside, f"values in {bounds}")


def _set_violation(column: ColumnSchema, values: pd.Series, typed: pd.Series) -> Violation | None:
    if column.categories is None:
        return None
    allowed = pd.Series(column.categories, dtype=object)
    if column.dtype == "str":
        allowed = allowed.astype(str)
    outside = ~typed.isin(allowed.tolist())
    shown = ", ".join(repr(c) for c in column.categories[:8])
    more = f" (+{len(column.categories) - 8} more)" if len(column.categories) > 8 else ""
    return _violation(column, "in_set", values, outside, f"one of {shown}{more}")


# --- examples --------------------------------------------------------------------------------


def _examples(series: pd.Series, mask: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    picked = series[mask].head(N_EXAMPLES)
    values = tuple(_clipped(_plain(v)) for v in picked.tolist())
    rows = tuple(_plain(i) for i in picked.index.tolist())
    return values, rows


def _clipped(value: Any) -> Any:
    """A long text example shortened, saying how long it was.

    A result never carries a cell whole: it may be megabytes.
    """
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        return f"{value[: MAX_EXAMPLE_CHARS - 20]}... ({len(value)} characters)"
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, str | int | float | bool | type(None)):
        return str(value)
    return value
