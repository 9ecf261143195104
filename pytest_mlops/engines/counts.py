"""Count-based checks on Spark and Dask: schema rules, integrity, group metrics.

Each partition runs the single-process code on its rows and sends back counts as JSON (no
pickle): per column the missing values and the rows breaking each schema rule (with a few
examples), or per group the confusion cells ``(label, decision)``. Counts add up, so the results
equal the single-process ones on the same rows:

- :func:`check_schema`: types, missing values, ranges, category sets, missing and extra columns -
  :func:`~pytest_mlops.data.schema.check_schema`'s violations and counts (``unique`` is not a
  count; it is left to :func:`check_integrity`'s hash pass on the whole row). Examples are
  values, not row labels: rows of a partitioned table have no global label.
- :func:`check_integrity`: duplicate rows by our row hash (the hashes are shuffled and counted
  by the engine; no row reaches the driver) and missing rates per column.
- :func:`group_metrics` / :func:`check_group_metrics`: accuracy, precision, recall (true
  positive rate), false positive rate and selection rate per group from the confusion cells, and
  the disparities fairlearn defines (demographic parity, equalized odds, equal opportunity).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from pytest_mlops.data.schema import (
    N_EXAMPLES,
    ColumnSchema,
    Schema,
    Violation,
    column_violations,
    load_schema,
    mostly_by_rule,
    schema_result,
    structural_violations,
    with_tolerance,
)
from pytest_mlops.errors import CheckError, DataError, did_you_mean
from pytest_mlops.results import CheckResult, format_value

__all__ = [
    "GroupMetrics",
    "check_group_metrics",
    "check_integrity",
    "check_schema",
    "group_metrics",
    "row_hashes",
]


def _engine(data: Any, what: str) -> Any:
    from pytest_mlops._engines import engine_for

    engine = engine_for(data)
    if engine is None:
        raise DataError(
            f"{what}: expected a Spark or Dask DataFrame, got {type(data).__name__} (for "
            "in-memory data use pytest_mlops.check_schema / check_integrity / check_fairness)"
        )
    return engine


def _columns(data: Any) -> list[str]:
    return [str(c) for c in data.columns]


def _run(data: Any, task: Any, payload: Mapping[str, Any], merge: Any, what: str) -> Any:
    engine = _engine(data, what)
    blob = engine.map_merge(data, task, json.dumps(payload).encode("utf-8"), merge)
    return json.loads(blob) if blob is not None else None


def _merge_json(add: Any) -> Any:
    def merge(*blobs: bytes) -> bytes:
        total = json.loads(blobs[0])
        for blob in blobs[1:]:
            total = add(total, json.loads(blob))
        return json.dumps(total).encode("utf-8")

    return merge


# --- schema ----------------------------------------------------------------------------------


def schema_task(frames: Iterable[pd.DataFrame], payload: bytes) -> bytes:
    """One partition's schema counts: rows, missing values, rule violations with examples."""
    schema = Schema.from_dict(json.loads(payload))
    total: dict[str, Any] = {"n": 0, "columns": {}}
    for frame in frames:
        total = _add_schema(total, _schema_counts(frame, schema))
    return json.dumps(total).encode("utf-8")


def _schema_counts(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(frame), "columns": {}}
    for column in schema.columns:
        if column.name not in frame.columns:
            continue
        series = frame[column.name]
        values = series.dropna()
        rules = {}
        for v in column_violations(replace(column, unique=False), values):
            rules[v.rule] = [v.count, v.n, v.expected, list(v.examples)]
        out["columns"][column.name] = {"nulls": int(len(series) - len(values)), "rules": rules}
    return out


def _add_schema(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    columns = dict(a["columns"])
    for name, theirs in b["columns"].items():
        mine = columns.get(name, {"nulls": 0, "rules": {}})
        rules = dict(mine["rules"])
        for rule, (count, n, expected, examples) in theirs["rules"].items():
            old = rules.get(rule, [0, 0, expected, []])
            rules[rule] = [old[0] + count, old[1] + n, expected, (old[3] + examples)[:N_EXAMPLES]]
        columns[name] = {"nulls": mine["nulls"] + theirs["nulls"], "rules": rules}
    return {"n": a["n"] + b["n"], "columns": columns}


_add_schema_bytes = _merge_json(_add_schema)


def check_schema(
    data: Any,
    schema: Schema | str,
    *,
    mostly: float | Mapping[str, float] | None = None,
    name: str = "schema",
) -> CheckResult:
    """:func:`~pytest_mlops.data.schema.check_schema` on a Spark or Dask DataFrame, by counts.

    The same violations, counts, tolerances and verdict as in one process, without row labels.
    """
    if not isinstance(schema, Schema):
        schema = load_schema(schema)
    payload = json.loads(schema.to_json())
    counts = _run(data, schema_task, payload, _add_schema_bytes, "check_schema")
    n = int(counts["n"]) if counts else 0
    present = _columns(data)
    rule_mostly = mostly_by_rule(mostly)
    structural = structural_violations(pd.DataFrame(columns=present), schema)
    violations = [replace(v, count=n, n=n) for v in structural]
    for column in schema.columns:
        found = (counts or {"columns": {}})["columns"].get(column.name)
        if found is not None:
            merged = _column_result(column, found, n)
            violations += [with_tolerance(v, column, schema, rule_mostly) for v in merged]
    label = f"the {_engine(data, 'check_schema').name.capitalize()} DataFrame"
    return schema_result(violations, pd.DataFrame(index=pd.RangeIndex(n)), schema, label, name)


def _column_result(column: ColumnSchema, found: Mapping[str, Any], n: int) -> list[Violation]:
    nulls = int(found["nulls"])
    if n and nulls == n:  # as in one process: listed, failed only for a non-nullable column
        return [
            Violation(
                column.name,
                "all_null",
                n,
                n,
                "at least one value (all are missing)",
                mostly=1.0 if not column.nullable else 0.0,
            )
        ]
    out: list[Violation] = []
    if not column.nullable and nulls:
        examples = (None,) * min(nulls, N_EXAMPLES)
        out.append(Violation(column.name, "not_null", nulls, n, "no missing values", examples))
    for rule, (count, _, expected, examples) in found["rules"].items():
        # the rules after not_null judge the values present (as in one process)
        out.append(Violation(column.name, rule, int(count), n - nulls, expected, tuple(examples)))
    return out


# --- integrity -------------------------------------------------------------------------------


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per row that does not depend on how a partition typed its columns.

    Numbers hash as float64 (an integer column with gaps reads as float in some partitions and
    not in others); everything else as text, missing values alike.
    """
    from pytest_mlops.checks.drift.check import column_kind

    canonical = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in columns:
        series = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        if column_kind(series) == "numeric":
            canonical[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = series.astype("string").to_numpy(dtype=object, na_value=None)
            canonical[name] = pd.Series(text, dtype=object)
    hashed: np.ndarray = pd.util.hash_pandas_object(canonical, index=False).to_numpy()
    return hashed


def _missing_task(frames: Iterable[pd.DataFrame], payload: bytes) -> bytes:
    columns = json.loads(payload)["columns"]
    n = 0
    missing: dict[str, int] = dict.fromkeys(columns, 0)
    for frame in frames:
        n += len(frame)
        for name in columns:
            missing[name] += int(frame[name].isna().sum())
    return json.dumps({"n": n, "missing": missing}).encode("utf-8")


def _add_missing(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    missing = {k: a["missing"][k] + b["missing"][k] for k in a["missing"]}
    return {"n": a["n"] + b["n"], "missing": missing}


def check_integrity(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    max_duplicate_share: float = 0.05,
    max_missing_share: float | None = None,
    name: str = "integrity",
) -> CheckResult:
    """Duplicate rows (by our row hash) and missing rates of a Spark or Dask DataFrame.

    ``duplicate_share`` equals :func:`~pytest_mlops.data.integrity.check_integrity`'s on the same
    rows (up to 64-bit hash collisions, about ``n^2 / 2^65``). Missing rates are listed per
    column and, with *max_missing_share*, held to it.
    """
    for key, value in (
        ("max_duplicate_share", max_duplicate_share),
        ("max_missing_share", max_missing_share),
    ):
        if value is not None and not 0.0 <= value <= 1.0:
            raise CheckError(f"check_integrity: {key!r} must be a share in [0, 1], got {value!r}")
    engine = _engine(data, "check_integrity")
    wanted = _wanted(data, columns, "check_integrity")
    counts = _run(
        data, _missing_task, {"columns": wanted}, _merge_json(_add_missing), "check_integrity"
    )
    n = int(counts["n"]) if counts else 0
    if n < 2:
        return CheckResult(
            name=name,
            kind="integrity",
            status="inconclusive",
            message=f"the {engine.name.capitalize()} DataFrame has {n} row: too few to judge",
            context={"n": n},
        )
    duplicates = engine.duplicate_rows(data, wanted)
    rates = {c: counts["missing"][c] / n for c in wanted}
    return _integrity_result(duplicates, n, rates, max_duplicate_share, max_missing_share, name)


def _wanted(data: Any, columns: Sequence[str] | None, what: str) -> list[str]:
    present = _columns(data)
    for column in columns or ():
        if column not in present:
            raise DataError(f"{what}: no column {column!r}{did_you_mean(column, present)}")
    return list(columns) if columns is not None else present


def _integrity_result(
    duplicates: int,
    n: int,
    rates: Mapping[str, float],
    max_duplicate_share: float,
    max_missing_share: float | None,
    name: str,
) -> CheckResult:
    share = duplicates / n
    failed = [f"duplicate_share must be <= {format_value(max_duplicate_share)}: measured "
              f"{format_value(share)} ({duplicates} repeated rows)"] if share > max_duplicate_share else []  # fmt: skip
    worst = max(rates, key=lambda c: rates[c]) if rates else None
    if max_missing_share is not None and worst is not None and rates[worst] > max_missing_share:
        over = [c for c in rates if rates[c] > max_missing_share]
        failed.append(
            f"missing_share must be <= {format_value(max_missing_share)}: measured "
            f"{format_value(rates[worst])} in {worst!r} ({len(over)} column(s) over)"
        )
    message = (
        "; ".join(failed)
        if failed
        else (
            f"no more than {format_value(max_duplicate_share)} duplicate rows (measured "
            f"{format_value(share)})"
        )
    )
    return CheckResult(
        name=name,
        kind="integrity",
        status="failed" if failed else "passed",
        message=f"{message} (n={n})",
        metric="duplicate_share",
        value=share,
        op="<=",
        bound=max_duplicate_share,
        metrics={
            "duplicate_share": share,
            "duplicates": float(duplicates),
            "max_missing_share": rates[worst] if worst is not None else 0.0,
        },
        context={"n": n},
        tables={"missing": [{"column": c, "missing_share": round(r, 9)} for c, r in rates.items()]},
    )


# --- group metrics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMetrics:
    """Per-group rates from confusion cells, and the disparities between the groups.

    ``cells[g]`` counts the rows of group ``groups[g]`` by (label, decision): 00, 01, 10, 11.
    ``by_group[metric]`` is aligned with ``groups`` (NaN where undefined: no positives for
    ``recall``, no negatives for ``false_positive_rate``, no positive decisions for ``precision``).
    """

    groups: tuple[str, ...]
    cells: np.ndarray
    by_group: Mapping[str, np.ndarray]
    disparities: Mapping[str, float]

    def rows(self) -> list[dict[str, Any]]:
        """One row per group (a result table)."""
        out = []
        for g, group in enumerate(self.groups):
            row: dict[str, Any] = {"group": group, "n": int(self.cells[g].sum())}
            row |= {k: _num(float(v[g])) for k, v in self.by_group.items()}
            out.append(row)
        return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def group_task(frames: Iterable[pd.DataFrame], payload: bytes) -> bytes:
    """One partition's confusion cells per group (group key -> [c00, c01, c10, c11])."""
    spec = json.loads(payload)
    cells: dict[str, list[int]] = {}
    for frame in frames:
        cells = _add_cells(cells, _cells(frame, spec))
    return json.dumps(cells).encode("utf-8")


def _cells(frame: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, list[int]]:

    if len(frame) == 0:
        return {}
    y = _binary(frame[spec["y_true"]], spec["positive"], spec["y_true"])
    pred = _binary(frame[spec["y_pred"]], spec["positive"], spec["y_pred"])
    keys = _group_keys(frame, spec["sensitive"])
    codes, names = _factorize(keys)
    counts = np.bincount(codes * 4 + y * 2 + pred, minlength=4 * len(names)).reshape(-1, 4)
    return {name: [int(v) for v in counts[i]] for i, name in enumerate(names)}


def _factorize(keys: pd.Series) -> tuple[np.ndarray, list[str]]:

    codes, uniques = pd.factorize(keys)
    return codes, [str(u) for u in uniques]


def _group_keys(frame: pd.DataFrame, sensitive: Sequence[str]) -> pd.Series:
    parts = [frame[c].astype("string").fillna("(missing)") for c in sensitive]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + " & " + part
    return keys


def _binary(series: pd.Series, positive: Any, column: str) -> np.ndarray:

    if bool(series.isna().any()):
        raise DataError(f"group metrics: column {column!r} has missing values")
    values: np.ndarray = (series.astype(str) == str(positive)).to_numpy(dtype=np.int64)
    return values


def _add_cells(a: Mapping[str, list[int]], b: Mapping[str, list[int]]) -> dict[str, list[int]]:
    out = {k: list(v) for k, v in a.items()}
    for key, cells in b.items():
        mine = out.setdefault(key, [0, 0, 0, 0])
        for i in range(4):
            mine[i] += cells[i]
    return out


def group_metrics(
    data: Any,
    *,
    y_true: str,
    y_pred: str,
    sensitive: str | Sequence[str],
    positive: Any = 1,
) -> GroupMetrics:
    """Rates per group of a binary decision and the fairlearn disparities, from counts.

    Parameters
    ----------
    data:
        A Spark or Dask DataFrame holding the labels, the decisions and the sensitive features.
    y_true, y_pred:
        The label and decision columns; *positive* is the positive value (compared as text).
    sensitive:
        One column, or several (their values joined with ``" & "``: intersectional groups).
    """
    from pytest_mlops.checks.fairness import STANDARD_DISPARITIES
    from pytest_mlops.checks.fairness_stats import rates

    columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    _wanted(data, [y_true, y_pred, *columns], "group metrics")
    spec = {"y_true": y_true, "y_pred": y_pred, "sensitive": columns, "positive": str(positive)}
    found = _run(data, group_task, spec, _merge_json(_add_cells), "group metrics") or {}
    if not found:
        raise DataError("group metrics: the data has no rows")
    groups = tuple(sorted(found))
    cells = np.array([found[g] for g in groups], dtype=np.float64)
    stats = rates(cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = cells[:, 3] / (cells[:, 1] + cells[:, 3])
    by_group = {
        "accuracy": stats["accuracy"],
        "precision": precision,
        "recall": stats["tpr"],
        "false_positive_rate": stats["fpr"],
        "selection_rate": stats["selection_rate"],
    }
    disparities = {k: float(d.of(stats)) for k, d in STANDARD_DISPARITIES.items()}
    return GroupMetrics(groups, cells.astype(np.int64), by_group, disparities)


def check_group_metrics(
    data: Any,
    *,
    y_true: str,
    y_pred: str,
    sensitive: str | Sequence[str],
    metric: str = "demographic_parity_ratio",
    min: float | None = None,
    max: float | None = None,
    positive: Any = 1,
    name: str = "fairness",
) -> CheckResult:
    """A disparity of :func:`group_metrics` held to *min* and/or *max* (point value, no interval)."""
    from pytest_mlops.checks.fairness import STANDARD_DISPARITIES

    if metric not in STANDARD_DISPARITIES:
        raise CheckError(
            f"unknown disparity {metric!r}{did_you_mean(metric, STANDARD_DISPARITIES)}; choose "
            f"one of {', '.join(STANDARD_DISPARITIES)}"
        )
    if min is None and max is None:
        raise CheckError(f"check_group_metrics: give 'min' or 'max' for {metric!r}")
    found = group_metrics(
        data, y_true=y_true, y_pred=y_pred, sensitive=sensitive, positive=positive
    )
    value = found.disparities[metric]
    ok = not math.isnan(value) and (min is None or value >= min) and (max is None or value <= max)
    op: Literal[">=", "<="] = ">=" if min is not None else "<="
    bound = min if min is not None else max
    return CheckResult(
        name=name,
        kind="fairness",
        status="passed" if ok else "failed",
        message=f"{metric} must be {op} {format_value(bound)}: measured {format_value(value)} "
        f"({len(found.groups)} groups, n={int(found.cells.sum())})",
        metric=metric,
        value=value,
        op=op,
        bound=bound,
        metrics=dict(found.disparities),
        context={"n": int(found.cells.sum()), "groups": len(found.groups)},
        tables={"groups": found.rows()},
    )
