"""compare_models: paired bootstrap of the difference, McNemar, non-inferiority verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy.stats import binom, binomtest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pytest_mlops import Dataset, compare_models, load_model
from pytest_mlops.checks.compare import mcnemar, non_inferiority
from pytest_mlops.checks.stats import Interval, mcnemar_exact
from pytest_mlops.errors import CheckError, DataError, ModelError


@pytest.fixture(scope="module")
def data(adult_holdout, credit_module):
    frame = adult_holdout.sample(n=5000, random_state=2).reset_index(drop=True)
    return Dataset(frame, target="income", name="current", features=credit_module.FEATURES)


@pytest.fixture(scope="module")
def strong(credit_pipeline):
    return load_model(credit_pipeline, name="full")


@pytest.fixture(scope="module")
def weaker(credit_module, adult_train):
    return load_model(credit_module.train(adult_train.sample(frac=0.1, random_state=0)), name="10%")


@pytest.fixture(scope="module")
def age_only(credit_module, adult_train):
    """A much worse model with the same inputs: it looks at age alone."""
    pipeline = Pipeline(
        [
            ("pick", ColumnTransformer([("age", "passthrough", ["age"])])),
            ("classify", LogisticRegression()),
        ]
    )
    return load_model(pipeline.fit(adult_train[credit_module.FEATURES], adult_train["income"]))


def test_difference_is_sklearn_on_both_models(strong, weaker, data, credit_pipeline):
    result = compare_models(
        strong, weaker, data, metric="roc_auc", margin=0.005, seed=1, n_resamples=300
    )
    y = data.y.to_numpy()
    auc_c = skm.roc_auc_score(y, credit_pipeline.predict_proba(data.X)[:, 1])
    auc_b = skm.roc_auc_score(y, weaker.predict_proba(data.X)[:, 1])
    assert result.metrics["candidate"] == pytest.approx(auc_c, abs=1e-12)
    assert result.metrics["baseline"] == pytest.approx(auc_b, abs=1e-12)
    assert result.metrics["difference"] == pytest.approx(auc_c - auc_b, abs=1e-12)
    assert result.metrics["ci_low"] < result.metrics["difference"] < result.metrics["ci_high"]
    assert result.passed
    row = result.tables["comparison"][0]
    assert set(row) == {"metric", "candidate", "baseline", "difference", "ci_low", "ci_high"}
    assert row["metric"] == "roc_auc"
    assert "non-inferiority margin 0.005" in result.message
    assert "[95% CI" in result.message


def test_paired_interval_is_the_bootstrap_of_the_difference_over_shared_resamples(
    strong, weaker, data
):
    from pytest_mlops.checks.stats import bootstrap_indices

    small = data.subset(np.arange(data.n_rows) < 1000)
    y = small.y.to_numpy()
    p_c, p_b = strong.predict_proba(small.X)[:, 1], weaker.predict_proba(small.X)[:, 1]
    diffs = [
        skm.roc_auc_score(y[r], p_c[r]) - skm.roc_auc_score(y[r], p_b[r])
        for block in bootstrap_indices(1000, n_resamples=100, seed=4, chunk=64)
        for r in block
    ]
    result = compare_models(strong, weaker, small, metric="roc_auc", n_resamples=100, seed=4)
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert result.metrics["ci_low"] == pytest.approx(low, abs=1e-12)
    assert result.metrics["ci_high"] == pytest.approx(high, abs=1e-12)


def test_identical_models_pass_even_with_no_margin(strong, data):
    result = compare_models(strong, strong, data, metric="accuracy", margin=0.0, n_resamples=200)
    assert result.passed
    assert result.metrics["difference"] == 0
    assert result.metrics["p_value"] == 1.0


def test_a_clearly_worse_candidate_fails(age_only, strong, data):
    result = compare_models(age_only, strong, data, metric="roc_auc", margin=0.01, n_resamples=300)
    assert result.failed
    assert result.metrics["ci_high"] < -0.01
    assert "the candidate is worse" in result.message


def test_inconclusive_when_the_interval_straddles_the_margin(weaker, strong, data):
    first = compare_models(weaker, strong, data, metric="roc_auc", n_resamples=300)
    margin = -first.metrics["difference"]  # -margin is the estimate: inside the interval
    result = compare_models(weaker, strong, data, metric="roc_auc", margin=margin, n_resamples=300)
    assert result.inconclusive
    assert "these rows cannot decide" in result.message


def test_a_loss_flips_the_direction(strong, age_only, data):
    result = compare_models(strong, age_only, data, metric="log_loss", margin=0.0, n_resamples=200)
    assert result.passed
    assert result.op == "<="
    assert result.metrics["difference"] < 0
    worse = compare_models(age_only, strong, data, metric="log_loss", n_resamples=200)
    assert worse.failed


def test_verdict_logic_on_intervals():
    def interval(low: float, high: float) -> Interval:
        return Interval((low + high) / 2, low, high, 0.95, 100, 0)

    assert non_inferiority(interval(-0.004, 0.01), 0.005) == "passed"
    assert non_inferiority(interval(-0.02, -0.006), 0.005) == "failed"
    assert non_inferiority(interval(-0.01, 0.01), 0.005) == "inconclusive"
    assert non_inferiority(interval(-0.01, 0.004), 0.005, greater_is_better=False) == "passed"
    assert non_inferiority(interval(0.006, 0.02), 0.005, greater_is_better=False) == "failed"
    assert non_inferiority(interval(0.0, 0.01), 0.005, greater_is_better=False) == "inconclusive"


def test_mcnemar_matches_scipy_and_the_exact_binomial_formula(strong, weaker, data):
    y = data.y.to_numpy()
    pred_c, pred_b = strong.predict(data.X), weaker.predict(data.X)
    test = mcnemar(y, pred_c, pred_b)
    only_c = int(np.sum((pred_c == y) & (pred_b != y)))
    only_b = int(np.sum((pred_c != y) & (pred_b == y)))
    assert (test.only_candidate, test.only_baseline) == (only_c, only_b)
    assert test.p_value == pytest.approx(binomtest(only_c, only_c + only_b, 0.5).pvalue)
    k, n = min(only_c, only_b), only_c + only_b
    assert test.p_value == pytest.approx(min(1.0, 2 * binom.cdf(k, n, 0.5)), rel=1e-9)
    result = compare_models(strong, weaker, data, metric="roc_auc", n_resamples=50)
    assert result.metrics["p_value"] == pytest.approx(test.p_value)
    assert result.tables["mcnemar"][0]["only_candidate_right"] == only_c


def test_mcnemar_textbook_values():
    # 10 vs 2 discordant pairs: p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79 / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0


def test_baseline_with_other_columns_is_compared_on_the_same_rows(
    strong, credit_module, adult_train, data, credit_pipeline
):
    # the model in production took three columns; the candidate takes twelve
    fewer = ["age", "education_num", "hours_per_week"]
    older = LogisticRegression(max_iter=1000).fit(adult_train[fewer], adult_train["income"])
    result = compare_models(strong, older, data, metric="roc_auc", n_resamples=200, seed=3)
    y = data.y.to_numpy()
    auc_c = skm.roc_auc_score(y, credit_pipeline.predict_proba(data.X)[:, 1])
    auc_b = skm.roc_auc_score(y, older.predict_proba(data.frame[fewer])[:, 1])
    assert result.metrics["candidate"] == pytest.approx(auc_c, abs=1e-12)
    assert result.metrics["baseline"] == pytest.approx(auc_b, abs=1e-12)
    assert result.metrics["difference"] == pytest.approx(auc_c - auc_b, abs=1e-12)
    assert result.passed


def test_baseline_needing_a_column_the_data_lacks(strong, adult_train, data):
    extra = ["age", "fnlwgt"]  # fnlwgt is not among the data's features
    other = LogisticRegression().fit(adult_train[extra], adult_train["income"])
    with pytest.raises(ModelError, match=r"the baseline model .* cannot score .*fnlwgt"):
        compare_models(strong, other, data, metric="accuracy")


def test_baseline_with_a_different_feature_count():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    three = LogisticRegression().fit(X, y)
    two = LogisticRegression().fit(X[:, :2], y)
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(t=y)
    with pytest.raises(ModelError, match="2 features for the baseline, 3 for the candidate"):
        compare_models(three, two, Dataset(frame, target="t"), metric="accuracy")


def test_bad_inputs(strong, weaker, data):
    with pytest.raises(CheckError, match=r"did you mean 'roc_auc'"):
        compare_models(strong, weaker, data, metric="roc_acu")
    with pytest.raises(CheckError, match="margin must be >= 0"):
        compare_models(strong, weaker, data, margin=-0.01)
    one = data.subset(np.arange(data.n_rows) == 0)
    with pytest.raises(DataError, match=r"gate 'champion': dataset 'current' has 1 row"):
        compare_models(strong, weaker, one)
    negatives = data.subset(data.frame["income"] == 0)
    with pytest.raises(DataError, match=r"roc_auc needs both classes.*'income'"):
        compare_models(strong, weaker, negatives, metric="roc_auc")
