"""The Spark engine on local[2]: profiles equal the single-process ones, drift is found where it
is, count-based checks equal the single-process checks and fairlearn, bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from engine_helpers import assert_same_profile, make_frame, write_parquet
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    selection_rate,
)
from sklearn.metrics import accuracy_score, precision_score, recall_score

from pytest_mlops import (
    DataError,
    DriftProfile,
    check_drift,
    check_integrity,
    check_schema,
    infer_schema,
)
from pytest_mlops.cli import main
from pytest_mlops.engines import counts

BINS = 256


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-data")
    ref, cur = make_frame(6000, 1), make_frame(5000, 2, shift=0.4)
    return ref, cur, write_parquet(ref, folder / "ref.parquet"), write_parquet(cur, folder / "cur")


def test_a_spark_profile_equals_the_single_process_one_grid_included(spark, data):
    ref, _, ref_path, _ = data
    # partitions by group: one holds only missing x, one holds the only "only5" rows
    frame = spark.read.parquet(str(ref_path)).repartition(7, "g")
    assert_same_profile(DriftProfile.fit(ref, bins=BINS), DriftProfile.fit_spark(frame, bins=BINS))


@pytest.mark.parametrize("partitions", [1, 200])
def test_counts_on_a_grid_do_not_depend_on_the_partitioning(spark, data, partitions):
    ref, _, ref_path, _ = data
    grid = DriftProfile.fit(ref.head(500), bins=BINS)
    frame = spark.read.parquet(str(ref_path))
    # 200 partitions by group: 193 of them are empty
    frame = frame.coalesce(1) if partitions == 1 else frame.repartition(200, "g")
    assert frame.rdd.getNumPartitions() == partitions
    assert_same_profile(DriftProfile.fit(ref, grid=grid), DriftProfile.fit(frame, grid=grid))


def test_drift_is_found_in_the_shifted_column_only(spark, data):
    ref, cur, ref_path, cur_path = data
    profile = DriftProfile.fit_spark(spark.read.parquet(str(ref_path)), bins=BINS)
    current = spark.read.parquet(str(cur_path))
    result = check_drift(profile, current)
    assert result.failed
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert [c for c, r in rows.items() if r["drifted"]] == ["x"]
    # the same comparison as with the current data in memory
    local = check_drift(DriftProfile.fit(ref, bins=BINS), cur)
    for row in local.tables["columns"]:
        assert rows[row["column"]]["statistic"] == pytest.approx(row["statistic"], abs=1e-12)
        assert rows[row["column"]]["p_value"] == pytest.approx(row["p_value"], rel=1e-9)


def test_prediction_and_target_drift(spark, data):
    ref, cur, ref_path, cur_path = data
    sref = spark.read.parquet(str(ref_path))
    scur = spark.read.parquet(str(cur_path))
    # a model's score drifts with x; its label (k < 25) does not
    score = check_drift(
        sref.selectExpr("x * 2 + 1 AS score"), scur.selectExpr("x * 2 + 1 AS score")
    )
    assert score.failed
    assert score.tables["columns"][0]["column"] == "score"
    label = "CAST(k < 25 AS INT) AS label"
    target = check_drift(sref.selectExpr(label), scur.selectExpr(label), categorical=["label"])
    assert target.passed, target.message
    assert target.tables["columns"][0]["test"] == "chi2"
    expected = check_drift(
        ref.assign(label=(ref.k < 25).astype(int))[["label"]],
        cur.assign(label=(cur.k < 25).astype(int))[["label"]],
        categorical=["label"],
    )
    assert target.tables["columns"][0]["p_value"] == pytest.approx(
        expected.tables["columns"][0]["p_value"], rel=1e-12
    )


def test_bad_input_names_the_column(spark, data):
    _, _, ref_path, _ = data
    frame = spark.read.parquet(str(ref_path))
    nested = frame.selectExpr("x", "array(k, g) AS pair")
    with pytest.raises(DataError, match="column 'pair' has the nested type array<bigint>"):
        DriftProfile.fit_spark(nested)
    with pytest.raises(DataError, match="no column 'kk' - did you mean 'k'"):
        DriftProfile.fit_spark(frame, columns=["kk"])
    profile = DriftProfile.fit_spark(frame.select("x", "k", "s"), bins=BINS)
    retyped = frame.selectExpr("CAST(x AS STRING) AS x", "s")  # x became text; k is gone
    result = profile.compare(retyped)
    notes = {r["column"]: r["note"] for r in result.tables["columns"]}
    assert notes["x"] == "type changed: numeric in reference, categorical in current"
    assert notes["k"] == "missing from the current data"
    with pytest.raises(DataError, match="expected a Spark DataFrame"):
        DriftProfile.fit_spark(pd.DataFrame({"x": [1.0]}))


def test_schema_integrity_and_group_metrics_equal_the_single_process_ones(spark, data, tmp_path):
    ref, cur, _, _ = data
    schema = infer_schema(ref)
    batch = cur.copy()
    batch.loc[:40, "k"] = 99  # out of range
    batch.loc[50:60, "s"] = "z"  # unseen category
    batch = pd.concat([batch, batch.head(25)], ignore_index=True)  # 25 duplicate rows
    batch["y"] = (batch.x.fillna(0) + batch.k / 50 > 0.6).astype(int)
    batch["pred"] = (batch.x.fillna(1) > 0.5).astype(int)  # every group has positive decisions
    path = write_parquet(batch, tmp_path / "batch", files=3)
    frame = spark.read.parquet(str(path)).repartition(5)
    features = batch.drop(columns=["y", "pred"])
    got = counts.check_schema(frame.drop("y", "pred"), schema)
    want = check_schema(features, schema)
    assert got.status == want.status == "failed"
    assert _counted(got) == _counted(want)
    integrity = counts.check_integrity(frame.drop("y", "pred"), max_duplicate_share=0.001)
    single = check_integrity(features, max_duplicate_share=0.001)
    assert integrity.metrics["duplicate_share"] == single.metrics["duplicate_share"] > 0
    missing = {r["column"]: r["missing_share"] for r in integrity.tables["missing"]}
    assert missing["x"] == pytest.approx(features.x.isna().mean(), abs=1e-9)
    groups = counts.group_metrics(frame, y_true="y", y_pred="pred", sensitive="g")
    _assert_like_fairlearn(groups, batch)


def _counted(result):
    """Violations without examples and row labels (a partitioned table has none)."""
    drop = ("examples", "rows")
    return [{k: v for k, v in r.items() if k not in drop} for r in result.tables["violations"]]


def _assert_like_fairlearn(groups, batch):
    y, pred, s = batch.y, batch.pred, batch.g.astype(str)
    frame = MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "precision": precision_score,
            "recall": recall_score,
            "selection_rate": selection_rate,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=s,
    ).by_group
    for metric in ("accuracy", "precision", "recall", "selection_rate"):
        want = frame[metric].reindex(list(groups.groups)).to_numpy()
        np.testing.assert_allclose(groups.by_group[metric], want, rtol=0, atol=1e-12)
    for name, fn in (
        ("demographic_parity_difference", demographic_parity_difference),
        ("demographic_parity_ratio", demographic_parity_ratio),
        ("equalized_odds_difference", equalized_odds_difference),
        ("equalized_odds_ratio", equalized_odds_ratio),
        ("equal_opportunity_difference", equal_opportunity_difference),
    ):
        assert groups.disparities[name] == pytest.approx(
            fn(y, pred, sensitive_features=s), abs=1e-12
        )


def test_monitor_on_a_lake_finds_the_drifted_column(spark, data, tmp_path, capsys):
    ref, cur, _, _ = data
    DriftProfile.fit(ref, bins=BINS).save(tmp_path / "profile.npz")
    lake = write_parquet(cur, tmp_path / "lake", files=4)
    report = tmp_path / "report.json"
    code = main(
        [
            "monitor", "--engine", "spark", "--profile", str(tmp_path / "profile.npz"),
            "--current", str(lake), "--report", str(report), "--state", str(tmp_path / "state"),
            "--spark-conf", "spark.sql.shuffle.partitions=3",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    assert "monitor: DRIFT" in out
    assert "x" in out
    entry = json.loads(report.read_text())["results"][0]
    drifted = [r["column"] for r in entry["tables"]["columns"] if r["drifted"]]
    assert drifted == ["x"]
    assert main(["monitor", "--engine", "spark", "--profile", str(tmp_path / "profile.npz"),
                 "--current", str(tmp_path / "nowhere"), "--state", str(tmp_path / "s")]) == 2  # fmt: skip


def test_a_delta_table_without_delta_spark_names_what_to_install(spark, data, tmp_path, capsys):
    ref, cur, _, _ = data
    DriftProfile.fit(ref, bins=BINS).save(tmp_path / "profile.npz")
    table = write_parquet(cur, tmp_path / "table", files=2)
    (table / "_delta_log").mkdir()  # a Delta table's layout; this session has no Delta reader
    args = ["monitor", "--engine", "spark", "--profile", str(tmp_path / "profile.npz")]
    args += ["--current", str(table), "--state", str(tmp_path / "state")]
    assert main(args) == 2
    out = capsys.readouterr().out
    assert "is a Delta table" in out
    assert "pip install delta-spark" in out
