"""The Dask engine on a LocalCluster: the same partial-profile path as Spark, the same answers."""

from __future__ import annotations

import json

import dask.dataframe as dd
import numpy as np
import pytest
from dask.delayed import delayed
from engine_helpers import assert_same_profile, make_frame, write_parquet

from pytest_mlops import DataError, DriftProfile, check_drift, check_integrity
from pytest_mlops.cli import main
from pytest_mlops.engines import counts

BINS = 256


@pytest.fixture(scope="module")
def frames():
    return make_frame(6000, 1), make_frame(5000, 2, shift=0.4)


def test_a_dask_profile_equals_the_single_process_one_grid_included(dask_client, frames):
    ref, _ = frames
    # sorted by group: partitions hold only missing x, or the only "only5" rows
    ddf = dd.from_pandas(ref.sort_values("g", kind="stable").reset_index(drop=True), npartitions=7)
    assert_same_profile(DriftProfile.fit(ref, bins=BINS), DriftProfile.fit_dask(ddf, bins=BINS))


@pytest.mark.parametrize("partitions", [1, 200])
def test_counts_on_a_grid_do_not_depend_on_the_partitioning(dask_client, frames, partitions):
    ref, _ = frames
    grid = DriftProfile.fit(ref.head(500), bins=BINS)
    ddf = dd.from_pandas(
        ref.sort_values("g", kind="stable").reset_index(drop=True), npartitions=partitions
    )
    if partitions == 200:  # the partitions that held only group 4 become empty
        ddf = ddf[ddf.g != 4]
        assert int((ddf.map_partitions(len).compute() == 0).sum()) > 10
    want = ddf.compute()
    assert_same_profile(DriftProfile.fit(want, grid=grid), DriftProfile.fit(ddf, grid=grid))


def test_drift_and_count_based_checks(dask_client, frames):
    ref, cur = frames
    profile = DriftProfile.fit_dask(dd.from_pandas(ref, npartitions=4), bins=BINS)
    result = check_drift(profile, dd.from_pandas(cur, npartitions=5))
    assert [r["column"] for r in result.tables["columns"] if r["drifted"]] == ["x"]
    local = check_drift(DriftProfile.fit(ref, bins=BINS), cur)
    for a, b in zip(result.tables["columns"], local.tables["columns"], strict=True):
        assert a["statistic"] == pytest.approx(b["statistic"], abs=1e-12)
    doubled = dd.from_pandas(cur.iloc[np.r_[0:5000, 0:30]], npartitions=6)
    found = counts.check_integrity(doubled)
    assert (
        found.metrics["duplicate_share"]
        == check_integrity(doubled.compute()).metrics["duplicate_share"]
    )
    assert found.metrics["duplicates"] == 30


def test_a_column_missing_in_some_partitions_is_refused(dask_client, frames):
    ref, _ = frames
    a, b = ref.iloc[:100], ref.iloc[100:200].drop(columns="x")
    ddf = dd.from_delayed([delayed(a), delayed(b)], meta=a.iloc[:0], verify_meta=False)
    with pytest.raises(DataError, match="column 'x' is missing in some partitions"):
        DriftProfile.fit_dask(ddf, bins=64)
    grid = DriftProfile.fit(ref, bins=64)
    with pytest.raises(DataError, match="column 'x' is missing in some partitions"):
        grid.compare(ddf)


def test_monitor_with_dask(dask_client, frames, tmp_path, capsys):
    ref, cur = frames
    DriftProfile.fit(ref, bins=BINS).save(tmp_path / "profile.npz")
    lake = write_parquet(cur, tmp_path / "lake", files=3)
    report = tmp_path / "report.json"
    args = ["monitor", "--engine", "dask", "--profile", str(tmp_path / "profile.npz")]
    args += ["--current", str(lake), "--report", str(report), "--state", str(tmp_path / "st")]
    assert main(args) == 1, capsys.readouterr().out
    entry = json.loads(report.read_text())["results"][0]
    assert [r["column"] for r in entry["tables"]["columns"] if r["drifted"]] == ["x"]
