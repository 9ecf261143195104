"""Code-first accuracy tests: intervals, slices and the champion comparison from Python."""

from __future__ import annotations

import pytest

from pytest_mlops import check_accuracy


def test_not_worse_than_the_baseline_in_accuracy(mlops):
    # Starts from the declared `champion` gate (baseline, seed) and changes the metric and margin.
    result = mlops.champion(metric="accuracy", margin=0.01)
    assert result.metrics["only_candidate_right"] >= 0  # McNemar's counts come with it


@pytest.mark.accuracy(metric="recall", min=0.45, on="lower", slice_by="sex", min_slice_size=500)
def test_recall_of_the_positive_class_for_each_sex(mlops):
    mlops.accuracy()


def test_calibration_of_older_applicants(mlops, mlops_model, mlops_current):
    older = mlops_current.subset(mlops_current.frame["age"] >= 60, name="current[age>=60]")
    mlops.check(check_accuracy(mlops_model, older, metric="ece", max=0.1, name="ece_age_60"))
