"""Code-first tests: the same checks as the declared gates, written in Python."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_mlops import check_accuracy


@pytest.mark.accuracy(metric="f1", min=0.6)
def test_f1_on_holdout(mlops):
    # Settings come from the marker; the model and data from pyproject.toml.
    mlops.accuracy()


@pytest.mark.parametrize("sex", ["Female", "Male"])
def test_auc_per_sex(mlops, mlops_model, mlops_current, sex):
    group = mlops_current.subset(mlops_current.frame["sex"] == sex, name=f"current[sex={sex}]")
    mlops.check(
        check_accuracy(
            mlops_model, group, metric="roc_auc", min=0.85, name=f"roc_auc_{sex.lower()}"
        )
    )


def test_probabilities_are_a_distribution(mlops_model, mlops_current):
    proba = mlops_model.predict_proba(mlops_current.X)
    assert proba.shape == (mlops_current.n_rows, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
