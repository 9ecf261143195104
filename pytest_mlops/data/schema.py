"""Schemas: what the data must look like, inferred once, reviewed by a person, checked every run.

A :class:`Schema` lists each column with its type, nullability, range and quantiles, category set
and uniqueness. :func:`infer_schema` derives one from reference data; :meth:`Schema.save` writes it
as JSON (or YAML) that reads well in a merge request; :func:`check_schema` validates data lazily and lists
**every** violation (column, rule, count, examples and row labels), with tolerances where a rule
may hold only "mostly".

The file format (``schema_version`` 1)::

    {
      "schema_version": 1,
      "target": "income",
      "strict": true,
      "tolerance": {"in_range": 0.999, "in_set": 0.999},
      "columns": {
        "age": {"dtype": "int", "nullable": false, "min": 17, "max": 90,
                "quantiles": {"0.01": 17.0, "0.5": 37.0, "0.99": 74.0}},
        "sex": {"dtype": "str", "nullable": false, "categories": ["Female", "Male"]}
      }
    }
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pytest_mlops.data.dataset import Dataset
from pytest_mlops.errors import ConfigError, DataError, choices_text, did_you_mean
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SCHEMA_VERSION",
    "ColumnSchema",
    "Schema",
    "Violation",
    "check_schema",
    "infer_schema",
    "inferred_tolerance",
    "load_schema",
    "unseen_share",
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

#: Rules whose bounds :func:`infer_schema` estimates from a sample (see :func:`inferred_tolerance`).
INFERRED_RULES: tuple[Rule, ...] = ("in_range", "in_set")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
N_EXAMPLES = 5
_YAML_SUFFIXES = (".yaml", ".yml")

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
    """The expected columns of a dataset; see the module docstring for the file format.

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
        from pytest_mlops._version import __version__

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
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def to_yaml(self) -> str:
        """The schema as YAML (needs PyYAML: ``pip install 'pytest-mlops[yaml]'``)."""
        yaml = _yaml("writing a YAML schema")
        return str(
            yaml.safe_dump(
                self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False
            )
        )

    def save(self, path: str | Path) -> Path:
        """Write the schema for review: indented JSON, or YAML for a ``.yaml``/``.yml`` path."""
        from pytest_mlops._files import write_atomic

        path = Path(path)
        text = self.to_yaml() if path.suffix.lower() in _YAML_SUFFIXES else self.to_json()
        return write_atomic(path, text, what="the schema")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema file; every mistake is a :class:`ConfigError` naming the file and key."""
        return load_schema(path)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "schema") -> Schema:
        """Validate a parsed schema document (see the module docstring)."""
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


# --- file format -----------------------------------------------------------------------------


def load_schema(path: str | Path) -> Schema:
    """Read and validate a schema file written by :meth:`Schema.save` (or by hand)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"the schema file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{str(path)!r}: a schema file must be UTF-8 text") from None
    if path.suffix.lower() in _YAML_SUFFIXES:
        return _parse_schema(_read_yaml(path, text), str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{str(path)!r}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return _parse_schema(data, str(path))


def _yaml(what: str) -> Any:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise ConfigError(
            f"{what} needs PyYAML: pip install 'pytest-mlops[yaml]' (or use a .json schema file)"
        ) from None


def _read_yaml(path: Path, text: str) -> Any:
    yaml = _yaml(f"reading {str(path)!r}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{str(path)!r}: not valid YAML{where}: {problem}") from None


def _parse_schema(data: Any, source: str) -> Schema:
    where = repr(source) if source != "schema" else "the schema"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a schema must be a JSON object with 'columns'")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}{did_you_mean(key, _TOP_KEYS)}; "
                f"valid keys are {choices_text(_TOP_KEYS)}"
            )
    version = data.get("schema_version")
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
    return Schema(
        columns=tuple(_parse_column(name, spec, where) for name, spec in columns.items()),
        target=target,
        strict=strict,
        tolerance=_parse_tolerance(data.get("tolerance", {}), f"{where} 'tolerance'"),
        n_rows=n_rows,
        source=source if source != "schema" else None,
    )


def _parse_column(name: str, spec: Any, where: str) -> ColumnSchema:
    here = f"{where} column {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{here}: must be an object of rules, got {spec!r}")
    for key in spec:
        if key not in _COLUMN_KEYS:
            raise ConfigError(
                f"{here}: unknown key {key!r}{did_you_mean(key, _COLUMN_KEYS)}; "
                f"valid keys are {choices_text(_COLUMN_KEYS)}"
            )
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
        raise ConfigError(
            f"{here}: 'dtype' must be {choices_text(DTYPES)}, got {dtype!r}"
            + (did_you_mean(dtype, DTYPES) if isinstance(dtype, str) else "")
        )
    flags = {}
    for key, default in (("nullable", True), ("required", True), ("unique", False)):
        value = spec.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{here}: {key!r} must be true or false, got {value!r}")
        flags[key] = value
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
    quantiles = spec.get("quantiles", {})
    if not isinstance(quantiles, Mapping) or not all(_is_number(v) for v in quantiles.values()):
        raise ConfigError(f"{here}: 'quantiles' must map levels to numbers, e.g. {{\"0.5\": 37}}")
    categories = spec.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(
            isinstance(v, str | int | float | bool) for v in categories
        ):
            raise ConfigError(f"{here}: 'categories' must be a list of values, got {categories!r}")
        categories = tuple(categories)
    return ColumnSchema(
        name=name,
        dtype=dtype,
        min=bounds["min"],
        max=bounds["max"],
        quantiles={str(k): float(v) for k, v in quantiles.items()},
        categories=categories,
        mostly=_parse_tolerance(spec.get("mostly", {}), f"{here} 'mostly'"),
        **flags,
    )


def _parse_tolerance(value: Any, where: str) -> dict[str, float]:
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


# --- inference -------------------------------------------------------------------------------


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
    frame, target, _ = _frame_of(data, target)
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


def _frame_of(
    data: Dataset | pd.DataFrame, target: str | None
) -> tuple[pd.DataFrame, str | None, str]:
    import pandas as pd

    if isinstance(data, Dataset):
        return data.frame, target or data.target, data.describe()
    if isinstance(data, pd.DataFrame):
        if target is not None and target not in data.columns:
            cols = [str(c) for c in data.columns]
            raise DataError(f"the data has no target column {target!r}{did_you_mean(target, cols)}")
        return data, target, "the data"
    raise DataError(f"expected a Dataset or a pandas DataFrame, got {type(data).__name__}")


def _rare_category_tolerance(column: ColumnSchema, series: pd.Series, n: int) -> ColumnSchema:
    """A column whose categories are rare gets its own, looser ``in_set`` tolerance."""
    if column.categories is None:
        return column
    mostly = _as_mostly(unseen_share(series.dropna().astype(str).value_counts().tolist()))
    if mostly >= inferred_tolerance(n):
        return column
    return replace(column, mostly={**column.mostly, "in_set": mostly})


def _logical_dtype(series: pd.Series) -> DType:
    import pandas as pd

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
        numbers = values.astype("float64")
        quantiles = numbers.quantile(list(QUANTILES)).to_numpy()
        cast = int if dtype == "int" else float
        return ColumnSchema(
            name=name,
            dtype=dtype,
            nullable=nullable,
            min=cast(numbers.min()),
            max=cast(numbers.max()),
            quantiles={
                f"{q:g}": _round(float(v)) for q, v in zip(QUANTILES, quantiles, strict=True)
            },
            unique=unique,
        )
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


def _round(value: float) -> float:
    return float(f"{value:.6g}")


# --- validation ------------------------------------------------------------------------------


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
    frame, _, label = _frame_of(data, None)
    if not frame.index.is_unique:  # rows are named by position when labels repeat
        frame = frame.reset_index(drop=True)
    rule_mostly = _mostly_arg(mostly)
    violations = _structural_violations(frame, schema)
    for column in schema.columns:
        if column.name in frame.columns:
            found = _column_violations(column, frame[column.name])
            violations += [_with_tolerance(v, column, schema, rule_mostly) for v in found]
    return _schema_result(violations, frame, schema, label, name)


def _mostly_arg(mostly: float | Mapping[str, float] | None) -> dict[str, float]:
    if mostly is None:
        return {}
    if isinstance(mostly, Mapping):
        return _parse_tolerance(mostly, "check_schema(mostly=...)")
    return _parse_tolerance(dict.fromkeys(TOLERANT_RULES, mostly), "check_schema(mostly=...)")


def _with_tolerance(
    violation: Violation, column: ColumnSchema, schema: Schema, arg: Mapping[str, float]
) -> Violation:
    rule = violation.rule
    if rule not in TOLERANT_RULES:
        return violation
    for layer in (column.mostly, arg, schema.tolerance):
        if rule in layer:
            return replace(violation, mostly=float(layer[rule]))
    return violation


def _structural_violations(frame: pd.DataFrame, schema: Schema) -> list[Violation]:
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


MAX_EXAMPLE_CHARS = 80


def _examples(series: pd.Series, mask: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    picked = series[mask].head(N_EXAMPLES)
    values = tuple(_clipped(_plain(v)) for v in picked.tolist())
    rows = tuple(_plain(i) for i in picked.index.tolist())
    return values, rows


def _clipped(value: Any) -> Any:
    """A long text example shortened, saying how long it was (a result never carries a cell
    whole: it may be megabytes)."""
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


def _violation(
    column: ColumnSchema, rule: Rule, series: pd.Series, mask: Any, expected: str
) -> Violation | None:
    count = int(mask.sum())
    if count == 0:
        return None
    examples, rows = _examples(series, mask)
    return Violation(column.name, rule, count, len(series), expected, examples, rows)


def _column_violations(column: ColumnSchema, series: pd.Series) -> list[Violation]:
    """Every rule *series* breaks. Rules run on the values the earlier rules could read."""
    import pandas as pd

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
        if column.categories is not None:
            allowed = pd.Series(column.categories, dtype=object)
            if column.dtype == "str":
                allowed = allowed.astype(str)
            outside = ~typed.isin(allowed.tolist())
            shown = ", ".join(repr(c) for c in column.categories[:8])
            more = f" (+{len(column.categories) - 8} more)" if len(column.categories) > 8 else ""
            found.append(_violation(column, "in_set", values, outside, f"one of {shown}{more}"))
        if column.unique:
            dup = typed.duplicated(keep=False)
            found.append(_violation(column, "unique", values, dup, "every value distinct"))
    return [v for v in found if v is not None]


def _coerce(column: ColumnSchema, values: pd.Series) -> tuple[pd.Series | None, Any, str]:
    """Values as the schema's type (``None`` if none can be read) and the mask of unreadable ones."""
    import numpy as np
    import pandas as pd

    api = pd.api.types
    none = pd.Series(False, index=values.index)
    if column.dtype in ("int", "float"):
        expected = "whole numbers" if column.dtype == "int" else "numbers"
        if api.is_bool_dtype(values):
            return None, ~none, f"{expected}, got booleans"
        if api.is_numeric_dtype(values):
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
    if column.dtype == "str":
        if api.is_numeric_dtype(values) or api.is_bool_dtype(values):
            return values.astype(str), ~none, f"text, got {values.dtype} values"
        return values.astype(str), none, "text"
    if column.dtype == "bool":
        if api.is_bool_dtype(values):
            return values, none, "true/false"
        mapping: dict[Any, bool] = {True: True, False: False, "true": True, "false": False}
        keys = values.map(lambda v: v.lower() if isinstance(v, str) else v)
        mapped = keys.map(lambda v: mapping.get(v) if isinstance(v, str | int | float) else None)
        bad = mapped.isna()
        return mapped[~bad], bad, "true/false"
    if api.is_datetime64_any_dtype(values):
        return values, none, "timestamps"
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = stamps.isna()
    return stamps[~bad], bad, "timestamps"


def _range_violation(column: ColumnSchema, values: pd.Series, typed: pd.Series) -> Violation | None:
    import pandas as pd

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


def _schema_result(
    violations: list[Violation], frame: pd.DataFrame, schema: Schema, label: str, name: str
) -> CheckResult:
    failed = [v for v in violations if v.failed]
    tolerated = [v for v in violations if not v.failed]
    n = len(frame)
    context: dict[str, str | int | float | bool | None] = {
        "n": n,
        "split": label,
        "schema": schema.source,
        "columns": len(schema.columns),
    }
    if failed:
        listed = "; ".join(v.text() for v in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        plural = "s" if len(failed) != 1 else ""
        message = (
            f"{len(failed)} violation{plural} of {schema.describe()} in {label} (n={n}): "
            f"{listed}{more}"
        )
    else:
        note = f", {len(tolerated)} tolerated violation(s)" if tolerated else ""
        message = (
            f"{label} conforms to {schema.describe()} ({len(schema.columns)} columns, n={n}{note})"
        )
    return CheckResult(
        name=name,
        kind="schema",
        status="failed" if failed else "passed",
        message=message,
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
