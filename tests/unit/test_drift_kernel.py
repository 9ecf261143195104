"""The exact KS/W1 kernel against scipy on data that stresses it, and partial profiles: grids
made from approximate quantiles equal the single-process grids, merges are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pytest_mlops import DataError, DriftProfile
from pytest_mlops.checks.drift import partial
from pytest_mlops.checks.drift.profile import NumericProfile
from pytest_mlops.checks.drift.univariate import ks_pvalue, numeric_block


def numeric(profile: DriftProfile, column: str) -> NumericProfile:
    found = profile.columns[column]
    assert isinstance(found, NumericProfile), f"{column} is not profiled as numeric"
    return found


def _cases(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(n)
    return {
        "same": (rng.normal(size=n), rng.normal(size=n)),
        "shift": (rng.normal(size=n), rng.normal(0.2, 1, n)),
        "scale": (rng.normal(size=n), rng.normal(0, 1.01, n)),
        "ties": (rng.integers(0, 7, n).astype(float), rng.integers(0, 8, n).astype(float)),
        "rounded": (np.round(rng.normal(size=n), 2), np.round(rng.normal(0.01, 1, n), 2)),
        "heavy": (rng.standard_cauchy(n), rng.standard_cauchy(n) * 1.1),
        "outliers": (np.r_[rng.normal(size=n - 3), [1e9, -1e9, 5e8]], rng.normal(size=n)),
        "far": (1.7e9 + rng.normal(size=n), 1.7e9 + rng.normal(0.1, 1, n)),
        "constant": (np.full(n, 3.0), np.r_[np.full(n - 5, 3.0), [4.0] * 5]),
    }


@pytest.mark.parametrize("n", [300_000])
def test_the_kernel_matches_scipy_at_scale(n):
    cases = _cases(n)
    for name, (a, b) in cases.items():
        a, b = a.copy(), b.copy()
        a[::97] = np.nan  # missing values are left out
        b[5::89] = np.inf
        x, y = a[np.isfinite(a)], b[np.isfinite(b)]
        out = numeric_block(a[None, :].copy(), b[None, :].copy())
        expected = stats.ks_2samp(x, y)
        assert out["ks"][0] == pytest.approx(expected.statistic, abs=1e-12), name
        w1 = stats.wasserstein_distance(x, y)
        assert out["wasserstein"][0] == pytest.approx(w1, rel=1e-9, abs=1e-9 * np.std(x)), name
        p = ks_pvalue(out["ks"], out["n_ref"], out["n_cur"])[0]
        assert p == pytest.approx(expected.pvalue, abs=1e-4), name


def test_blocks_and_single_columns_agree():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 5000)), rng.normal(0.1, 1, (4, 7000))
    block = numeric_block(a.copy(), b.copy())
    for i in range(4):
        one = numeric_block(a[i : i + 1].copy(), b[i : i + 1].copy())
        assert one["ks"][0] == block["ks"][i]
        assert one["wasserstein"][0] == block["wasserstein"][i]


class _Partitions:
    """A GridSource over in-memory partitions, with deliberately rough quantiles."""

    def __init__(self, parts: list[pd.DataFrame]) -> None:
        self.parts = parts

    def quantiles(self, columns, levels):
        out = {}
        for c in columns:
            v = np.concatenate([p[c].to_numpy(float) for p in self.parts])
            v = v[np.isfinite(v)][::7]
            out[c] = np.quantile(v, levels) if len(v) else np.zeros(0)
        return out

    def count(self, grid):
        blobs = [partial.partial_bytes([p], grid) for p in self.parts]
        return partial.from_bytes(partial.merge_bytes(*blobs))

    def inside(self, requests):
        blobs = [partial.inside_bytes([p], partial.requests_bytes(requests)) for p in self.parts]
        return partial.counts_from_bytes(partial.merge_counts_bytes(*blobs))


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 50, n).astype(float),
            "t": rng.standard_cauchy(n),
            "rare": np.where(rng.random(n) < 0.001, 7.0, 1.0),
            "s": rng.choice(["a", "b"], n),
        }
    )
    frame.loc[::13, "x"] = np.nan
    frame.loc[: n // 3, "t"] = np.nan  # the first partitions: only missing values
    return frame


@pytest.mark.parametrize("bins", [16, 64, 4096])
def test_grids_from_rough_quantiles_are_the_exact_ones(bins):
    frame = _frame(20_000)
    parts = [frame.iloc[i : i + 2857] for i in range(0, 20_000, 2857)]
    grid, _, report = partial.exact_grid(
        _Partitions(parts), ["x", "k", "t", "rare"], ["s"], bins=bins, relative_error=0.0
    )
    whole = DriftProfile.fit(frame, bins=bins)
    for column in ("x", "k", "t", "rare"):
        np.testing.assert_array_equal(numeric(grid, column).edges, numeric(whole, column).edges)
    assert report.exact == ("x", "k", "t", "rare")
    assert not report.approximate
    counted = _Partitions(parts).count(grid)
    for column in ("x", "k", "t", "rare"):
        a, b = numeric(whole, column), numeric(counted, column)
        np.testing.assert_array_equal(a.inside, b.inside)
        assert b.mean == pytest.approx(a.mean, abs=1e-12)
        assert b.n_missing == a.n_missing


def test_a_grid_beyond_the_limit_stays_approximate_and_says_so():
    frame = _frame(20_000)
    parts = [frame.iloc[:10_000], frame.iloc[10_000:]]
    _, counted, report = partial.exact_grid(
        _Partitions(parts), ["x"], [], bins=4096, relative_error=1e-4, exact_limit=100
    )
    assert report.exact == ()
    assert "approximate" in report.approximate["x"]
    assert counted is not None  # the counting pass is reused: nothing is read twice


def test_merging_all_missing_partitions_keeps_the_statistics():
    frame = _frame(3000)
    grid = DriftProfile.fit(frame, bins=64)
    empty = frame.iloc[:0]
    parts = [frame.iloc[:1000], empty, frame.iloc[1000:]]
    merged = partial.from_bytes(
        partial.merge_bytes(*[partial.partial_bytes([p], grid) for p in parts])
    )
    single = DriftProfile.fit(frame, grid=grid)
    for column in ("x", "t"):  # t: the first 1000 rows are all missing
        mine, theirs = numeric(merged, column), numeric(single, column)
        assert mine.mean == pytest.approx(theirs.mean, abs=1e-12)
        assert mine.m2 == pytest.approx(theirs.m2, rel=1e-12)


def test_partitions_that_disagree_about_a_column_are_refused():
    frame = _frame(2000)
    grid = DriftProfile.fit(frame, bins=32)
    a = DriftProfile.fit_partition(frame.iloc[:1000], grid)
    b = DriftProfile.fit_partition(frame.iloc[1000:].drop(columns="k"), grid)
    with pytest.raises(DataError, match="column 'k' is missing in some partitions"):
        partial.check_partitions(a.merge(b), "test")
    retyped = frame.iloc[1000:].assign(x=lambda f: f.x.astype(str))
    c = DriftProfile.fit_partition(retyped, grid)
    with pytest.raises(DataError, match="column 'x' is of another type in some partitions"):
        partial.check_partitions(a.merge(c), "test")
