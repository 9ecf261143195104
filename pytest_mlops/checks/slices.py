"""Slices of a dataset: one per value of a column, or declared by a small expression.

An expression is one or more comparisons joined by ``and``::

    age >= 60
    sex == 'Female'
    race in ['Black', 'Other'] and age < 30
    `hours per week` > 40

A comparison is ``column op value`` with ``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``, ``in`` or
``not in``; a value is a Python literal (a number, a quoted string, a list) or a bare word, read as
a string. Nothing is evaluated as code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_mlops.errors import CheckError, DataError, did_you_mean

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset

__all__ = ["Clause", "Slice", "parse_slice", "slice_rows"]

MAX_SLICE_VALUES = 50

_CLAUSE = re.compile(
    r"""\s*(?P<col>`[^`]+`|[A-Za-z_]\w*)\s*
        (?P<op>==|!=|>=|<=|>|<|not\s+in\b|in\b)\s*
        (?P<val>'[^']*'|"[^"]*"|\[[^\]]*\]|\([^)]*\)|[\w.+-]+)\s*""",
    re.VERBOSE,
)
_AND = re.compile(r"and\b\s*")


@dataclass(frozen=True)
class Clause:
    """One comparison of a slice expression."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class Slice:
    """A named subset of rows."""

    label: str
    mask: np.ndarray

    @property
    def n(self) -> int:
        return int(self.mask.sum())


def parse_slice(expression: str) -> tuple[Clause, ...]:
    """Parse ``"age >= 60 and sex == 'Female'"``; a CheckError shows where it went wrong."""
    clauses: list[Clause] = []
    pos = 0
    text = expression.strip()
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise CheckError(
                f"slice {expression!r}: expected 'column op value' at {text[pos:]!r} "
                '(op is ==, !=, >=, <=, >, <, in or not in; e.g. "age >= 60")'
            )
        column = match["col"].strip("`")
        op = " ".join(match["op"].split())
        clauses.append(Clause(column, op, _literal(match["val"], op, expression)))
        pos = match.end()
        if pos == len(text):
            return tuple(clauses)
        joined = _AND.match(text, pos)
        if joined is None:
            raise CheckError(f"slice {expression!r}: expected 'and' or the end at {text[pos:]!r}")
        pos = joined.end()


def _literal(text: str, op: str, expression: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word such as Female
    if op in ("in", "not in") and not isinstance(value, list | tuple | set):
        raise CheckError(f"slice {expression!r}: {op!r} needs a list, e.g. ['a', 'b']")
    return value


def _column(data: Dataset, column: str, where: str) -> Any:
    columns = [str(c) for c in data.frame.columns]
    if column not in columns:
        raise DataError(
            f"{where}: {data.describe()} has no column {column!r}"
            f"{did_you_mean(column, columns)}; its columns are {columns[:30]}"
        )
    return data.frame[column]


def _clause_mask(data: Dataset, clause: Clause, expression: str) -> np.ndarray:

    series = _column(data, clause.column, f"slice {expression!r}")
    try:
        if clause.op in ("in", "not in"):
            mask = series.isin(list(clause.value)).to_numpy()
            return np.asarray(~mask if clause.op == "not in" else mask, dtype=bool)
        compare = {
            "==": series.__eq__,
            "!=": series.__ne__,
            ">=": series.__ge__,
            "<=": series.__le__,
            ">": series.__gt__,
            "<": series.__lt__,
        }[clause.op]
        return np.asarray(compare(clause.value).fillna(False).to_numpy(), dtype=bool)
    except TypeError:
        raise DataError(
            f"slice {expression!r}: cannot compare the column {clause.column!r} "
            f"({series.dtype}) with {clause.value!r}"
        ) from None


def _by_column(data: Dataset, column: str) -> list[Slice]:

    series = _column(data, column, f"slice_by {column!r}")
    values = series.dropna().unique()
    if len(values) > MAX_SLICE_VALUES:
        raise CheckError(
            f"slice_by {column!r}: the column has {len(values)} distinct values (at most "
            f'{MAX_SLICE_VALUES}); declare ranges as slices instead, e.g. "{column} >= 60"'
        )
    try:
        values = sorted(values)
    except TypeError:
        values = sorted(values, key=str)
    return [
        Slice(f"{column}={value}", np.asarray((series == value).to_numpy(), dtype=bool))
        for value in values
    ]


def slice_rows(
    data: Dataset, *, slice_by: str | Sequence[str] | None = None, slices: Sequence[str] = ()
) -> list[Slice]:
    """The slices of *data*: one per value of each ``slice_by`` column, then each expression."""
    columns = [slice_by] if isinstance(slice_by, str) else list(slice_by or ())
    out = [s for column in columns for s in _by_column(data, column)]
    for expression in slices:
        mask = np.ones(data.n_rows, dtype=bool)
        for clause in parse_slice(expression):
            mask &= _clause_mask(data, clause, expression)
        out.append(Slice(expression.strip(), mask))
    return out
