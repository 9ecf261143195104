"""Metrics by name equal scikit-learn's, on the full data and on bootstrap resamples (UCI Adult)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pytest_mlops import list_metrics
from pytest_mlops.checks.metrics import METRICS, get_metric, resampled, score
from pytest_mlops.checks.stats import bootstrap_counts, bootstrap_indices
from pytest_mlops.errors import CheckError

NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]


@pytest.fixture(scope="module")
def binary(credit_pipeline, credit_module, adult_holdout):
    X = adult_holdout[credit_module.FEATURES]
    y = adult_holdout["income"].to_numpy()
    return y, credit_pipeline.predict(X), credit_pipeline.predict_proba(X), credit_pipeline.classes_


@pytest.fixture(scope="module")
def multiclass(adult_train, adult_holdout):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(adult_train[NUMERIC], adult_train["race"])
    X = adult_holdout[NUMERIC]
    return (
        adult_holdout["race"].to_numpy(),
        model.predict(X),
        model.predict_proba(X),
        model.classes_,
    )


@pytest.fixture(scope="module")
def regression(adult_train, adult_holdout):
    features = ["age", "education_num", "capital_gain"]
    model = Ridge().fit(adult_train[features], adult_train["hours_per_week"])
    y = adult_holdout["hours_per_week"].to_numpy(dtype=float)
    return y, model.predict(adult_holdout[features])


SKLEARN_BINARY = {
    "accuracy": lambda y, pred, p: skm.accuracy_score(y, pred),
    "balanced_accuracy": lambda y, pred, p: skm.balanced_accuracy_score(y, pred),
    "precision": lambda y, pred, p: skm.precision_score(y, pred),
    "recall": lambda y, pred, p: skm.recall_score(y, pred),
    "f1": lambda y, pred, p: skm.f1_score(y, pred),
    "roc_auc": lambda y, pred, p: skm.roc_auc_score(y, p[:, 1]),
    "pr_auc": lambda y, pred, p: skm.average_precision_score(y, p[:, 1]),
    "log_loss": lambda y, pred, p: skm.log_loss(y, p),
    "brier": lambda y, pred, p: skm.brier_score_loss(y, p[:, 1]),
}


def _outputs(name, pred, proba):
    return proba if get_metric(name).needs == "proba" else pred


@pytest.mark.parametrize("name", sorted(SKLEARN_BINARY))
def test_binary_metric_equals_sklearn(binary, name):
    y, pred, proba, classes = binary
    metric = get_metric(name)
    expected = SKLEARN_BINARY[name](y, pred, proba)
    assert score(metric, y, _outputs(name, pred, proba), classes) == pytest.approx(
        expected, abs=1e-12
    )
    on_all = resampled(metric, y, _outputs(name, pred, proba), classes)(np.ones((1, len(y))))
    assert on_all[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", [n for n in list_metrics("classification")])
def test_resampled_binary_metric_equals_sklearn_on_the_resampled_rows(binary, name):
    y, pred, proba, classes = binary
    outputs = _outputs(name, pred, proba)
    metric = get_metric(name)
    stat = resampled(metric, y, outputs, classes)
    counts = next(bootstrap_counts(len(y), n_resamples=3, seed=7))
    indices = next(bootstrap_indices(len(y), n_resamples=3, seed=7, chunk=counts.shape[0]))
    expected = [score(metric, y[rows], outputs[rows], classes) for rows in indices[:3]]
    np.testing.assert_allclose(stat(counts[:3]), expected, rtol=0, atol=1e-10)


MULTICLASS = {
    "accuracy": lambda y, pred, p, c: skm.accuracy_score(y, pred),
    "balanced_accuracy": lambda y, pred, p, c: skm.balanced_accuracy_score(y, pred),
    "precision": lambda y, pred, p, c: skm.precision_score(
        y, pred, average="macro", zero_division=0
    ),
    "recall": lambda y, pred, p, c: skm.recall_score(y, pred, average="macro", zero_division=0),
    "f1": lambda y, pred, p, c: skm.f1_score(y, pred, average="macro", zero_division=0),
    "roc_auc": lambda y, pred, p, c: skm.roc_auc_score(y, p, multi_class="ovr", labels=c),
    "log_loss": lambda y, pred, p, c: skm.log_loss(y, p, labels=c),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("name", sorted(MULTICLASS))
def test_multiclass_metric_equals_sklearn(multiclass, name):
    y, pred, proba, classes = multiclass
    outputs = _outputs(name, pred, proba)
    metric = get_metric(name)
    expected = MULTICLASS[name](y, pred, proba, classes)
    assert score(metric, y, outputs, classes) == pytest.approx(expected, abs=1e-12)
    stat = resampled(metric, y, outputs, classes)
    counts = next(bootstrap_counts(len(y), n_resamples=2, seed=3))
    rows = next(bootstrap_indices(len(y), n_resamples=2, seed=3, chunk=counts.shape[0]))[0]
    assert stat(np.ones((1, len(y))))[0] == pytest.approx(expected, abs=1e-12)
    assert stat(counts[:1])[0] == pytest.approx(
        MULTICLASS[name](y[rows], pred[rows], proba[rows], classes), abs=1e-10
    )


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("mae", skm.mean_absolute_error),
        ("mse", skm.mean_squared_error),
        ("rmse", skm.root_mean_squared_error),
        ("r2", skm.r2_score),
    ],
)
def test_regression_metric_equals_sklearn(regression, name, reference):
    y, pred = regression
    metric = get_metric(name)
    assert score(metric, y, pred) == pytest.approx(reference(y, pred), rel=1e-12)
    counts = next(bootstrap_counts(len(y), n_resamples=2, seed=5))
    rows = next(bootstrap_indices(len(y), n_resamples=2, seed=5, chunk=counts.shape[0]))[0]
    assert resampled(metric, y, pred)(counts[:1])[0] == pytest.approx(
        reference(y[rows], pred[rows]), rel=1e-9
    )


def test_r2_of_a_constant_target_follows_sklearn():
    y = np.full(10, 3.0)
    stat = resampled(get_metric("r2"), y, y + 1)
    assert stat(np.ones((1, 10)))[0] == skm.r2_score(y, y + 1) == 0.0
    assert resampled(get_metric("r2"), y, y)(np.ones((1, 10)))[0] == skm.r2_score(y, y) == 1.0


def test_ece_is_the_weighted_gap_of_sklearn_calibration_curve(binary):
    y, _, proba, classes = binary
    prob_true, prob_pred = calibration_curve(y, proba[:, 1], n_bins=10, strategy="uniform")
    edges = np.linspace(0, 1, 11)
    counts = np.bincount(np.searchsorted(edges[1:-1], proba[:, 1]), minlength=10)
    weights = counts[counts > 0] / len(y)
    expected = float(np.sum(weights * np.abs(prob_true - prob_pred)))
    assert score(get_metric("ece"), y, proba, classes) == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 0.05  # a logistic regression is well calibrated


def test_ece_of_a_perfectly_calibrated_and_a_miscalibrated_model():
    y = np.array([0, 1] * 50)
    half = np.full((100, 2), 0.5)
    assert score(get_metric("ece"), y, half, np.array([0, 1])) == pytest.approx(0.0)
    sure = np.column_stack([np.zeros(100), np.ones(100)])
    assert score(get_metric("ece"), y, sure, np.array([0, 1])) == pytest.approx(0.5)


def test_multiclass_ece_uses_the_top_class(multiclass):
    y, _, proba, classes = multiclass
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], confidence)
    gap = sum(
        abs(np.sum(correct[bins == b]) - np.sum(confidence[bins == b])) for b in range(10)
    ) / len(y)
    assert score(get_metric("ece"), y, proba, classes) == pytest.approx(gap, abs=1e-12)


def test_unknown_metric_suggests_the_closest_name():
    with pytest.raises(CheckError, match=r"unknown metric 'roc_acu' - did you mean 'roc_auc'\?"):
        get_metric("roc_acu")


def test_aliases_and_task_lists():
    assert get_metric("auc").name == "roc_auc"
    assert get_metric("expected_calibration_error").name == "ece"
    assert set(list_metrics("regression")) == {"mae", "mse", "rmse", "r2"}
    assert set(list_metrics()) == set(METRICS)
    with pytest.raises(CheckError, match="task must be"):
        list_metrics("ranking")


def test_bootstrap_counts_are_the_indices_as_counts():
    from pytest_mlops.checks.stats import bootstrap_vectorized

    blocks = list(bootstrap_counts(50, n_resamples=70, seed=2))
    assert [b.shape for b in blocks] == [(64, 50), (6, 50)]
    indices = list(bootstrap_indices(50, n_resamples=70, seed=2, chunk=64))
    for counts, rows in zip(blocks, indices, strict=True):
        assert np.all(counts.sum(axis=1) == 50)
        np.testing.assert_array_equal(counts[0], np.bincount(rows[0], minlength=50))
    # a statistic undefined in most resamples is refused, not silently trusted
    with pytest.raises(CheckError, match="undefined in"):
        bootstrap_vectorized(lambda W: np.full(W.shape[0], np.nan), 50, estimate=0.0)
    with pytest.raises(CheckError, match="at least 2 rows"):
        bootstrap_vectorized(lambda W: W.sum(axis=1), 1)
