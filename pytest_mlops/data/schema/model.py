"""What a schema is: its columns and rules, the violations found, and its document form.

The document form is the mapping a schema file holds (see :mod:`pytest_mlops.data.schema` for the
format); :meth:`Schema.from_dict` validates one, naming the file and the key of every mistake.
Reading and writing the files themselves (JSON or YAML) is :mod:`pytest_mlops.data.schema.files`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pytest_mlops._files import write_atomic
from pytest_mlops._version import __version__
from pytest_mlops.data.schema.files import is_yaml_path, json_text, read_document, yaml_text
from pytest_mlops.errors import ConfigError, choices_text, did_you_mean

__all__ = [
    "DTYPES",
    "INFERRED_RULES",
    "RULES",
    "SCHEMA_VERSION",
    "TOLERANT_RULES",
    "ColumnSchema",
    "DType",
    "Rule",
    "Scalar",
    "Schema",
    "Violation",
    "load_schema",
    "parse_tolerance",
]

SCHEMA_VERSION = 1

DType = Literal["int", "float", "bool", "str", "datetime"]
DTYPES: tuple[DType, ...] = get_args(DType)

Rule = Literal[
    "missing_column",
    "extra_column",
    "all_null",
    "not_null",
    "dtype",
    "in_range",
    "in_set",
    "unique",
]
RULES: tuple[Rule, ...] = get_args(Rule)
#: Rules a ``mostly`` tolerance applies to; the structural ones always count in full.
TOLERANT_RULES: tuple[Rule, ...] = ("not_null", "dtype", "in_range", "in_set", "unique")

#: Rules whose bounds :func:`~pytest_mlops.data.schema.infer_schema` estimates from a sample (see
#: :func:`~pytest_mlops.data.schema.inferred_tolerance`).
INFERRED_RULES: tuple[Rule, ...] = ("in_range", "in_set")

_COLUMN_KEYS = (
    "dtype",
    "nullable",
    "required",
    "min",
    "max",
    "quantiles",
    "categories",
    "unique",
    "mostly",
)
_TOP_KEYS = ("schema_version", "target", "strict", "tolerance", "columns", "n_rows", "generator")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class ColumnSchema:
    """What one column must look like.

    Parameters
    ----------
    name:
        The column name.
    dtype:
        ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"datetime"``. An ``int`` column accepts
        floats with whole values (a CSV column with gaps reads as float); numeric columns that hold
        text are reported value by value under the ``dtype`` rule.
    nullable:
        Whether missing values are allowed.
    required:
        Whether the column must be present.
    min, max:
        Inclusive bounds of the values (numbers; ISO timestamps for ``datetime``).
    quantiles:
        Quantiles seen in the reference data (``{"0.5": 37.0}``), recorded for review and for drift
        monitoring; not checked here.
    categories:
        The allowed values, or ``None`` for any value.
    unique:
        Whether every value must differ from the others (an id column).
    mostly:
        Per-rule tolerances for this column, e.g. ``{"in_range": 0.99}``.
    """

    name: str
    dtype: DType
    nullable: bool = True
    required: bool = True
    min: Scalar | None = None
    max: Scalar | None = None
    quantiles: Mapping[str, float] = field(default_factory=dict)
    categories: tuple[Scalar, ...] | None = None
    unique: bool = False
    mostly: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype, "nullable": self.nullable}
        if not self.required:
            out["required"] = False
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.quantiles:
            out["quantiles"] = dict(self.quantiles)
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.unique:
            out["unique"] = True
        if self.mostly:
            out["mostly"] = dict(self.mostly)
        return out


@dataclass(frozen=True)
class Schema:
    """The expected columns of a dataset; see :mod:`pytest_mlops.data.schema` for the file format.

    Parameters
    ----------
    columns:
        One :class:`ColumnSchema` per column, in order.
    target:
        The label column, if the data has one (used to tell features from the target).
    strict:
        Whether columns the schema does not list are violations (``extra_column``).
    tolerance:
        Schema-wide tolerances per rule, e.g. ``{"in_range": 0.999}``.
    n_rows:
        How many rows the schema was inferred from (for the reviewer).
    """

    columns: tuple[ColumnSchema, ...]
    target: str | None = None
    strict: bool = True
    tolerance: Mapping[str, float] = field(default_factory=dict)
    n_rows: int | None = None
    source: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every column but the target."""
        return tuple(c.name for c in self.columns if c.name != self.target)

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"the schema has no column {name!r}{did_you_mean(name, self.names)}")

    def describe(self) -> str:
        return f"schema {Path(self.source).name!r}" if self.source else "schema"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        out["generator"] = f"pytest-mlops {__version__}"
        if self.n_rows is not None:
            out["n_rows"] = self.n_rows
        out["target"] = self.target
        out["strict"] = self.strict
        out["tolerance"] = dict(self.tolerance)
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        return out

    def to_json(self) -> str:
        return json_text(self.to_dict())

    def to_yaml(self) -> str:
        """The schema as YAML (needs PyYAML: ``pip install 'pytest-mlops[yaml]'``)."""
        return yaml_text(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write the schema for review: indented JSON, or YAML for a ``.yaml``/``.yml`` path."""
        path = Path(path)
        text = self.to_yaml() if is_yaml_path(path) else self.to_json()
        return write_atomic(path, text, what="the schema")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema file; every mistake is a :class:`ConfigError` naming the file and key."""
        return load_schema(path)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "schema") -> Schema:
        """Validate a parsed schema document (see :mod:`pytest_mlops.data.schema`)."""
        return _parse_schema(data, source)


@dataclass(frozen=True)
class Violation:
    """Rows of one column that break one rule."""

    column: str
    rule: Rule
    count: int
    n: int
    expected: str
    examples: tuple[Any, ...] = ()
    rows: tuple[Any, ...] = ()
    mostly: float = 1.0

    @property
    def fraction(self) -> float:
        return self.count / self.n if self.n else 1.0

    @property
    def failed(self) -> bool:
        """Whether the violation exceeds its tolerance (``mostly``)."""
        return self.count > 0 and (1.0 - self.fraction) < self.mostly

    def text(self) -> str:
        share = f" ({self.fraction:.2%})" if self.rule in TOLERANT_RULES else ""
        examples = f", e.g. {list(self.examples)!r}" if self.examples else ""
        rows = f" at rows {list(self.rows)!r}" if self.rows else ""
        tolerated = "" if self.failed else f" [tolerated: mostly={self.mostly:g}]"
        if self.rule == "all_null" and not self.failed:
            tolerated = " [listed, not failed: the column is nullable]"
        what = f"{self.count} of {self.n} rows{share}" if self.rule in TOLERANT_RULES else ""
        return f"{self.column!r} {self.rule}: {what}{', ' if what else ''}expected {self.expected}{examples}{rows}{tolerated}"

    def to_row(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "rule": self.rule,
            "count": self.count,
            "fraction": round(self.fraction, 6),
            "mostly": self.mostly,
            "status": "failed" if self.failed else "tolerated",
            "expected": self.expected,
            "examples": ", ".join(repr(v) for v in self.examples),
            "rows": ", ".join(str(r) for r in self.rows),
        }


def load_schema(path: str | Path) -> Schema:
    """Read and validate a schema file written by :meth:`Schema.save` (or by hand).

    Parameters
    ----------
    path:
        A JSON file, or a YAML one (``.yaml``/``.yml``, needs PyYAML).

    Returns
    -------
    Schema
        The schema, with :attr:`Schema.source` set to *path*.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable or not a valid schema; the message names the file
        and the key.
    """
    path = Path(path)
    return _parse_schema(read_document(path), str(path))


# --- the document form ---------------------------------------------------------------------------


def _parse_schema(data: Any, source: str) -> Schema:
    where = repr(source) if source != "schema" else "the schema"
    _check_document(data, where)
    columns = data["columns"]
    return Schema(
        columns=tuple(_parse_column(name, spec, where) for name, spec in columns.items()),
        target=data.get("target"),
        strict=data.get("strict", True),
        tolerance=parse_tolerance(data.get("tolerance", {}), f"{where} 'tolerance'"),
        n_rows=data.get("n_rows"),
        source=source if source != "schema" else None,
    )


def _check_document(data: Any, where: str) -> None:
    """The top level of a schema document: known keys, the version, the columns and flags."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a schema must be a JSON object with 'columns'")
    _check_keys(data, _TOP_KEYS, where)
    _check_version(data.get("schema_version"), where)
    columns = data.get("columns")
    if not isinstance(columns, Mapping) or not columns:
        raise ConfigError(f"{where}: 'columns' must be a non-empty object of column -> rules")
    target = data.get("target")
    if target is not None and (not isinstance(target, str) or target not in columns):
        raise ConfigError(
            f"{where}: 'target' must name one of the columns, got {target!r}"
            + (did_you_mean(target, columns) if isinstance(target, str) else "")
        )
    strict = data.get("strict", True)
    if not isinstance(strict, bool):
        raise ConfigError(f"{where}: 'strict' must be true or false, got {strict!r}")
    n_rows = data.get("n_rows")
    if n_rows is not None and (not isinstance(n_rows, int) or isinstance(n_rows, bool)):
        raise ConfigError(f"{where}: 'n_rows' must be a whole number, got {n_rows!r}")


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}{did_you_mean(key, known)}; "
                f"valid keys are {choices_text(known)}"
            )


def _check_version(version: Any, where: str) -> None:
    if version is None:
        raise ConfigError(
            f"{where}: no 'schema_version'; is this a pytest-mlops schema file? "
            f'(expected "schema_version": {SCHEMA_VERSION})'
        )
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"{where}: schema_version {version!r} is not supported; this pytest-mlops reads "
            f"version {SCHEMA_VERSION} (a newer file needs a newer pytest-mlops)"
        )


def _parse_column(name: str, spec: Any, where: str) -> ColumnSchema:
    here = f"{where} column {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{here}: must be an object of rules, got {spec!r}")
    _check_keys(spec, _COLUMN_KEYS, here)
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
        raise ConfigError(
            f"{here}: 'dtype' must be {choices_text(DTYPES)}, got {dtype!r}"
            + (did_you_mean(dtype, DTYPES) if isinstance(dtype, str) else "")
        )
    flags = _column_flags(spec, here)
    bounds = _column_bounds(spec, dtype, here)
    quantiles = spec.get("quantiles", {})
    if not isinstance(quantiles, Mapping) or not all(_is_number(v) for v in quantiles.values()):
        raise ConfigError(f"{here}: 'quantiles' must map levels to numbers, e.g. {{\"0.5\": 37}}")
    categories = _column_categories(spec.get("categories"), here)
    return ColumnSchema(
        name=name,
        dtype=dtype,
        min=bounds["min"],
        max=bounds["max"],
        quantiles={str(k): float(v) for k, v in quantiles.items()},
        categories=categories,
        mostly=parse_tolerance(spec.get("mostly", {}), f"{here} 'mostly'"),
        **flags,
    )


def _column_flags(spec: Mapping[str, Any], here: str) -> dict[str, bool]:
    flags = {}
    for key, default in (("nullable", True), ("required", True), ("unique", False)):
        value = spec.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{here}: {key!r} must be true or false, got {value!r}")
        flags[key] = value
    return flags


def _column_bounds(spec: Mapping[str, Any], dtype: DType, here: str) -> dict[str, Any]:
    bounds = {}
    for key in ("min", "max"):
        value = spec.get(key)
        if value is not None:
            ok = isinstance(value, str) if dtype == "datetime" else _is_number(value)
            if not ok:
                kind = "an ISO timestamp string" if dtype == "datetime" else "a number"
                raise ConfigError(f"{here}: {key!r} must be {kind}, got {value!r}")
        bounds[key] = value
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise ConfigError(f"{here}: 'min' ({bounds['min']!r}) is above 'max' ({bounds['max']!r})")
    return bounds


def _column_categories(categories: Any, here: str) -> tuple[Scalar, ...] | None:
    if categories is None:
        return None
    if not isinstance(categories, list) or not all(
        isinstance(v, str | int | float | bool) for v in categories
    ):
        raise ConfigError(f"{here}: 'categories' must be a list of values, got {categories!r}")
    return tuple(categories)


def parse_tolerance(value: Any, where: str) -> dict[str, float]:
    """Validate tolerances: a mapping of tolerant rules to the share of rows that must hold them.

    Parameters
    ----------
    value:
        The mapping to check, e.g. ``{"in_range": 0.99}``.
    where:
        What the error messages name (the file and key, or the argument).

    Returns
    -------
    dict
        Rule -> fraction in [0, 1].

    Raises
    ------
    ConfigError
        When *value* is not a mapping, names a rule that takes no tolerance, or holds a fraction
        outside [0, 1].
    """
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where}: must map rules to fractions, e.g. {{"in_range": 0.99}}')
    out: dict[str, float] = {}
    for rule, fraction in value.items():
        if rule not in TOLERANT_RULES:
            raise ConfigError(
                f"{where}: {rule!r} is not a rule that takes a tolerance"
                f"{did_you_mean(rule, TOLERANT_RULES)}; valid rules are {choices_text(TOLERANT_RULES)}"
            )
        if not _is_number(fraction) or not 0.0 <= float(fraction) <= 1.0:
            raise ConfigError(f"{where}: {rule!r} must be a fraction in [0, 1], got {fraction!r}")
        out[rule] = float(fraction)
    return out


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )
