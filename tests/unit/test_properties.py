"""Hypothesis strategies from a schema, and the ready-made model properties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_mlops import CheckError, DataError
from pytest_mlops import CheckResult as CheckResultType
from pytest_mlops.checks.properties import (
    assert_probabilities,
    check_batch_invariance,
    check_invariance,
    check_monotonic,
    check_outputs_finite,
    check_probabilities,
    check_row_order_invariance,
    column_values,
    frames,
    rows,
    run_properties,
)
from pytest_mlops.data.schema import ColumnSchema, Schema, check_schema, infer_schema

SCHEMA = Schema(
    columns=(
        ColumnSchema("age", "int", nullable=False, min=18, max=90, quantiles={"0.5": 40.0}),
        ColumnSchema("income", "float", nullable=True, min=0.0, max=1e5),
        ColumnSchema("city", "str", nullable=False, categories=("Oslo", "Rome", "Tiny-town")),
        ColumnSchema("vip", "bool", nullable=False),
        ColumnSchema("y", "int", nullable=False, min=0, max=1),
    ),
    target="y",
)
QUICK = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@QUICK
@given(frames(SCHEMA, max_size=15))
def test_generated_frames_conform_to_their_schema(frame):
    result = check_schema(frame, SCHEMA, mostly=1.0)
    assert result.passed, result.details
    assert frame["age"].dtype.kind in "if"


def test_edge_values_rare_categories_and_missing_values_are_generated():
    seen: dict[str, set[Any]] = {"age": set(), "city": set(), "income_nan": set()}

    @settings(max_examples=200, deadline=None, database=None)
    @given(rows(SCHEMA))
    def collect(row):
        seen["age"].add(row["age"])
        seen["city"].add(row["city"])
        seen["income_nan"].add(row["income"] is None)

    collect()
    assert {18, 40, 90} <= seen["age"]
    assert seen["city"] == {"Oslo", "Rome", "Tiny-town"}
    assert seen["income_nan"] == {True, False}


def test_non_nullable_columns_never_get_missing_values():
    @settings(max_examples=100, deadline=None, database=None)
    @given(column_values(SCHEMA["age"]))
    def never_none(value):
        assert value is not None
        assert 18 <= value <= 90

    never_none()


def test_strategies_from_an_inferred_schema(adult_train):
    schema = infer_schema(adult_train, target="income")

    @QUICK
    @given(frames(schema, columns=schema.feature_names, max_size=10))
    def valid(frame):
        assert list(frame.columns) == list(schema.feature_names)
        assert check_schema(frame, Schema(columns=tuple(schema[c] for c in frame.columns))).passed

    valid()


def test_unknown_columns_and_sizes_are_refused():
    with pytest.raises(DataError, match=r"has no column 'agee' - did you mean 'age'\?"):
        rows(SCHEMA, columns=["agee"])
    with pytest.raises(CheckError, match="min_size <= max_size"):
        frames(SCHEMA, min_size=5, max_size=2)


# --- properties on real and deliberately broken models ---------------------------------------


class Proba:
    """A binary classifier on 'age' whose behaviour the tests can break."""

    classes_ = np.array([0, 1])

    def __init__(
        self, *, scale: float = 1.0, order: bool = False, batch: bool = False, slope: float = 0.05
    ):
        self.scale, self.order, self.batch, self.slope = scale, order, batch, slope

    def predict_proba(self, X):
        age = np.asarray(X["age"], dtype=float)
        p = 1.0 / (1.0 + np.exp(-self.slope * (age - 40)))
        if self.order:  # depends on the position of the row
            p = np.clip(p + 0.01 * np.arange(len(p)), 0, 1)
        if self.batch:  # depends on the other rows in the batch
            p = np.clip(p + 0.1 * (age.mean() - 40) / 50, 0, 1)
        return np.column_stack([1 - p, p]) * self.scale

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def sample(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.linspace(18, 90, n).round(),
            "income": np.linspace(0, 1e4, n),
            "city": ["Oslo", "Rome"] * (n // 2),
            "vip": [True, False] * (n // 2),
        }
    )


def test_a_sound_model_passes_every_property():
    model, frame = Proba(), sample()
    for result in (
        check_outputs_finite(model, frame),
        check_probabilities(model, frame),
        check_row_order_invariance(model, frame),
        check_batch_invariance(model, frame, batch_size=5),
        check_monotonic(model, frame, "age"),
        check_invariance(model, frame, {"city": "Rome"}),
    ):
        assert result.passed, result.message
        assert result.kind == "properties"


def test_each_property_catches_its_fault():
    frame = sample()
    unnormalised = check_probabilities(Proba(scale=1.5), frame)
    assert unnormalised.failed
    assert "sum to 1: 12 rows break it" in unnormalised.message
    assert check_row_order_invariance(Proba(order=True), frame).failed
    assert check_batch_invariance(Proba(batch=True), frame, batch_size=1).failed
    falling = check_monotonic(Proba(slope=-0.05), frame, "age")
    assert falling.failed
    assert falling.value == len(frame)
    assert check_monotonic(Proba(slope=-0.05), frame, "age", direction="decreasing").passed
    sensitive = check_invariance(Proba(), frame, lambda f: f.assign(age=f["age"] + 10))
    assert sensitive.failed
    assert "<lambda>" in sensitive.message
    with pytest.raises(AssertionError, match="sum to 1"):
        assert_probabilities(Proba(scale=1.5), frame)


def test_non_finite_and_misshapen_outputs_are_reported():
    def nan_model(X):
        out = np.zeros(len(X))
        out[0] = np.nan
        return out

    result = check_outputs_finite(nan_model, sample())
    assert result.failed
    assert "not finite on 1 rows" in result.message
    short = check_outputs_finite(lambda X: np.zeros(len(X) - 1), sample())
    assert short.failed
    assert "shape (11,) for 12 rows" in short.message


def test_property_arguments_are_checked():
    with pytest.raises(DataError, match=r"no column 'agee' - did you mean 'age'\?"):
        check_monotonic(Proba(), sample(), "agee")
    with pytest.raises(CheckError, match="'batch_size' must be >= 1"):
        check_batch_invariance(Proba(), sample(), batch_size=0)


def test_run_properties_passes_a_sound_model_and_shrinks_a_failure():
    passed = run_properties(
        Proba(), SCHEMA, increasing=["age"], irrelevant=["city"], max_examples=15
    )
    assert passed.passed, passed.message
    failed = run_properties(Proba(batch=True), SCHEMA, max_examples=30)
    assert failed.failed
    assert "'batch_invariance'" in failed.message
    assert 1 <= len(failed.tables["falsifying_example"]) <= 20
    again = run_properties(Proba(batch=True), SCHEMA, max_examples=30)
    assert again.message == failed.message  # seeded: the same verdict on a rerun
    with pytest.raises(
        CheckError, match=r"unknown property 'rows_order' - did you mean 'row_order'\?"
    ):
        run_properties(Proba(), SCHEMA, properties=["rows_order"])


@pytest.fixture(scope="module")
def adult_schema(adult_train):
    return infer_schema(adult_train, target="income")


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_properties_hold_for_the_example_pipeline(credit_pipeline, adult_schema, data):
    schema = adult_schema
    frame = data.draw(frames(schema, 1, 10, columns=schema.feature_names))
    assert check_outputs_finite(credit_pipeline, frame).passed
    assert check_probabilities(credit_pipeline, frame).passed
    assert check_invariance(credit_pipeline, frame, {"fnlwgt": 1}).passed


def test_a_falsifying_example_is_json_ready():
    schema = Schema(
        columns=(
            ColumnSchema("age", "int", nullable=False, min=18, max=90),
            ColumnSchema("vip", "bool", nullable=True),
            ColumnSchema("when", "datetime", nullable=True, min="2024-01-01", max="2024-12-31"),
        )
    )
    failed = run_properties(Proba(batch=True), schema, max_examples=30)
    assert failed.failed
    assert CheckResultType.from_json(failed.to_json()).tables == failed.tables
