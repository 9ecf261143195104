"""Code-first data tests: the reviewed schema, and properties of the model on generated inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_mlops import check_privacy, load_schema
from pytest_mlops.checks.properties import (
    assert_invariance,
    assert_monotonic,
    assert_outputs_finite,
    assert_probabilities,
    frames,
)

SCHEMA = load_schema(Path(__file__).parent.parent / "schema.json")
INPUTS = frames(SCHEMA, columns=SCHEMA.feature_names, max_size=25)
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.data(mostly=0.999)
def test_holdout_conforms_to_schema(mlops):
    # The declared `schema` gate's file; the tolerance comes from the marker.
    mlops.schema(path="schema.json", dataset="current")


def test_no_identifiers_in_training_data(mlops, mlops_reference):
    mlops.check(check_privacy(mlops_reference, quasi_identifiers=["sex", "race"], k=25))


@FAST
@given(frame=INPUTS)
def test_outputs_are_finite_probabilities(mlops_model, frame):
    assert_outputs_finite(mlops_model, frame)
    assert_probabilities(mlops_model, frame)


@FAST
@given(frame=INPUTS)
def test_more_education_never_lowers_the_score(mlops_model, frame):
    assert_monotonic(mlops_model, frame, "education_num", direction="increasing")


@FAST
@given(frame=INPUTS)
def test_sampling_weight_is_ignored(mlops_model, frame):
    # fnlwgt is the census sampling weight, not a property of the applicant.
    assert_invariance(mlops_model, frame, {"fnlwgt": 1})
