"""The drift engine: statistics against scipy, verdicts, profiles, bad input."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from pytest_mlops import CheckError, DataError, DriftProfile, check_drift, check_multivariate_drift
from pytest_mlops.checks.drift.profile import CategoricalProfile, NumericProfile
from pytest_mlops.checks.drift.univariate import (
    adjust_pvalues,
    batched_searchsorted,
    chi2_homogeneity,
    jensen_shannon,
    ks_pvalue,
    numeric_block,
)

COLUMN_KEYS = {
    "column", "type", "test", "statistic", "p_value", "p_adjusted", "effect", "effect_name",
    "threshold", "drifted", "missing_ref", "missing_cur", "unseen",
}  # fmt: skip


def numeric(profile: DriftProfile, column: str) -> NumericProfile:
    found = profile.columns[column]
    assert isinstance(found, NumericProfile), f"{column} is not profiled as numeric"
    return found


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "k": rng.integers(0, 5, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )


# --- statistics against the reference implementations ------------------------------------


@pytest.mark.parametrize(
    ("n1", "n2", "rounding"),
    [(40, 60, None), (500, 500, 1), (3000, 2000, None), (12000, 15000, 1), (20000, 9000, None)],
)
def test_ks_and_wasserstein_match_scipy(n1, n2, rounding):
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=(3, n1))
    b = rng.normal(0.05, 1.1, size=(3, n2))
    if rounding is not None:  # ties within and between the samples
        a, b = np.round(a, rounding), np.round(b, rounding)
    a[1, :7] = np.nan
    b[2, :11] = np.nan
    raw_a, raw_b = a.copy(), b.copy()
    out = numeric_block(a, b)
    p = ks_pvalue(out["ks"], out["n_ref"], out["n_cur"])
    for j in range(3):
        x, y = raw_a[j][~np.isnan(raw_a[j])], raw_b[j][~np.isnan(raw_b[j])]
        expected = stats.ks_2samp(x, y)  # method="auto": exact up to 10,000 values
        assert out["ks"][j] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[j] == pytest.approx(expected.pvalue, abs=1e-4)
        assert out["wasserstein"][j] == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)
        assert out["n_ref"][j] == len(x)
        assert out["n_cur"][j] == len(y)


def test_batched_searchsorted_matches_numpy_row_by_row():
    rng = np.random.default_rng(0)
    rows = np.sort(np.round(rng.normal(size=(5, 301)), 1), axis=1)
    rows[2, -20:] = np.nan  # NaN sorts last
    needles = np.round(rng.normal(size=(5, 13)), 1)
    for side in ("left", "right"):
        got = batched_searchsorted(rows, needles, side)
        want = np.stack([np.searchsorted(rows[i], needles[i], side) for i in range(5)])
        np.testing.assert_array_equal(got, want)


def test_chi_square_and_jensen_shannon_match_scipy():
    ref = np.array([[120, 30, 50, 0], [400, 100, 0, 0], [5, 5, 5, 5]], dtype=float)
    cur = np.array([[100, 45, 40, 9], [380, 140, 0, 0], [5, 5, 5, 5]], dtype=float)
    statistic, p, dof = chi2_homogeneity(ref, cur)
    for i in range(3):
        table = np.vstack([ref[i], cur[i]])
        table = table[:, table.sum(axis=0) > 0]
        expected = stats.chi2_contingency(table)  # Yates' correction where dof == 1
        assert statistic[i] == pytest.approx(expected.statistic, rel=1e-10, abs=1e-12)
        assert p[i] == pytest.approx(expected.pvalue, rel=1e-10)
        assert dof[i] == expected.dof
    js = jensen_shannon(ref, cur)
    for i in range(3):
        assert js[i] == pytest.approx(distance.jensenshannon(ref[i], cur[i]), abs=1e-12)


def test_corrections_match_scipy_and_leave_nan_alone():
    p = np.array([0.001, 0.04, 0.03, np.nan, 0.2, 0.0125])
    finite = p[np.isfinite(p)]
    bh = adjust_pvalues(p, "bh")
    np.testing.assert_allclose(bh[np.isfinite(p)], stats.false_discovery_control(finite))
    assert np.isnan(bh[3])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni")[[0, 1]], [0.005, 0.2])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)


# --- verdicts -------------------------------------------------------------------------------


def test_adult_train_and_holdout_do_not_drift(adult_train, adult_holdout):
    result = check_drift(adult_train.drop(columns="income"), adult_holdout.drop(columns="income"))
    assert result.passed, result.message
    rows = result.tables["columns"]
    assert len(rows) == 14
    assert all(set(r) >= COLUMN_KEYS for r in rows)
    assert {r["type"] for r in rows} == {"numeric", "categorical"}
    assert result.metrics["drifted_share"] == 0.0
    by_column: dict[str, int] = {}
    for row in result.tables["histograms"]:
        by_column[row["column"]] = by_column.get(row["column"], 0) + 1
    assert set(by_column) == {r["column"] for r in rows}
    assert max(by_column.values()) <= 11


def test_a_shifted_column_is_named_with_its_effect(adult_train):
    ref = adult_train.iloc[::2].drop(columns="income")
    cur = adult_train.iloc[1::2].drop(columns="income").copy()
    cur["age"] = cur["age"] + 0.3 * ref["age"].std()
    result = check_drift(ref, cur)
    assert result.failed
    assert "1 of 14 columns drifted: age" in result.message
    (row,) = [r for r in result.tables["columns"] if r["drifted"]]
    assert row["effect_name"] == "wasserstein"
    assert row["effect"] == pytest.approx(0.3, abs=0.02)
    assert row["wasserstein"] == row["effect"]
    assert row["p_adjusted"] < 1e-10
    assert check_drift(ref, cur, max_drifted_share=0.1).passed


def test_tiny_shift_on_many_rows_is_significant_but_not_drift():
    rng = np.random.default_rng(3)
    n = 200_000
    ref = pd.DataFrame({"x": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1, n)})
    result = check_drift(ref, cur)
    (row,) = result.tables["columns"]
    assert row["p_adjusted"] < 0.05  # every difference is significant at this size...
    assert row["effect"] < row["threshold"]
    assert result.passed
    assert check_drift(ref, cur, method="test").failed


def test_small_samples_rely_on_the_p_value():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 300)})
    cur = pd.DataFrame({"x": rng.normal(0.5, 1, 300)})
    result = check_drift(ref, cur)  # n <= small_sample: the test decides
    assert result.failed
    loose = {"wasserstein": 0.8, "ks": 0.5}
    assert check_drift(ref, cur, method="effect", thresholds=loose).passed


def test_correction_and_categorical_settings():
    ref, cur = _frame(2000, 0), _frame(2000, 1)
    cur.loc[:300, "c"] = "d"  # an unseen category
    result = check_drift(ref, cur, correction="bonferroni", categorical=["k"])
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert rows["k"]["type"] == "categorical"
    assert rows["k"]["test"] == "chi2"
    assert rows["c"]["drifted"]
    assert rows["c"]["unseen"] == pytest.approx(301 / 2000)
    assert "unseen categories" in rows["c"]["note"]
    p = [rows[c]["p_value"] for c in ("x", "k", "c")]
    assert [rows[c]["p_adjusted"] for c in ("x", "k", "c")] == pytest.approx(
        list(np.minimum(np.array(p) * 3, 1))
    )
    psi_result = check_drift(ref, cur, categorical_effect="psi")
    assert {r["effect_name"] for r in psi_result.tables["columns"]} <= {"wasserstein", "ks", "psi"}
    assert psi_result.tables["columns"][2]["effect_name"] == "psi"


# --- bad input ------------------------------------------------------------------------------


def test_differing_columns_and_types_get_explicit_statuses():
    ref = _frame(500, 0)
    cur = _frame(500, 1).drop(columns="k").assign(x=lambda f: f["x"].astype(str), extra=1.0)
    result = check_drift(ref, cur)
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert rows["k"]["drifted"]
    assert rows["k"]["note"] == "missing from the current data"
    assert rows["x"]["drifted"]
    assert "type changed: numeric in reference" in rows["x"]["note"]
    assert not rows["extra"]["drifted"]
    assert "not in the reference" in rows["extra"]["note"]
    assert result.failed
    assert "k" in result.message
    assert "x" in result.message
    with pytest.raises(DataError, match="'z' is not in the reference"):
        check_drift(ref, cur, columns=["z"])


def test_missing_all_missing_and_constant_columns():
    ref = _frame(1000, 0).assign(gone=1.0, flat=2.0, empty=np.nan)
    cur = _frame(1000, 1).assign(gone=np.nan, flat=2.0, empty=np.nan)
    cur.loc[:200, "c"] = None  # missing rate 0% -> 20%
    result = check_drift(ref, cur)
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert rows["gone"]["drifted"]
    assert "all values missing in the current" in rows["gone"]["note"]
    assert not rows["empty"]["drifted"]
    assert "missing in both" in rows["empty"]["note"]
    assert not rows["flat"]["drifted"]
    assert rows["flat"]["note"] == "constant in reference"
    assert rows["flat"]["effect"] == pytest.approx(0.0, abs=1e-12)
    assert rows["c"]["drifted"]
    assert "missing rate 0.00% -> 20.10%" in rows["c"]["note"]
    assert rows["c"]["missing_cur"] == pytest.approx(0.201)


def test_zero_rows_and_bad_settings_are_clear_errors():
    ref = _frame(100, 0)
    with pytest.raises(DataError, match="current data is empty"):
        check_drift(ref, ref.iloc[:0])
    with pytest.raises(CheckError, match="unknown drift setting 'alhpa' - did you mean 'alpha'"):
        check_drift(ref, ref, alhpa=0.1)
    with pytest.raises(CheckError, match="'correction' must be 'bh', 'bonferroni' or 'none'"):
        check_drift(ref, ref, correction="holm")
    with pytest.raises(CheckError, match="unknown effect 'wasserstien'"):
        check_drift(ref, ref, thresholds={"wasserstien": 0.2})


# --- profiles -------------------------------------------------------------------------------


def test_profile_compare_matches_the_exact_path_within_its_bounds(
    adult_train, adult_holdout, tmp_path
):
    ref = adult_train.drop(columns="income")
    cur = adult_holdout.drop(columns="income")
    cur = cur.assign(fnlwgt=cur["fnlwgt"] * 1.1)
    path = DriftProfile.fit(ref).save(tmp_path / "ref.npz")
    from_profile = DriftProfile.load(path).compare(cur)
    exact = check_drift(ref, cur)
    assert from_profile.status == exact.status == "failed"
    for a, b in zip(exact.tables["columns"], from_profile.tables["columns"], strict=True):
        assert a["column"] == b["column"]
        assert a["drifted"] == b["drifted"]
        if a["type"] == "categorical":
            assert b["statistic"] == pytest.approx(a["statistic"], rel=1e-12)
            assert b["effect"] == pytest.approx(a["effect"], rel=1e-12)
            continue
        # D_grid <= D <= D_grid + bound; W1 within its bound; exact for low-cardinality columns
        assert b["statistic"] <= a["statistic"] + 1e-12
        assert a["statistic"] <= b["statistic"] + b["ks_error_bound"] + 1e-12
        assert abs(a["wasserstein"] - b["wasserstein"]) <= b["wasserstein_error_bound"] + 1e-9
        if a["column"] != "fnlwgt":
            assert b["ks_error_bound"] == 0.0
            assert b["p_value"] == pytest.approx(a["p_value"], abs=1e-9)
    assert from_profile.metrics["ks_error_bound"] <= 1 / 4096 + 1e-9
    assert check_drift(DriftProfile.load(path), cur).status == "failed"


def test_profiles_merge_exactly_and_associatively(adult_train):
    frame = adult_train.drop(columns="income")
    grid = DriftProfile.fit(frame.iloc[:5000], bins=256)
    parts = [DriftProfile.fit(frame.iloc[i::3], grid=grid) for i in range(3)]
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[0].merge(parts[1].merge(parts[2]))
    whole = DriftProfile.fit(frame, grid=grid)
    for merged in (left, right):
        assert merged.n_rows == len(frame)
        for name, column in whole.columns.items():
            other = merged.columns[name]
            if isinstance(column, NumericProfile):
                assert isinstance(other, NumericProfile)
                np.testing.assert_array_equal(column.at, other.at)
                np.testing.assert_array_equal(column.inside, other.inside)
                assert column.std == pytest.approx(other.std, rel=1e-9)
            else:
                assert isinstance(other, CategoricalProfile)
                assert dict(column.counts) == dict(other.counts)
    chunks = DriftProfile.fit_chunks(
        (frame.iloc[i : i + 7000] for i in range(0, len(frame), 7000)), grid=grid
    )
    assert numeric(chunks, "age").count == numeric(whole, "age").count
    with pytest.raises(CheckError, match="different grids"):
        DriftProfile.fit(frame.iloc[:100], bins=256).merge(grid)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_compare_path_reads_in_chunks_like_in_memory(adult_train, adult_holdout, tmp_path, suffix):
    profile = DriftProfile.fit(adult_train.drop(columns="income"))
    path = tmp_path / f"current{suffix}"
    if suffix == ".csv":
        adult_holdout.to_csv(path, index=False)
    else:
        adult_holdout.to_parquet(path, row_group_size=3000)
    chunked = profile.compare_path(path, chunk_rows=2500)
    in_memory = profile.compare(adult_holdout)
    assert chunked.passed
    assert in_memory.passed
    for a, b in zip(chunked.tables["columns"], in_memory.tables["columns"], strict=True):
        assert a["statistic"] == pytest.approx(b["statistic"], abs=1e-12)
        assert a["p_value"] == pytest.approx(b["p_value"], abs=1e-9)


def test_corrupt_and_foreign_profiles_are_refused(adult_train, tmp_path):
    path = DriftProfile.fit(adult_train[["age", "sex"]]).save(tmp_path / "p.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"broken\.npz.*corrupt or truncated"):
        DriftProfile.load(broken)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match=r"text\.npz"):
        DriftProfile.load(text)
    foreign = tmp_path / "foreign.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = bytes(arrays["header"]).decode().replace('"version": 2', '"version": 99')
    arrays["header"] = np.frombuffer(header.encode(), dtype=np.uint8)
    np.savez(foreign, **arrays)
    with pytest.raises(DataError, match="format version 99; this pytest-mlops reads version 2"):
        DriftProfile.load(foreign)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(DataError, match="no valid header"):
        DriftProfile.load(other)
    with pytest.raises(DataError, match="does not exist"):
        DriftProfile.load(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(path)


def test_profile_compare_reports_missing_and_retyped_columns(adult_train):
    profile = DriftProfile.fit(adult_train[["age", "hours_per_week", "sex"]])
    cur = adult_train[["age", "sex"]].assign(age=lambda f: f["age"].astype(str))
    result = profile.compare(cur)
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert "type changed" in rows["age"]["note"]
    assert rows["age"]["drifted"]
    assert rows["hours_per_week"]["note"] == "missing from the current data"
    assert not rows["sex"]["drifted"]
    assert result.failed


# --- multivariate ---------------------------------------------------------------------------


def test_mmd_sees_a_change_in_correlation_the_columns_hide():
    rng = np.random.default_rng(0)
    x = rng.normal(size=600)
    ref = pd.DataFrame({"a": x, "b": x + 0.3 * rng.normal(size=600)})
    y = rng.normal(size=600)
    cur = pd.DataFrame({"a": y, "b": -y + 0.3 * rng.normal(size=600)})
    assert check_drift(ref, cur).passed  # each column alone looks the same
    result = check_multivariate_drift(ref, cur, n_permutations=200, seed=1)
    assert result.failed
    assert result.metrics["p_value"] < 0.01
    same = check_multivariate_drift(ref, ref.sample(frac=1, random_state=0), n_permutations=200)
    assert same.passed
    again = check_multivariate_drift(ref, cur, n_permutations=200, seed=1)
    assert again.metrics["p_value"] == result.metrics["p_value"]


def test_domain_classifier_auc(adult_train):
    ref = adult_train.iloc[:600].drop(columns="income")
    cur = adult_train.iloc[600:1200].drop(columns="income")
    assert check_multivariate_drift(ref, cur, method="classifier").passed
    shifted = cur.assign(age=cur["age"] + 15)
    result = check_multivariate_drift(ref, shifted, method="classifier")
    assert result.failed
    assert result.metrics["auc"] > 0.8
    with pytest.raises(CheckError, match="'method' must be"):
        check_multivariate_drift(ref, cur, method="knn")  # type: ignore[arg-type]


def test_ks_tail_p_values_match_scipy_at_large_n():
    n1 = n2 = 400_000
    en = n1 * n2 // (n1 + n2)
    d = np.sqrt(np.linspace(2.2, 400, 6) / en)
    ours = ks_pvalue(d, np.full(6, n1), np.full(6, n2))
    expected = [stats.kstwo.sf(x, en) for x in d]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(bytes(arrays["header"]).decode()), arrays


def _resave(path, header, arrays, *, sign):
    from pytest_mlops.checks.drift.profile_file import checksum

    if sign:  # as if the file were edited by someone who also recomputed the checksum
        header["sha256"] = checksum(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("sign", [False, True], ids=["checksum", "consistency"])
@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda h, a: h.update(n_rows=6),
            "'age' counts 600 values and 0 missing, but the profile has 6 rows",
        ),
        (lambda h, a: a.update(col0_at=a["col0_at"] * 3), "column 'age' counts 1800 values"),
        (
            lambda h, a: h["columns"][1].update(counts=[c * 2 for c in h["columns"][1]["counts"]]),
            "column 'sex'",
        ),
        (lambda h, a: a.update(col0_at=-a["col0_at"]), "column 'age' has a negative count"),
    ],
    ids=["n_rows", "numeric-counts", "category-counts", "negative"],
)
def test_an_edited_profile_is_refused(adult_train, tmp_path, edit, words, sign):
    path = DriftProfile.fit(adult_train[["age", "sex"]].head(600)).save(tmp_path / "p.npz")
    header, arrays = _arrays(path)
    edit(header, arrays)
    _resave(path, header, arrays, sign=sign)
    expected = words if sign else "does not match its checksum"
    with pytest.raises(DataError, match=re.escape(expected)) as caught:
        DriftProfile.load(path)
    assert "p.npz" in str(caught.value)


def test_an_unedited_old_profile_is_still_read_with_its_consistency_checked(adult_train, tmp_path):
    path = DriftProfile.fit(adult_train[["age", "sex"]].head(600)).save(tmp_path / "p.npz")
    header, arrays = _arrays(path)
    header.pop("sha256")
    header["version"] = 1
    _resave(path, header, arrays, sign=False)
    assert DriftProfile.load(path).n_rows == 600
    header["n_rows"] = 6
    _resave(path, header, arrays, sign=False)
    with pytest.raises(DataError, match="but the profile has 6 rows"):
        DriftProfile.load(path)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"age,sex\n39,Male\n", "is not a drift profile (CSV text)"),
        (b"", "is not a drift profile (an empty file)"),
        (b'{"format": "x"}', "is not a drift profile (JSON text)"),
        (b"\x93NUMPY\x01\x00", "is not a drift profile (an .npy array)"),
    ],
)
def test_a_file_that_is_not_a_profile_gets_our_message(tmp_path, content, words):
    path = tmp_path / "renamed.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(words)) as caught:
        DriftProfile.load(path)
    assert "allow_pickle" not in str(caught.value)
    assert "renamed.npz" in str(caught.value)
    assert "DriftProfile.fit(reference).save(path)" in str(caught.value)


def test_a_pickled_npz_is_refused_without_numpy_advice(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, header=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="holds pickled objects") as caught:
        DriftProfile.load(path)
    assert "allow_pickle" not in str(caught.value)


def test_a_profile_is_saved_whole_or_not_at_all(adult_train, tmp_path):
    from pytest_mlops.errors import OutputError

    path = DriftProfile.fit(adult_train[["age"]].head(100)).save(tmp_path / "p.npz")
    before = path.read_bytes()
    (tmp_path / "blocker").write_text("")
    with pytest.raises(OutputError, match="blocker"):
        DriftProfile.fit(adult_train[["age"]].head(50)).save(tmp_path / "blocker" / "p.npz")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "p.npz"]


def test_in_between_sums_must_lie_in_their_intervals(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    path = DriftProfile.fit(frame, bins=16).save(tmp_path / "p.npz")
    header, arrays = _arrays(path)
    assert arrays["col1_inside"][3] > 0
    arrays["col1_inside_sum"][3] += 1000.0
    _resave(path, header, arrays, sign=True)
    with pytest.raises(DataError, match="column 'y': its sums do not lie within its grid"):
        DriftProfile.load(path)


def test_merged_profiles_with_a_missing_column_still_load(tmp_path):
    rng = np.random.default_rng(1)
    first = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], size=300)})
    grid = DriftProfile.fit(first, bins=32)
    part = DriftProfile.fit(first[["x"]].head(100), grid=grid)
    merged = grid.merge(part)
    assert merged.problems
    assert merged.n_rows == 400
    loaded = DriftProfile.load(merged.save(tmp_path / "m.npz"))
    assert loaded.n_rows == 400
    assert loaded.problems == merged.problems


def _ks_cases():
    rng = np.random.default_rng(7)
    sizes = [(1, 1), (1, 9), (2, 3), (5, 5), (17, 4), (60, 60), (99, 250), (301, 7), (1000, 999)]
    for n1, n2 in sizes:
        for shift in (0.0, 0.4, 2.0):
            yield rng.normal(size=n1), rng.normal(loc=shift, size=n2)
    ties = rng.integers(0, 4, size=40), rng.integers(1, 5, size=55)  # many ties
    yield ties


@pytest.mark.parametrize("pair", list(_ks_cases()), ids=lambda p: f"{len(p[0])}x{len(p[1])}")
def test_exact_ks_p_values_match_scipys_public_ks_2samp(pair):
    import warnings

    from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalue

    x, y = pair
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = stats.ks_2samp(x, y, method="exact")
    ours = ks_2samp_exact_pvalue(expected.statistic, len(x), len(y))
    if any("Exact calculation unsuccessful" in str(w.message) for w in caught):
        # scipy fell back to its asymptotic formula: hold ours to every interleaving instead
        assert ours == pytest.approx(_enumerated(expected.statistic, len(x), len(y)), rel=1e-12)
        return
    assert ours == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def _enumerated(d: float, n1: int, n2: int) -> float:
    """P(D >= d) counted over every interleaving of two samples without ties."""
    import itertools

    hits = total = 0
    for first in itertools.combinations(range(n1 + n2), n1):
        taken = set(first)
        i = j = 0
        worst = 0.0
        for position in range(n1 + n2):
            i, j = (i + 1, j) if position in taken else (i, j + 1)
            worst = max(worst, abs(i / n1 - j / n2))
        hits += worst >= d - 1e-12
        total += 1
    return hits / total


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (3, 4), (5, 5), (2, 9), (6, 7)])
def test_exact_ks_p_values_match_an_enumeration_of_every_interleaving(n1, n2):
    from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalue

    attainable = {abs(i / n1 - j / n2) for i in range(n1 + 1) for j in range(n2 + 1)}
    for d in sorted(v for v in attainable if v > 0):
        assert ks_2samp_exact_pvalue(d, n1, n2) == pytest.approx(_enumerated(d, n1, n2), rel=1e-12)


def test_exact_ks_at_the_largest_exact_size_and_in_the_far_tail():
    from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalue

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=10_000), rng.normal(loc=0.02, size=9_000)
    expected = stats.ks_2samp(x, y, method="exact")
    assert ks_2samp_exact_pvalue(expected.statistic, 10_000, 9_000) == pytest.approx(
        expected.pvalue, rel=1e-9
    )
    far = stats.ks_2samp(x[:300], y[:200] + 1.5, method="exact")
    assert far.pvalue < 1e-30
    assert ks_2samp_exact_pvalue(far.statistic, 300, 200) == pytest.approx(far.pvalue, rel=1e-9)


def test_ks_p_values_do_not_depend_on_scipys_private_routines(monkeypatch):
    import scipy.stats._stats_py as private

    rng = np.random.default_rng(11)
    x, y = rng.normal(size=300), rng.normal(loc=0.25, size=200)
    expected = stats.ks_2samp(x, y, method="exact")
    for name in [n for n in dir(private) if "2kssamp" in n or "count_paths" in n]:
        monkeypatch.delattr(private, name)
    p = ks_pvalue(np.array([expected.statistic]), np.array([300]), np.array([200]))
    assert p[0] == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("n", "shift"), [(10_000, 0.02), (2_000, 0.0), (400, 1.0)])
def test_exact_ks_for_samples_of_equal_size(n, shift):
    from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalues

    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(loc=shift, size=n)
    expected = stats.ks_2samp(x, y, method="exact")
    ours = ks_2samp_exact_pvalues(np.array([expected.statistic, 0.0]), n, n)
    assert ours[0] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)
    assert ours[1] == 1.0
