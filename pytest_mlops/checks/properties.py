"""Property-based tests: Hypothesis strategies and ready-made properties of a model's outputs.

The strategies are built from a :class:`~pytest_mlops.data.schema.Schema`.

Strategies generate valid inputs, edge values included (the bounds and recorded quantiles, every
category with the same weight however rare, missing values where the schema allows them)::

    from hypothesis import given
    from pytest_mlops.checks.properties import frames, assert_probabilities

    @given(frames(schema, columns=schema.feature_names, max_size=30))
    def test_probabilities(frame):
        assert_probabilities(model, frame)

Each property is a ``check_*`` function returning a :class:`CheckResult` and an ``assert_*`` twin
that raises ``AssertionError`` with the same message, for use inside ``@given`` tests.
:func:`run_properties` runs a set of them under Hypothesis without pytest (the ``properties`` gate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pytest_mlops.data.schema import ColumnSchema, Schema
from pytest_mlops.errors import CheckError, DataError, did_you_mean
from pytest_mlops.results import CheckResult, format_value

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from pytest_mlops.models.base import Model

__all__ = [
    "assert_batch_invariance",
    "assert_invariance",
    "assert_monotonic",
    "assert_outputs_finite",
    "assert_probabilities",
    "assert_row_order_invariance",
    "check_batch_invariance",
    "check_invariance",
    "check_monotonic",
    "check_outputs_finite",
    "check_probabilities",
    "check_row_order_invariance",
    "column_values",
    "frames",
    "rows",
    "run_properties",
]

Direction = Literal["increasing", "decreasing"]
Perturbation = Callable[["pd.DataFrame"], "pd.DataFrame"] | Mapping[str, Any]
_UNBOUNDED = 1e6


# --- strategies ------------------------------------------------------------------------------


def column_values(column: ColumnSchema) -> SearchStrategy[Any]:
    """Values valid for *column*: half of the draws are edge values (bounds, quantiles).

    Missing values (``None``) are drawn where the column is nullable.
    """
    from hypothesis import strategies as st

    base = _base_values(column)
    return st.one_of(st.none(), base) if column.nullable else base


def _base_values(column: ColumnSchema) -> SearchStrategy[Any]:
    import datetime as dt

    from hypothesis import strategies as st

    if column.categories is not None:
        return st.sampled_from(list(column.categories))
    if column.dtype in ("int", "float"):
        low = float(column.min) if column.min is not None else -_UNBOUNDED
        high = float(column.max) if column.max is not None else _UNBOUNDED
        edges = sorted({low, high, *(q for q in column.quantiles.values() if low <= q <= high)})
        if column.dtype == "int":
            lo, hi = math.ceil(low), math.floor(high)
            ints = sorted({min(max(round(e), lo), hi) for e in edges})
            return st.one_of(st.sampled_from(ints), st.integers(lo, hi))
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
        return st.one_of(st.sampled_from(edges), floats)
    if column.dtype == "bool":
        return st.booleans()
    if column.dtype == "datetime":
        low_dt = (
            dt.datetime.fromisoformat(str(column.min)) if column.min else dt.datetime(1970, 1, 1)
        )
        high_dt = (
            dt.datetime.fromisoformat(str(column.max)) if column.max else dt.datetime(2100, 1, 1)
        )
        return st.datetimes(low_dt.replace(tzinfo=None), high_dt.replace(tzinfo=None))
    return st.text(max_size=30)


def _select(schema: Schema, columns: Sequence[str] | None) -> list[ColumnSchema]:
    if columns is None:
        return list(schema.columns)
    for name in columns:
        if name not in schema.names:
            raise DataError(
                f"{schema.describe()} has no column {name!r}{did_you_mean(name, schema.names)}"
            )
    return [schema[name] for name in columns]


def rows(schema: Schema, *, columns: Sequence[str] | None = None) -> SearchStrategy[dict[str, Any]]:
    """One valid row as a dict ``{column: value}`` (``None`` for a missing value).

    Parameters
    ----------
    schema:
        The schema the rows must satisfy.
    columns:
        Which columns to generate (default all; ``schema.feature_names`` for model inputs).
    """
    from hypothesis import strategies as st

    return st.fixed_dictionaries({c.name: column_values(c) for c in _select(schema, columns)})


def frames(
    schema: Schema,
    min_size: int = 1,
    max_size: int = 20,
    *,
    columns: Sequence[str] | None = None,
) -> SearchStrategy[pd.DataFrame]:
    """DataFrames of valid rows, typed as ``pandas.read_csv`` would type them.

    Integer columns with a missing value become float (as in a CSV), text columns use pandas'
    string dtype, missing values are NaN.
    """
    from hypothesis import strategies as st

    if min_size < 1 or max_size < min_size:
        raise CheckError(f"frames: need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    selected = _select(schema, columns)
    row = st.fixed_dictionaries({c.name: column_values(c) for c in selected})
    return st.lists(row, min_size=min_size, max_size=max_size).map(
        lambda items: to_frame(items, selected)
    )


def to_frame(items: Sequence[Mapping[str, Any]], columns: Sequence[ColumnSchema]) -> pd.DataFrame:
    """Rows (dicts) as a DataFrame with the dtypes the schema implies."""
    data: dict[str, Any] = {}
    for column in columns:
        values = [item[column.name] for item in items]
        if column.categories is not None and column.dtype == "str":
            data[column.name] = pd.array(values, dtype="str")
        elif column.dtype in ("int", "float"):
            data[column.name] = pd.to_numeric(pd.Series(values, dtype=object))
            if column.dtype == "float":
                data[column.name] = data[column.name].astype("float64")
        elif column.dtype == "str":
            data[column.name] = pd.array(values, dtype="str")
        elif column.dtype == "datetime":
            data[column.name] = pd.to_datetime(pd.Series(values, dtype=object))
        else:
            data[column.name] = pd.Series(values, dtype="boolean" if None in values else bool)
    return pd.DataFrame(data)


# --- properties ------------------------------------------------------------------------------


def _adapt(model: Any) -> Model:
    from pytest_mlops.models.load import load_model

    return load_model(model)


def _outputs(model: Model, frame: Any) -> np.ndarray:
    """Probabilities where the model has them, else predictions."""
    return np.asarray(model.predict_proba(frame) if model.has_proba else model.predict(frame))


def _result(
    name: str,
    ok: bool,
    message: str,
    *,
    metric: str,
    value: float,
    bound: float,
    n: int,
    model: Model,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> CheckResult:
    return CheckResult(
        name=name,
        kind="properties",
        status="passed" if ok else "failed",
        message=f"{message} (n={n}, model={model.name})",
        metric=metric,
        value=value,
        op="<=",
        bound=bound,
        metrics={metric: value},
        context={"n": n, "model": model.name},
        tables=dict(tables or {}),
    )


def check_outputs_finite(model: Any, frame: pd.DataFrame) -> CheckResult:
    """Predictions (and probabilities) have one entry per row and are finite numbers."""
    model = _adapt(model)
    n = len(frame)
    outputs = [("predict", np.asarray(model.predict(frame)))]
    if model.has_proba:
        outputs.append(("predict_proba", np.asarray(model.predict_proba(frame))))
    problems: list[str] = []
    bad = 0
    for what, out in outputs:
        if out.ndim not in (1, 2) or out.shape[0] != n:
            problems.append(f"{what} returned shape {out.shape} for {n} rows")
            continue
        if out.dtype.kind in "fc":
            count = int((~np.isfinite(out)).reshape(n, -1).any(axis=1).sum())
            if count:
                bad += count
                problems.append(f"{what} is not finite on {count} rows")
    if model.has_proba and model.classes is not None and not problems:
        k = outputs[1][1].shape[1] if outputs[1][1].ndim == 2 else 1
        if k != len(model.classes):
            problems.append(f"predict_proba has {k} columns for {len(model.classes)} classes")
    message = "outputs must be finite with one per row: " + (
        "; ".join(problems) if problems else "they are"
    )
    return _result(
        "outputs_finite",
        not problems,
        message,
        metric="bad_outputs",
        value=float(bad + (len(problems) if not bad else 0)),
        bound=0.0,
        n=n,
        model=model,
    )


def check_probabilities(model: Any, frame: pd.DataFrame, *, atol: float = 1e-6) -> CheckResult:
    """Probabilities lie in [0, 1] and each row sums to 1 (within *atol*)."""
    model = _adapt(model)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    if proba.ndim == 1:
        proba = proba.reshape(-1, 1)
    outside = (proba < -atol) | (proba > 1 + atol) | ~np.isfinite(proba)
    sums = np.abs(proba.sum(axis=1) - 1.0)
    bad_rows = outside.any(axis=1) | (sums > atol)
    worst = float(np.nanmax(np.where(np.isfinite(sums), sums, np.inf))) if len(sums) else 0.0
    count = int(bad_rows.sum())
    message = (
        f"probabilities must be in [0, 1] and sum to 1: {count} rows break it "
        f"(largest |sum-1| {format_value(worst)})"
    )
    rows_table = [
        {"row": int(i), "proba": [round(float(p), 6) for p in proba[i]]}
        for i in np.flatnonzero(bad_rows)[:5]
    ]
    return _result(
        "probabilities",
        count == 0,
        message,
        metric="bad_rows",
        value=float(count),
        bound=0.0,
        n=len(frame),
        model=model,
        tables={"rows": rows_table} if rows_table else None,
    )


def _difference(a: np.ndarray, b: np.ndarray) -> float:

    if a.shape != b.shape:
        return math.inf
    if a.dtype.kind in "fciub" and b.dtype.kind in "fciub":
        diff = np.abs(a.astype(float) - b.astype(float))
        return float(np.nanmax(diff)) if diff.size else 0.0
    return float((a != b).sum())


def check_row_order_invariance(
    model: Any, frame: pd.DataFrame, *, seed: int = 0, atol: float = 1e-9
) -> CheckResult:
    """Shuffling the rows shuffles the outputs the same way, and changes nothing else."""
    model = _adapt(model)
    order = np.random.default_rng(seed).permutation(len(frame))
    base = _outputs(model, frame)
    shuffled = _outputs(model, frame.iloc[order].reset_index(drop=True))
    diff = _difference(base[order], shuffled)
    return _result(
        "row_order_invariance",
        diff <= atol,
        f"outputs must not depend on row order: max |difference| {format_value(diff)} "
        f"(atol {format_value(atol)})",
        metric="max_abs_difference",
        value=diff,
        bound=atol,
        n=len(frame),
        model=model,
    )


def check_batch_invariance(
    model: Any, frame: pd.DataFrame, *, batch_size: int = 1, atol: float = 1e-9
) -> CheckResult:
    """Scoring in batches of *batch_size* gives the outputs of one call on all rows."""
    if batch_size < 1:
        raise CheckError(f"check_batch_invariance: 'batch_size' must be >= 1, got {batch_size}")
    model = _adapt(model)
    whole = _outputs(model, frame)
    parts = [
        _outputs(model, frame.iloc[i : i + batch_size]) for i in range(0, len(frame), batch_size)
    ]
    diff = _difference(whole, np.concatenate(parts))
    return _result(
        "batch_invariance",
        diff <= atol,
        f"outputs must not depend on the batch size: batches of {batch_size} differ from one "
        f"batch by {format_value(diff)} (atol {format_value(atol)})",
        metric="max_abs_difference",
        value=diff,
        bound=atol,
        n=len(frame),
        model=model,
    )


def _score(model: Model, frame: pd.DataFrame, output: int) -> np.ndarray:

    if model.has_proba:
        return np.asarray(model.predict_proba(frame), dtype=float)[:, output]
    return np.asarray(model.predict(frame), dtype=float)


def check_monotonic(
    model: Any,
    frame: pd.DataFrame,
    feature: str,
    *,
    direction: Direction = "increasing",
    step: float = 1.0,
    output: int = -1,
    atol: float = 1e-9,
) -> CheckResult:
    """Raising *feature* by *step* never lowers (``increasing``) or raises the score.

    The score is the probability of class ``classes[output]`` (the positive class by default) or
    the prediction of a regressor.
    """
    model = _adapt(model)
    if feature not in frame.columns:
        raise DataError(
            f"check_monotonic: the frame has no column {feature!r}"
            f"{did_you_mean(feature, [str(c) for c in frame.columns])}"
        )
    if direction not in ("increasing", "decreasing"):
        raise CheckError(
            f"check_monotonic: direction must be 'increasing' or 'decreasing', got {direction!r}"
        )
    raised = frame.copy()
    raised[feature] = raised[feature] + step
    before, after = _score(model, frame, output), _score(model, raised, output)
    change = after - before if direction == "increasing" else before - after
    wrong = np.flatnonzero(change < -atol)
    worst = float(-change.min()) if len(change) and change.min() < 0 else 0.0
    table = [
        {
            "row": int(i),
            feature: _plain(frame[feature].iloc[i]),
            "before": float(before[i]),
            "after": float(after[i]),
        }
        for i in wrong[:5]
    ]
    return _result(
        f"monotonic_{feature}",
        len(wrong) == 0,
        f"the score must be {direction} in {feature!r}: raising it by {format_value(step)} "
        f"moved the score the wrong way on {len(wrong)} rows (by up to {format_value(worst)})",
        metric="violating_rows",
        value=float(len(wrong)),
        bound=0.0,
        n=len(frame),
        model=model,
        tables={"rows": table} if table else None,
    )


def check_invariance(
    model: Any,
    frame: pd.DataFrame,
    perturb: Perturbation,
    *,
    atol: float = 1e-9,
    description: str | None = None,
) -> CheckResult:
    """A change that should not matter (*perturb*) leaves the outputs unchanged.

    *perturb* is a function ``frame -> frame`` or a mapping ``{column: new values}`` (a scalar or
    one value per row).
    """
    model = _adapt(model)
    if isinstance(perturb, Mapping):
        changed = frame.copy()
        for column, value in perturb.items():
            if column not in frame.columns:
                raise DataError(
                    f"check_invariance: the frame has no column {column!r}"
                    f"{did_you_mean(column, [str(c) for c in frame.columns])}"
                )
            changed[column] = value
        what = description or f"changing {', '.join(repr(c) for c in perturb)}"
    else:
        changed = perturb(frame.copy())
        what = description or str(getattr(perturb, "__name__", "the perturbation"))
    diff = _difference(_outputs(model, frame), _outputs(model, changed))
    return _result(
        "invariance",
        diff <= atol,
        f"outputs must not change under {what}: max |difference| {format_value(diff)} "
        f"(atol {format_value(atol)})",
        metric="max_abs_difference",
        value=diff,
        bound=atol,
        n=len(frame),
        model=model,
    )


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars unwrapped, missing values as None, others as text."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def _assert(result: CheckResult) -> None:
    if not result.passed:
        raise AssertionError(result.message)


def assert_outputs_finite(model: Any, frame: pd.DataFrame) -> None:
    """Raise ``AssertionError`` unless :func:`check_outputs_finite` passes."""
    _assert(check_outputs_finite(model, frame))


def assert_probabilities(model: Any, frame: pd.DataFrame, *, atol: float = 1e-6) -> None:
    """Raise ``AssertionError`` unless :func:`check_probabilities` passes."""
    _assert(check_probabilities(model, frame, atol=atol))


def assert_row_order_invariance(
    model: Any, frame: pd.DataFrame, *, seed: int = 0, atol: float = 1e-9
) -> None:
    """Raise ``AssertionError`` unless :func:`check_row_order_invariance` passes."""
    _assert(check_row_order_invariance(model, frame, seed=seed, atol=atol))


def assert_batch_invariance(
    model: Any, frame: pd.DataFrame, *, batch_size: int = 1, atol: float = 1e-9
) -> None:
    """Raise ``AssertionError`` unless :func:`check_batch_invariance` passes."""
    _assert(check_batch_invariance(model, frame, batch_size=batch_size, atol=atol))


def assert_monotonic(
    model: Any,
    frame: pd.DataFrame,
    feature: str,
    *,
    direction: Direction = "increasing",
    step: float = 1.0,
    output: int = -1,
    atol: float = 1e-9,
) -> None:
    """Raise ``AssertionError`` unless :func:`check_monotonic` passes."""
    _assert(
        check_monotonic(
            model, frame, feature, direction=direction, step=step, output=output, atol=atol
        )
    )


def assert_invariance(
    model: Any,
    frame: pd.DataFrame,
    perturb: Perturbation,
    *,
    atol: float = 1e-9,
    description: str | None = None,
) -> None:
    """Raise ``AssertionError`` unless :func:`check_invariance` passes."""
    _assert(check_invariance(model, frame, perturb, atol=atol, description=description))


# --- running properties under Hypothesis -----------------------------------------------------


class _PropertyFailed(AssertionError):
    def __init__(self, result: CheckResult, frame: pd.DataFrame) -> None:
        super().__init__(result.message)
        self.result = result
        self.frame = frame


PROPERTIES = ("outputs_finite", "probabilities", "row_order", "batch")


def run_properties(
    model: Any,
    schema: Schema,
    *,
    properties: Sequence[str] = PROPERTIES,
    increasing: Sequence[str] = (),
    decreasing: Sequence[str] = (),
    irrelevant: Sequence[str] = (),
    max_examples: int = 50,
    max_rows: int = 20,
    atol: float = 1e-6,
    seed: int = 0,
    name: str = "properties",
) -> CheckResult:
    """Run properties on frames Hypothesis generates from *schema*; report the smallest failure.

    Parameters
    ----------
    model:
        The model (any object :func:`~pytest_mlops.load_model` adapts).
    schema:
        Where the inputs come from; the target column is left out.
    properties:
        Which of ``"outputs_finite"``, ``"probabilities"``, ``"row_order"``, ``"batch"`` to run.
    increasing, decreasing:
        Features in which the score must be monotonic.
    irrelevant:
        Features whose values must not change the outputs (each is redrawn from the schema).
    max_examples, max_rows:
        How many frames Hypothesis tries, and their largest size.
    seed:
        Makes the search (and so the verdict) reproducible.
    """
    unknown = [p for p in properties if p not in PROPERTIES]
    if unknown:
        raise CheckError(
            f"run_properties: unknown property {unknown[0]!r}{did_you_mean(unknown[0], PROPERTIES)}"
        )
    adapted = _adapt(model)
    for feature in (*increasing, *decreasing, *irrelevant):
        _select(schema, [feature])
    checks = _property_checks(adapted, properties, increasing, decreasing, atol, seed)
    names = [*properties, *(f"increasing:{f}" for f in increasing)]
    names += [*(f"decreasing:{f}" for f in decreasing), *(f"irrelevant:{f}" for f in irrelevant)]
    context: dict[str, str | int | float | bool | None] = {
        "model": adapted.name,
        "seed": seed,
        "max_examples": max_examples,
        "properties": ", ".join(names),
    }
    search = _Search(adapted, schema, checks, irrelevant, max_examples, max_rows, atol, seed)
    try:
        examples = _search(search)
    except _PropertyFailed as failure:
        return _failed(name, failure, context)
    return _passed(name, len(names), examples, max_rows, context)


def _passed(
    name: str,
    n_properties: int,
    examples: int,
    max_rows: int,
    context: dict[str, str | int | float | bool | None],
) -> CheckResult:
    return CheckResult(
        name=name,
        kind="properties",
        status="passed",
        message=f"{n_properties} properties hold on {examples} generated frames "
        f"(up to {max_rows} rows, model={context['model']})",
        metric="failed_properties",
        value=0.0,
        op="<=",
        bound=0.0,
        metrics={"failed_properties": 0.0, "examples": float(examples)},
        context=context,
    )


@dataclass(frozen=True)
class _Search:
    """What the property search runs: the model, the checks, where the frames come from."""

    model: Model
    schema: Schema
    checks: list[Callable[[pd.DataFrame], CheckResult]]
    irrelevant: Sequence[str]
    max_examples: int
    max_rows: int
    atol: float
    seed: int


def _search(run: _Search) -> int:
    """Run every check on generated frames; the number of frames, or _PropertyFailed."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    count = [0]
    columns = list(run.schema.feature_names)

    @hypothesis_seed(run.seed)
    @settings(
        max_examples=run.max_examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # Shrink to a small failing frame, but skip the slow "explain" phase: the report shows
        # the frame itself.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    @given(frames(run.schema, columns=columns, max_size=run.max_rows), st.data())
    def search(frame: pd.DataFrame, data: Any) -> None:
        count[0] += 1
        for check in run.checks:
            result = check(frame)
            if not result.passed:
                raise _PropertyFailed(result, frame)
        for feature in run.irrelevant:
            _check_irrelevant(run, frame, feature, data)

    search()
    return count[0]


def _check_irrelevant(run: _Search, frame: pd.DataFrame, feature: str, data: Any) -> None:
    """New values of *feature* (drawn from the schema) must not change the outputs."""
    redrawn = data.draw(
        frames(run.schema, columns=[feature], min_size=len(frame), max_size=len(frame))
    )
    result = check_invariance(
        run.model,
        frame,
        {feature: redrawn[feature].to_numpy()},
        atol=run.atol,
        description=f"new values of {feature!r}",
    )
    if not result.passed:
        raise _PropertyFailed(result, frame)


def _failed(
    name: str, failure: _PropertyFailed, context: dict[str, str | int | float | bool | None]
) -> CheckResult:
    example = failure.frame.head(10).to_dict(orient="records")
    return CheckResult(
        name=name,
        kind="properties",
        status="failed",
        message=f"property {failure.result.name!r} fails on a generated frame of "
        f"{len(failure.frame)} rows: {failure.result.message}",
        metric="failed_properties",
        value=1.0,
        op="<=",
        bound=0.0,
        metrics=dict(failure.result.metrics),
        context=context,
        tables={"falsifying_example": [{k: _plain(v) for k, v in r.items()} for r in example]},
    )


def _property_checks(
    model: Model,
    properties: Sequence[str],
    increasing: Sequence[str],
    decreasing: Sequence[str],
    atol: float,
    seed: int,
) -> list[Callable[[pd.DataFrame], CheckResult]]:
    checks: list[Callable[[pd.DataFrame], CheckResult]] = []
    if "outputs_finite" in properties:
        checks.append(lambda f: check_outputs_finite(model, f))
    if "probabilities" in properties and model.has_proba:
        checks.append(lambda f: check_probabilities(model, f, atol=atol))
    if "row_order" in properties:
        checks.append(lambda f: check_row_order_invariance(model, f, seed=seed, atol=atol))
    if "batch" in properties:
        checks.append(lambda f: check_batch_invariance(model, f, batch_size=1, atol=atol))
    for feature in increasing:
        checks.append(lambda f, c=feature: check_monotonic(model, f, c, atol=atol))  # type: ignore[misc]
    for feature in decreasing:
        checks.append(
            lambda f, c=feature: check_monotonic(model, f, c, direction="decreasing", atol=atol)  # type: ignore[misc]
        )
    return checks
