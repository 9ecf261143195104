from __future__ import annotations

import json
import math

import pytest

from pytest_mlops.results import CheckResult, format_value


def test_threshold_min_passes_and_states_the_bound():
    result = CheckResult.threshold(
        name="accuracy",
        kind="accuracy",
        metric="roc_auc",
        value=0.905,
        min=0.88,
        context={"n": 16281, "split": "current"},
    )
    assert result.passed
    assert result.message == "roc_auc must be >= 0.88: measured 0.905 (n=16281, split=current)"
    assert result.bound_text == ">= 0.88"
    assert result.value_text == "roc_auc=0.905"


def test_threshold_reports_the_failing_bound_of_two():
    result = CheckResult.threshold(
        name="g", kind="accuracy", metric="log_loss", value=0.5, min=0.1, max=0.36
    )
    assert result.failed
    assert (result.op, result.bound) == ("<=", 0.36)
    assert result.message.startswith("log_loss must be <= 0.36: measured 0.5")


def test_nan_never_passes_a_bound():
    result = CheckResult.threshold(name="g", kind="k", metric="m", value=float("nan"), min=0.0)
    assert result.failed


def test_no_bound_records_the_measurement():
    result = CheckResult.threshold(name="g", kind="k", metric="m", value=2.0)
    assert result.passed
    assert result.op is None
    assert result.message == "m measured 2"


def test_round_trip_through_json_keeps_everything():
    result = CheckResult(
        name="fair",
        kind="fairness",
        status="inconclusive",
        message="m",
        metric="dp",
        value=float("nan"),
        op=">=",
        bound=0.8,
        details="d",
        metrics={"dp": float("inf"), "n": 3.0},
        context={"n": 3, "split": "current"},
        tables={"groups": [{"group": "a", "n": 2, "rate": float("nan")}]},
    )
    text = result.to_json()
    json.loads(text)  # strict JSON: no NaN literals
    back = CheckResult.from_json(text)
    assert back.status == "inconclusive"
    assert back.value is not None
    assert math.isnan(back.value)
    assert back.metrics["dp"] == math.inf
    assert back.tables["groups"][0]["group"] == "a"
    assert back.context == result.context


def test_results_are_frozen():
    result = CheckResult.threshold(name="g", kind="k", metric="m", value=1.0)
    with pytest.raises(AttributeError):
        result.status = "failed"  # type: ignore[misc]


def test_bad_status_is_rejected():
    with pytest.raises(ValueError, match="status must be one of"):
        CheckResult(name="g", kind="k", status="ok", message="")  # type: ignore[arg-type]


def test_from_dict_names_a_missing_key():
    with pytest.raises(ValueError, match="'status'"):
        CheckResult.from_dict({"name": "g", "kind": "k", "message": ""})


@pytest.mark.parametrize(
    ("value", "text"), [(0.86123, "0.8612"), (16281, "16281"), (1e-5, "1.000e-05"), (None, "n/a")]
)
def test_format_value(value, text):
    assert format_value(value) == text
