"""Fairness checks: values against fairlearn on UCI Adult, intervals, verdicts and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn.metrics import f1_score, roc_auc_score

from pytest_mlops import CheckError, ConfigError, DataError, Dataset, load_model
from pytest_mlops.checks.fairness import (
    DISPARITIES,
    STANDARD_DISPARITIES,
    _groupings,
    _outcomes,
    check_fairness,
    compare_fairness,
)
from pytest_mlops.checks.fairness_stats import Resampler
from pytest_mlops.gates import GATE_KINDS
from pytest_mlops.gates.fairness import metric_choices
from pytest_mlops.models.callable import CallableModel

FAIRLEARN = {
    "demographic_parity_difference": flm.demographic_parity_difference,
    "demographic_parity_ratio": flm.demographic_parity_ratio,
    "equalized_odds_difference": flm.equalized_odds_difference,
    "equalized_odds_ratio": flm.equalized_odds_ratio,
    "equal_opportunity_difference": flm.equal_opportunity_difference,
    "equal_opportunity_ratio": flm.equal_opportunity_ratio,
}


@pytest.fixture(scope="module")
def model(credit_pipeline, adult_holdout):
    """The example's model on the holdout, its outputs computed once (the checks call it often)."""
    real = load_model(credit_pipeline)
    labels = real.predict(adult_holdout)
    proba = real.predict_proba(adult_holdout)

    def outputs(values, X):
        assert len(X) == len(values), "this stand-in only answers on the whole holdout"
        return values

    return CallableModel(
        lambda X: outputs(labels, X),
        proba=lambda X: outputs(proba, X),
        classes=[0, 1],
        name="credit",
    )


@pytest.fixture(scope="module")
def holdout(adult_holdout):
    return Dataset(adult_holdout, target="income", sensitive=("sex", "race"), name="holdout")


@pytest.fixture(scope="module")
def predictions(model, holdout):
    return model.predict(holdout.X)


def fast(**kwargs):
    return {"n_resamples": 200, **kwargs}


# --- values equal fairlearn's ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sensitive", "intersectional"), [("sex", False), ("race", False), (["sex", "race"], True)]
)
def test_every_standard_disparity_equals_fairlearn(
    model, holdout, predictions, sensitive, intersectional
):
    result = check_fairness(
        model,
        holdout,
        sensitive=sensitive,
        intersectional=intersectional,
        min_group_size=1,
        **fast(),
    )
    label = " & ".join([sensitive] if isinstance(sensitive, str) else sensitive)
    features = holdout.frame[sensitive]
    assert set(STANDARD_DISPARITIES) == set(FAIRLEARN)
    for name, fn in FAIRLEARN.items():
        expected = fn(holdout.y, predictions, sensitive_features=features)
        assert result.metrics[f"{label}.{name}"] == pytest.approx(expected, abs=1e-12), name
    # every group has positives and negatives here, so fairlearn's TPR/FPR are all defined
    assert all(r["tpr"] is not None and r["fpr"] is not None for r in result.tables["groups"])


def test_group_table_equals_metric_frame(model, holdout, predictions):
    result = check_fairness(model, holdout, sensitive="race", **fast())
    frame = flm.MetricFrame(
        metrics={
            "selection_rate": flm.selection_rate,
            "tpr": flm.true_positive_rate,
            "fpr": flm.false_positive_rate,
            "accuracy": lambda y, p: float(np.mean(y == p)),
            "count": flm.count,
        },
        y_true=holdout.y,
        y_pred=predictions,
        sensitive_features=holdout.frame["race"],
    ).by_group
    rows = {r["group"]: r for r in result.tables["groups"]}
    assert set(rows) == set(frame.index)
    for group, expected in frame.iterrows():
        row = rows[group]
        assert row["n"] == expected["count"]
        for key in ("selection_rate", "tpr", "fpr", "accuracy"):
            assert row[key] == pytest.approx(expected[key], abs=1e-12)
        assert row["excluded"] is False
        assert row["sensitive"] == "race"


def test_four_fifths_is_the_selection_rate_ratio_with_a_default_bound(model, holdout, predictions):
    result = check_fairness(model, holdout, sensitive="sex", metric="four_fifths", **fast())
    expected = flm.demographic_parity_ratio(
        holdout.y, predictions, sensitive_features=holdout.frame["sex"]
    )
    assert result.value == pytest.approx(expected)
    assert (result.op, result.bound) == (">=", 0.8)
    # The example model selects women at about 30% of the rate of men: a real finding.
    assert result.failed
    assert result.message.startswith("four_fifths must be >= 0.8: measured 0.29")
    assert "on sex (n=16281, split=holdout, model=credit" in result.message


@pytest.mark.parametrize("metric", ["f1_difference", "roc_auc_ratio", "accuracy_difference"])
def test_a_metric_by_name_equals_metric_frame(model, holdout, predictions, metric):
    result = check_fairness(model, holdout, sensitive="sex", metric=metric, n_resamples=50)
    base, agg = metric.rsplit("_", 1)
    if base == "roc_auc":
        scores = model.predict_proba(holdout.X)[:, 1]
        frame = flm.MetricFrame(
            metrics=roc_auc_score,
            y_true=holdout.y,
            y_pred=scores,
            sensitive_features=holdout.frame["sex"],
        )
    else:
        fn = f1_score if base == "f1" else (lambda y, p: float(np.mean(y == p)))
        frame = flm.MetricFrame(
            metrics=fn,
            y_true=holdout.y,
            y_pred=predictions,
            sensitive_features=holdout.frame["sex"],
        )
    expected = frame.difference() if agg == "difference" else frame.ratio()
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.metric == metric
    ci = next(r for r in result.tables["disparities"] if r["metric"] == metric)
    assert ci["ci_low"] <= result.value <= ci["ci_high"]


def test_the_gate_choices_are_the_disparities():
    assert metric_choices() == tuple(DISPARITIES)


# --- groups: several features, intersections, minimum size -------------------------------------


def test_several_features_are_judged_one_by_one_and_the_worst_decides(model, holdout):
    result = check_fairness(
        model, holdout, metric="demographic_parity_difference", max=0.25, **fast()
    )
    by_feature = {r["sensitive"] for r in result.tables["groups"]}
    assert by_feature == {"sex", "race"}
    statuses = {
        r["sensitive"]: r["status"]
        for r in result.tables["disparities"]
        if r["metric"] == "demographic_parity_difference"
    }
    # sex: 0.178 with a tight interval; race: 0.196 but small groups (Other, n=135) widen it
    assert statuses == {"sex": "passed", "race": "inconclusive"}
    assert result.inconclusive
    assert " on race, the interval straddles the bound (" in result.message
    assert "race: demographic_parity_difference 0.1955" in result.details


def test_small_groups_are_listed_and_left_out(model, holdout, predictions):
    result = check_fairness(model, holdout, sensitive="race", min_group_size=200, **fast())
    sizes = holdout.frame["race"].value_counts()
    small = sorted(sizes[sizes < 200].index)
    assert small == ["Amer-Indian-Eskimo", "Other"]
    excluded = sorted(r["group"] for r in result.tables["groups"] if r["excluded"])
    assert excluded == small
    for row in result.tables["groups"]:
        if row["excluded"]:
            assert row["note"] == f"excluded: n={sizes[row['group']]} < min_group_size=200"
    assert "excluded groups with fewer than 200 rows: race='Amer-Indian-Eskimo' (n=159)" in (
        result.message
    )
    keep = ~holdout.frame["race"].isin(small).to_numpy()
    expected = flm.demographic_parity_difference(
        holdout.y[keep], predictions[keep], sensitive_features=holdout.frame["race"][keep]
    )
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.context["groups"] == 3


def test_too_few_groups_left_is_inconclusive_not_a_crash(model, holdout):
    result = check_fairness(
        model, holdout, sensitive="race", min_group_size=5000, max=0.1, **fast()
    )
    assert result.inconclusive
    assert "is undefined on race: fewer than 2 groups have at least 5000 rows" in result.message


def test_rates_on_too_few_positives_are_left_out_of_tpr_disparities(model, holdout, predictions):
    result = check_fairness(
        model,
        holdout,
        sensitive=["sex", "race"],
        intersectional=True,
        metric="equal_opportunity_difference",
        max=0.5,
        **fast(),
    )
    rows = {r["group"]: r for r in result.tables["groups"]}
    thin = rows["Female & Amer-Indian-Eskimo"]
    assert not thin["excluded"]
    assert thin["positives"] < 30
    assert f"tpr left out ({thin['positives']} positives) < min_group_size=30" in thin["note"]
    assert "rates on fewer than 30 rows left out: sex & race='Female & Amer-Indian-Eskimo' tpr" in (
        result.message
    )
    kept = [r for r in rows.values() if r["positives"] >= 30]
    expected = max(r["tpr"] for r in kept) - min(r["tpr"] for r in kept)
    assert result.value == pytest.approx(expected, abs=1e-12)


def test_a_fair_model_does_not_fail_at_the_strictest_bound(holdout):
    """Shuffled decisions are fair by construction: with max=0 the gate may only fail at rate α."""
    rng = np.random.default_rng(1)
    failed = 0
    for trial in range(10):
        shuffled = rng.permutation(np.arange(holdout.n_rows) % 5 == 0).astype(int)
        fair = CallableModel(lambda X, p=shuffled: p, classes=[0, 1], name="shuffled")  # type: ignore[misc]
        result = check_fairness(fair, holdout, sensitive="race", max=0.0, seed=trial, **fast())
        assert not result.passed  # nothing is ever proven to be exactly 0
        failed += result.failed
    assert failed <= 2  # binomial(10, 0.05): P(>= 3) < 1.2%; seeds are fixed, so no flakes


def test_intersectional_group_names(model, holdout):
    result = check_fairness(
        model, holdout, sensitive=["sex", "race"], intersectional=True, min_group_size=60, **fast()
    )
    groups = {r["group"]: r for r in result.tables["groups"]}
    assert "Female & Black" in groups
    assert len(groups) == 10
    assert groups["Female & Other"]["excluded"]
    assert groups["Female & Other"]["n"] == 46
    assert {r["sensitive"] for r in result.tables["groups"]} == {"sex & race"}


# --- intervals and verdicts --------------------------------------------------------------------


def test_intervals_are_seeded_and_contain_the_estimate(model, holdout):
    first = check_fairness(model, holdout, sensitive="sex", seed=3)
    again = check_fairness(model, holdout, sensitive="sex", seed=3)
    other = check_fairness(model, holdout, sensitive="sex", seed=4)
    assert first.tables["disparities"] == again.tables["disparities"]
    assert first.tables["disparities"] != other.tables["disparities"]
    for row in first.tables["disparities"]:
        assert row["ci_low"] <= row["value"] <= row["ci_high"], row
    low, high = (
        first.metrics["demographic_parity_difference.ci_low"],
        first.metrics["demographic_parity_difference.ci_high"],
    )
    assert 0.005 < high - low < 0.05  # about 2 x 1.96 x SE of a difference of two rates


def test_cell_draws_match_the_row_bootstrap(model, holdout):
    """The multinomial cell draws and the row bootstrap give the same interval (within noise)."""
    out = _outcomes(model, holdout, "f1_difference", None, False)
    grouping = _groupings(holdout, ("sex",), False)[0]
    included = np.ones(2, dtype=bool)
    spec = DISPARITIES["demographic_parity_difference"]

    def combine(stats):
        return {"dp": spec.of(stats[0])}

    cells = Resampler([out], grouping, included, None).run(combine, 1000, 0)["dp"]
    rows = Resampler([out], grouping, included, "f1").run(combine, 1000, 1)["dp"]
    assert np.mean(cells) == pytest.approx(np.mean(rows), abs=0.001)
    assert np.std(cells) == pytest.approx(np.std(rows), rel=0.1)


def test_the_bound_can_apply_to_the_interval(model, holdout):
    estimate = check_fairness(model, holdout, sensitive="sex", **fast())
    value = estimate.value
    assert value is not None
    low = estimate.metrics["demographic_parity_difference.ci_low"]
    high = estimate.metrics["demographic_parity_difference.ci_high"]
    near = (value + high) / 2
    assert check_fairness(model, holdout, sensitive="sex", max=near, on="estimate", **fast()).passed
    straddling = check_fairness(model, holdout, sensitive="sex", max=near, **fast())
    assert straddling.inconclusive
    assert "the interval straddles the bound" in straddling.message
    failed = check_fairness(model, holdout, sensitive="sex", max=low - 0.01, **fast())
    assert failed.failed
    assert failed.bound_text == f"<= {low - 0.01:.4g}"
    row = next(r for r in failed.tables["disparities"] if r["bound"])
    assert row["metric"] == "demographic_parity_difference"
    assert row["status"] == "failed"


def test_a_plain_estimator_is_adapted(credit_pipeline, holdout, predictions):
    result = check_fairness(credit_pipeline, holdout, sensitive="sex", n_resamples=20)
    expected = flm.demographic_parity_difference(
        holdout.y, predictions, sensitive_features=holdout.frame["sex"]
    )
    assert result.value == pytest.approx(expected, abs=1e-12)


def test_result_round_trips_through_json(model, holdout):
    from pytest_mlops import CheckResult

    result = check_fairness(model, holdout, sensitive="race", max=0.3, **fast())
    assert CheckResult.from_json(result.to_json()) == result


# --- fairness regression against a baseline ------------------------------------------------------


def test_a_model_compared_with_itself_does_not_regress(model, holdout):
    result = compare_fairness(model, model, holdout, sensitive="sex", **fast())
    assert result.passed
    assert result.value == 0.0
    assert result.metric == "demographic_parity_difference_worsening"
    row = next(r for r in result.tables["disparities"] if r["bound"])
    assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)


def test_a_less_fair_candidate_regresses(model, holdout, predictions):
    is_male = (holdout.frame["sex"] == "Male").to_numpy()
    # the candidate also selects every man the baseline rejected with a score above 0.3
    proba = model.predict_proba(holdout.X)[:, 1]
    boosted = np.where(is_male & (proba > 0.3), 1, predictions)
    candidate = CallableModel(lambda X: boosted, name="boosted")
    result = compare_fairness(
        candidate, model, holdout, sensitive="sex", metric="demographic_parity_ratio", **fast()
    )
    fl = flm.demographic_parity_ratio
    sf = holdout.frame["sex"]
    worse = fl(holdout.y, predictions, sensitive_features=sf) - fl(
        holdout.y, boosted, sensitive_features=sf
    )
    assert result.value == pytest.approx(worse, abs=1e-12)
    assert worse > 0.05
    assert result.failed
    assert "demographic_parity_ratio_worsening must be <= 0.01: measured" in result.message
    assert "baseline=credit" in result.message
    assert {r["model"] for r in result.tables["groups"]} == {"candidate", "baseline"}


# --- bad input ---------------------------------------------------------------------------------


def test_a_missing_sensitive_column_suggests_the_closest(model, holdout):
    with pytest.raises(DataError, match=r"has no sensitive column 'sexx' - did you mean 'sex'\?"):
        check_fairness(model, holdout, sensitive="sexx")


def test_a_single_group_is_an_error(model, adult_holdout):
    men = Dataset(adult_holdout[adult_holdout["sex"] == "Male"], target="income", name="men")
    with pytest.raises(
        CheckError, match=r"column 'sex' of dataset 'men' has a single group \('Male'\)"
    ):
        check_fairness(model, men, sensitive="sex")


def test_nan_in_a_sensitive_column_is_named(model, adult_holdout):
    frame = adult_holdout.copy()
    frame.loc[[3, 7], "race"] = np.nan
    data = Dataset(frame, target="income", name="gaps")
    with pytest.raises(
        DataError,
        match=r"sensitive column 'race' of dataset 'gaps' has 2 missing values \(rows \[3, 7\]\)",
    ):
        check_fairness(model, data, sensitive="race")


def test_a_group_without_positives_has_an_undefined_tpr(adult_holdout):
    frame = adult_holdout[["age", "income"]].copy()
    odd = frame.index % 2 == 1
    positive = frame["income"] == 1
    frame["cohort"] = np.select([~odd, positive], ["a", "c"], default="b")  # b: no positives
    data = Dataset(frame, target="income", features=("age",), name="cohorts")
    model = CallableModel(lambda X: (X["age"] > 40).astype(int).to_numpy(), name="age")
    result = check_fairness(
        model, data, sensitive="cohort", metric="equalized_odds_difference", max=0.5, **fast()
    )
    rows = {r["group"]: r for r in result.tables["groups"]}
    assert rows["b"]["tpr"] is None
    assert rows["b"]["note"] == "tpr undefined (no positives)"
    assert rows["c"]["fpr"] is None
    assert rows["c"]["note"] == "fpr undefined (no negatives)"
    # defined groups only, where fairlearn would count b's TPR (and c's FPR) as 0
    assert result.metrics["cohort.equal_opportunity_difference"] == pytest.approx(
        abs(rows["a"]["tpr"] - rows["c"]["tpr"])
    )
    assert "cohort='b': tpr undefined (no positives)" in result.details

    only_a = data.subset((frame["cohort"] != "c").to_numpy(), name="no-c")
    undefined = check_fairness(
        model, only_a, sensitive="cohort", metric="equal_opportunity_difference", max=0.1, **fast()
    )
    assert undefined.inconclusive
    assert "equal_opportunity_difference is undefined on cohort" in undefined.message
    row = next(r for r in undefined.tables["disparities"] if r["bound"])
    assert row["value"] is None
    assert row["status"] == "inconclusive"
    selection = check_fairness(model, only_a, sensitive="cohort", max=1.0, **fast())
    assert selection.passed  # selection rates stay defined


def test_non_binary_predictions_are_refused(holdout):
    three = CallableModel(lambda X: np.arange(len(X)) % 3, name="three-classes")
    with pytest.raises(
        CheckError,
        match=r"demographic_parity_difference needs binary labels and predictions: model "
        r"'three-classes' predicted 3 distinct values \(0, 1, 2\)",
    ):
        check_fairness(three, holdout, sensitive="sex")
    scores = CallableModel(lambda X: np.linspace(0, 1, len(X)), name="scores")
    with pytest.raises(CheckError, match="set 'threshold' to cut probabilities"):
        check_fairness(scores, holdout, sensitive="sex", metric="four_fifths")


def test_threshold_cuts_probabilities(model, holdout):
    loose = check_fairness(model, holdout, sensitive="sex", threshold=0.2, **fast())
    tight = check_fairness(model, holdout, sensitive="sex", threshold=0.8, **fast())
    proba = model.predict_proba(holdout.X)[:, 1]
    for result, cut in ((loose, 0.2), (tight, 0.8)):
        expected = flm.demographic_parity_difference(
            holdout.y, (proba >= cut).astype(int), sensitive_features=holdout.frame["sex"]
        )
        assert result.value == pytest.approx(expected, abs=1e-12)


def test_bad_options_are_named(model, holdout):
    with pytest.raises(CheckError, match="unknown fairness metric 'demographic_parity_diff'"):
        check_fairness(model, holdout, metric="demographic_parity_diff")
    with pytest.raises(CheckError, match=r"'on' must be .*got 'both'"):
        check_fairness(model, holdout, on="both")  # type: ignore[arg-type]
    with pytest.raises(CheckError, match=r"gate 'f': min \(0.9\) is greater than max \(0.1\)"):
        check_fairness(model, holdout, min=0.9, max=0.1, name="f")


def test_gate_settings_are_validated_at_config_load():
    kind = GATE_KINDS["fairness"]
    where = "pyproject.toml gate 'fair'"
    with pytest.raises(ConfigError, match="did you mean 'equalized_odds_difference'"):
        kind.validate({"metric": "equalised_odds_difference"}, where)
    with pytest.raises(ConfigError, match="'on' must be"):
        kind.validate({"on": "mean"}, where)
    with pytest.raises(ConfigError, match="'min_group_size' must be >= 1"):
        kind.validate({"min_group_size": 0}, where)
    params = kind.validate({"sensitive": "sex", "max": 0.1}, where)
    assert params["sensitive"] == ("sex",)
    assert params["on"] == "interval"
    with pytest.raises(ConfigError, match="the setting 'baseline' is required"):
        GATE_KINDS["fairness_regression"].validate({}, where)


def test_dataset_fixture_frame_is_untouched(adult_holdout):
    assert "cohort" not in adult_holdout.columns
    assert isinstance(adult_holdout, pd.DataFrame)
