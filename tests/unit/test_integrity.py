"""Data integrity: duplicates, constant columns, label conflicts, balance, overlap, leakage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score, roc_auc_score

from pytest_mlops import CheckError, DataError, load_dataset
from pytest_mlops.data.integrity import check_integrity, feature_power, roc_auc


def checks(result) -> dict[str, dict[str, Any]]:
    return {row["check"]: row for row in result.tables["checks"]}


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "colour": rng.choice(["red", "blue", "green"], size=n),
            "y": (x + rng.normal(size=n) > 0).astype(int),
        }
    )


def test_clean_adult_split_passes(adult_train, adult_holdout):
    current = load_dataset(adult_holdout, target="income", name="current")
    result = check_integrity(current, reference=load_dataset(adult_train, target="income"))
    assert result.passed, result.message
    assert set(checks(result)) == {
        "duplicates",
        "constant_columns",
        "conflicting_labels",
        "class_balance",
        "target_leakage",
        "overlap",
    }
    dup = adult_holdout.duplicated().sum()
    assert result.metrics["duplicate_share"] == pytest.approx(dup / len(adult_holdout))
    share = adult_holdout["income"].value_counts(normalize=True).min()
    assert result.metrics["min_class_share"] == pytest.approx(share)
    assert result.tables["feature_power"][0]["feature"] == "relationship"


def test_duplicates_and_constant_columns_fail():
    data = pd.concat([frame(), frame().head(40)], ignore_index=True).assign(source="web")
    loose = check_integrity(data, target="y", max_duplicate_share=0.1, max_constant_columns=1)
    assert loose.passed, loose.message
    strict = check_integrity(data, target="y")
    assert strict.metrics["duplicate_share"] == pytest.approx(40 / 440)
    assert checks(strict)["duplicates"]["status"] == "failed"
    assert checks(strict)["constant_columns"]["status"] == "failed"
    assert strict.tables["constant_columns"] == [{"column": "source", "value": "web"}]
    assert "constant_columns must be <= 0: measured 1 ('source')" in strict.message
    assert strict.tables["duplicates"][:2] == [
        {"row": 400, "same_as": 0},
        {"row": 401, "same_as": 1},
    ]


def test_repeated_index_labels_are_handled():
    data = pd.concat([frame(), frame().head(40)])  # labels 0..39 twice
    result = check_integrity(data, target="y")
    assert result.tables["duplicates"][0] == {"row": 400, "same_as": 0}


def test_conflicting_labels_are_counted():
    data = frame()
    twins = data.head(10).assign(y=lambda f: 1 - f["y"])
    result = check_integrity(pd.concat([data, twins], ignore_index=True), target="y")
    assert result.metrics["conflicting_share"] == pytest.approx(20 / 410)
    assert checks(result)["conflicting_labels"]["status"] == "failed"


def test_rare_class_fails_class_balance():
    data = frame()
    data["y"] = 0
    data.loc[:1, "y"] = 1  # 2 of 400 rows
    result = check_integrity(data, target="y")
    assert result.metrics["min_class_share"] == pytest.approx(2 / 400)
    assert checks(result)["class_balance"]["status"] == "failed"
    assert result.tables["class_balance"][1] == {"class": 1, "count": 2, "share": 0.005}


def test_train_test_overlap_is_leakage():
    train, test = frame(seed=1), frame(seed=2)
    leaked = pd.concat([test, train.head(30)], ignore_index=True)
    result = check_integrity(leaked, reference=train, target="y")
    assert result.metrics["overlap_share"] == pytest.approx(30 / 430)
    assert checks(result)["overlap"]["status"] == "failed"
    assert check_integrity(test, reference=train, target="y").metrics["overlap_share"] == 0


def test_a_feature_that_gives_the_target_away_is_found():
    data = frame()
    data["approved"] = np.where(data["y"] == 1, "yes", "no")  # written after the outcome
    data["score_after"] = data["y"] * 3 + np.random.default_rng(5).normal(scale=0.2, size=400)
    result = check_integrity(data, target="y")
    powers = {row["feature"]: row["power"] for row in result.tables["feature_power"]}
    assert powers["approved"] == pytest.approx(1.0)
    assert powers["score_after"] > 0.99
    assert powers["x"] < 0.9
    assert powers["z"] < 0.3
    assert "strongest single feature" in result.message


def test_feature_power_matches_sklearn_auc():
    data = frame(2000)
    power = feature_power(data["x"], data["y"])
    auc = roc_auc_score(data["y"], data["x"])
    assert power["power"] == pytest.approx(2 * auc - 1, abs=0.02)
    assert power["power"] >= 2 * auc - 1 - 1e-12  # the raw-value AUC is a floor
    falling = feature_power(-data["x"], data["y"])  # a feature that predicts by falling
    assert falling["power"] >= 2 * auc - 1 - 1e-12


def test_rank_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=500)
    for score in (rng.normal(size=500), rng.integers(0, 4, size=500).astype(float)):
        assert roc_auc(y == 1, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_an_id_column_does_not_look_like_leakage():
    data = frame().assign(customer=[f"c{i}" for i in range(400)])
    powers = {
        r["feature"]: r["power"] for r in check_integrity(data, target="y").tables["feature_power"]
    }
    assert powers["customer"] < 0.2  # out of fold, unseen ids carry no information


def test_multiclass_and_regression_targets():
    data = frame()
    data["label"] = pd.cut(data["x"], 3, labels=["low", "mid", "high"]).astype(str)
    power = feature_power(data["x"], data["label"])
    assert power["power"] > 0.9
    assert power["score"].startswith("accuracy=")
    data["amount"] = data["x"] * 2.0
    reg = feature_power(data["x"], data["amount"])
    assert reg["score"].startswith("r2=")
    assert reg["power"] > 0.9
    noise = feature_power(data["z"], data["amount"])
    assert noise["power"] < 0.1
    assert r2_score(data["amount"], data["amount"]) == 1.0


def test_one_row_is_inconclusive_and_no_target_skips_label_checks():
    result = check_integrity(frame().head(1), target="y")
    assert result.inconclusive
    assert "has 1 row" in result.message
    unlabeled = check_integrity(frame().drop(columns=["y"]))
    assert set(checks(unlabeled)) == {"duplicates", "constant_columns"}


def test_bad_input_is_named():
    with pytest.raises(DataError, match=r"no target column 'yy' - did you mean 'y'\?"):
        check_integrity(frame(), target="yy")
    with pytest.raises(CheckError, match=r"'max_overlap_share' must be a share in \[0, 1\]"):
        check_integrity(frame(), max_overlap_share=5)
    with pytest.raises(DataError, match="shares no feature column"):
        check_integrity(frame(), reference=pd.DataFrame({"q": [1, 2]}), target="y")
