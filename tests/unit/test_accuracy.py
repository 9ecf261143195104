"""check_accuracy: sklearn's numbers, seeded bootstrap intervals, gates on the interval, slices."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sklearn.metrics as skm

from pytest_mlops import Dataset, check_accuracy, load_model
from pytest_mlops.checks.slices import Clause, parse_slice, slice_rows
from pytest_mlops.checks.stats import bootstrap_indices
from pytest_mlops.errors import CheckError, DataError

# 200 resamples keep the tests quick; the library default is 1000
check = functools.partial(check_accuracy, n_resamples=200)


@pytest.fixture(scope="module")
def model(credit_pipeline):
    return load_model(credit_pipeline, name="credit")


@pytest.fixture(scope="module")
def data(adult_holdout, credit_module):
    frame = adult_holdout.sample(n=4000, random_state=1).reset_index(drop=True)
    return Dataset(frame, target="income", name="current", features=credit_module.FEATURES)


def test_estimate_equals_sklearn_and_the_interval_surrounds_it(model, data, credit_pipeline):
    result = check(model, data, metric="roc_auc", min=0.8, seed=3)
    expected = skm.roc_auc_score(data.y, credit_pipeline.predict_proba(data.X)[:, 1])
    assert result.passed
    assert result.value == pytest.approx(expected, abs=1e-12)
    low, high = result.metrics["roc_auc_ci_low"], result.metrics["roc_auc_ci_high"]
    assert low < expected < high
    assert 0.005 < high - low < 0.05
    assert "[95% CI" in result.message
    assert "n=4000" in result.message
    assert result.context["seed"] == 3


def test_interval_equals_a_plain_percentile_bootstrap_over_the_same_resamples(model, data):
    small = data.subset(np.arange(data.n_rows) < 1500)
    proba = model.predict_proba(small.X)[:, 1]
    y = small.y.to_numpy()
    values = [
        skm.roc_auc_score(y[rows], proba[rows])
        for block in bootstrap_indices(1500, n_resamples=200, seed=11, chunk=64)
        for rows in block
    ]
    low, high = np.quantile(values, [0.05, 0.95])
    result = check(
        model, small, metric="roc_auc", min=0.5, n_resamples=200, confidence=0.9, seed=11
    )
    assert result.metrics["roc_auc_ci_low"] == pytest.approx(low, abs=1e-12)
    assert result.metrics["roc_auc_ci_high"] == pytest.approx(high, abs=1e-12)


def test_bootstrap_is_reproducible_with_a_seed_and_changes_with_another(model, data):
    first = check(model, data, metric="accuracy", min=0.5, seed=5)
    again = check(model, data, metric="accuracy", min=0.5, seed=5)
    other = check(model, data, metric="accuracy", min=0.5, seed=6)
    assert first.to_dict() == again.to_dict()
    assert first.metrics["accuracy_ci_low"] != other.metrics["accuracy_ci_low"]


def test_gate_on_the_lower_bound(model, data):
    est = check(model, data, metric="roc_auc", n_resamples=0).value
    assert est is not None
    between = est - 0.004  # above the lower end of the interval, below the estimate
    on_estimate = check(model, data, metric="roc_auc", min=between)
    on_lower = check(model, data, metric="roc_auc", min=between, on="lower")
    assert on_estimate.passed
    assert on_lower.failed
    assert on_lower.message.startswith("the lower end of the 95% CI of roc_auc must be >= ")
    assert on_lower.metric == "roc_auc.ci_low"
    assert on_lower.value == on_lower.metrics["roc_auc_ci_low"]


def test_gate_on_the_interval_is_inconclusive_when_it_straddles_the_bound(model, data):
    est = check(model, data, metric="roc_auc", n_resamples=0).value
    assert est is not None
    straddles = check(model, data, metric="roc_auc", min=est, on="interval")
    assert straddles.inconclusive
    assert "straddles the bound" in straddles.message
    assert check(model, data, metric="roc_auc", min=est - 0.1, on="interval").passed
    assert check(model, data, metric="roc_auc", min=est + 0.05, on="interval").failed


def test_a_loss_is_gated_on_its_upper_end(model, data):
    result = check(model, data, metric="log_loss", max=0.5, on="upper")
    assert result.passed
    assert result.op == "<="
    assert result.value == result.metrics["log_loss_ci_high"]
    assert check(model, data, metric="log_loss", max=result.value - 0.001, on="upper").failed


def test_per_slice_metrics_equal_sklearn_on_the_slice(model, data, credit_pipeline):
    result = check(model, data, metric="roc_auc", min=0.5, slice_by="sex", slices=["age >= 60"])
    rows = {row["slice"]: row for row in result.tables["slices"]}
    assert list(rows) == ["all", "sex=Female", "sex=Male", "age >= 60"]
    for label, mask in (
        ("sex=Female", data.frame["sex"] == "Female"),
        ("age >= 60", data.frame["age"] >= 60),
    ):
        part = data.frame[mask]
        expected = skm.roc_auc_score(part["income"], credit_pipeline.predict_proba(part)[:, 1])
        assert rows[label]["estimate"] == pytest.approx(expected, abs=1e-12)
        assert rows[label]["n"] == int(mask.sum())
        assert rows[label]["ci_low"] < expected < rows[label]["ci_high"]
        assert result.metrics[f"roc_auc[{label}]"] == rows[label]["estimate"]


def test_a_failing_slice_is_named_in_the_message(model, data):
    result = check(model, data, metric="roc_auc", min=0.9, slice_by="sex")
    assert result.failed
    assert "in slice 'sex=Male'" in result.message
    assert "overall and in every slice" in result.message


def test_small_slices_are_reported_but_not_gated(model, data):
    result = check(
        model,
        data,
        metric="accuracy",
        min=0.8,
        slices=["native_country == 'Germany'"],
        min_slice_size=100,
    )
    row = result.tables["slices"][1]
    assert row["n"] < 100
    assert row["status"] == "small"
    assert row["ci_low"] is None
    assert result.passed  # whatever the small slice scores


def test_slice_with_one_class_is_undefined_not_an_error(model, data):
    result = check(model, data, metric="roc_auc", min=0.5, slices=["income == 1"], min_slice_size=1)
    assert result.tables["slices"][1]["status"] == "undefined"
    assert result.passed


def test_parse_slice_expressions():
    assert parse_slice("age >= 60") == (Clause("age", ">=", 60),)
    assert parse_slice("sex == 'Female' and age < 30") == (
        Clause("sex", "==", "Female"),
        Clause("age", "<", 30),
    )
    assert parse_slice("race not in ['White', 'Black']") == (
        Clause("race", "not in", ["White", "Black"]),
    )
    assert parse_slice("`hours per week` > 40.5") == (Clause("hours per week", ">", 40.5),)
    assert parse_slice("sex == Female") == (Clause("sex", "==", "Female"),)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("age >>= 60", "expected 'column op value'"),
        ("age >= 60 or sex == 'Male'", "expected 'and' or the end"),
        ("race in 'White'", "'in' needs a list"),
        ("__import__('os') == 1", "expected 'column op value'"),
    ],
)
def test_bad_slice_expressions(expression, message):
    with pytest.raises(CheckError, match=message):
        parse_slice(expression)


def test_slice_on_a_missing_column_suggests_one(data):
    with pytest.raises(DataError, match=r"no column 'agee' - did you mean 'age'\?"):
        slice_rows(data, slices=["agee >= 60"])
    with pytest.raises(DataError, match=r"slice_by 'sexx'.*did you mean 'sex'"):
        slice_rows(data, slice_by="sexx")


def test_slice_by_a_column_with_too_many_values(data):
    with pytest.raises(CheckError, match=r"distinct values.*declare ranges as slices"):
        slice_rows(data, slice_by="capital_gain")


def test_slice_comparing_text_with_a_number(data):
    with pytest.raises(DataError, match="cannot compare the column 'sex'"):
        slice_rows(data, slices=["sex > 3"])


def test_unknown_metric(model, data):
    with pytest.raises(CheckError, match=r"unknown metric 'f_1' - did you mean 'f1'\?"):
        check(model, data, metric="f_1", min=0.5)


def test_one_row_dataset(model, data):
    one = data.subset(np.arange(data.n_rows) == 0)
    with pytest.raises(DataError, match=r"dataset 'current' has 1 row.*n_resamples = 0"):
        check(model, one, metric="accuracy", min=0.5)
    assert check(model, one, metric="accuracy", min=0.0, n_resamples=0).passed


def test_single_class_target_for_roc_auc(model, data):
    positives = data.subset(data.frame["income"] == 1)
    with pytest.raises(DataError, match=r"roc_auc needs both classes.*column 'income'.*\[1\]"):
        check(model, positives, metric="roc_auc", min=0.5)


def test_contradictory_settings(model, data):
    with pytest.raises(CheckError, match=r"min .* is greater than max"):
        check(model, data, min=0.9, max=0.8)
    with pytest.raises(CheckError, match="on = 'lower' needs a confidence interval"):
        check(model, data, min=0.5, on="lower", n_resamples=0)
    with pytest.raises(CheckError, match="'on' must be"):
        check(model, data, min=0.5, on="median")  # type: ignore[arg-type]
