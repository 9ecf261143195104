"""The compiled passes of the exact KS/W1 kernel against its numpy passes: the same bins, counts,
picks and statistics on the same data (numba is part of the development environment)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from pytest_mlops.checks.drift import kernel
from pytest_mlops.checks.drift.univariate import numeric_block
from pytest_mlops.errors import ConfigError

pytest.importorskip("numba")


@pytest.fixture
def compiled(monkeypatch):
    """The compiled passes, used for columns of any size during the test."""
    monkeypatch.delenv("PYTEST_MLOPS_KERNEL", raising=False)
    kernel.compiled.cache_clear()
    loops = kernel.compiled()
    assert loops is not None, "numba is installed but the compiled passes did not load"
    monkeypatch.setattr(kernel, "COMPILED_FROM", 0)
    yield loops
    kernel.compiled.cache_clear()


def _boundary_values(rng: np.random.Generator, lo: float, width: float, bins: int) -> np.ndarray:
    """Values on bin boundaries, one ulp either side of them, beyond both ends, and random."""
    edges = lo + width * rng.integers(-3, bins + 3, 4000)
    return np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            lo + width * rng.uniform(-5, bins + 5, 20_000),
            [lo - 1e12, lo + 1e12],
        ]
    )


@pytest.mark.parametrize(("lo", "width"), [(0.0, 1.0), (-3.1, 6.2 / 1022), (1.7e9, 1e-3)])
def test_values_go_to_the_same_bins(compiled, lo, width):
    rng = np.random.default_rng(7)
    bins = 1024
    values = _boundary_values(rng, lo, width, bins)
    fast = kernel.bin_values(values, lo, 1.0 / width, bins, compiled)
    slow = kernel.bin_values(values, lo, 1.0 / width, bins)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    assert (fast.low, fast.high) == (slow.low, slow.high)
    # sums in another order: within the rounding bound n * eps * sum(|terms|)
    bound = len(values) * np.finfo(float).eps
    assert abs(fast.total - slow.total) <= bound * np.abs(values - lo).sum()
    assert abs(fast.total_sq - slow.total_sq) <= bound * np.square(values - lo).sum()

    sign = rng.choice([-1.0, 0.0, 1.0], size=bins, p=[0.45, 0.1, 0.45])
    dot_fast, keys_fast, picked_fast = kernel.signed_sum(fast, sign)
    dot_slow, keys_slow, picked_slow = kernel.signed_sum(slow, sign)
    assert len(keys_slow) > 0
    np.testing.assert_array_equal(keys_fast, keys_slow)
    np.testing.assert_array_equal(picked_fast, picked_slow)
    assert abs(dot_fast - dot_slow) <= bound * np.abs(values - lo).sum()


def _cases(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(n)
    crowded = np.r_[rng.uniform(0, 1e-9, n // 2), rng.normal(size=n - n // 2)]
    return {
        "same": (rng.normal(size=n), rng.normal(size=n)),
        "shift": (rng.normal(size=n), rng.normal(0.2, 1, n)),
        "ties": (rng.integers(0, 7, n).astype(float), rng.integers(0, 8, n).astype(float)),
        "rounded": (np.round(rng.normal(size=n), 2), np.round(rng.normal(0.01, 1, n), 2)),
        "heavy": (rng.standard_cauchy(n), rng.standard_cauchy(n) * 1.1),
        "crowded bin": (crowded, np.r_[rng.uniform(0, 2e-9, n // 3), rng.normal(size=n)]),
        "far": (1.7e9 + rng.normal(size=n), 1.7e9 + rng.normal(0.1, 1, n)),
        "constant": (np.full(n, 3.0), np.r_[np.full(n - 5, 3.0), [4.0] * 5]),
        "one value each side": (np.array([1.0]), np.array([2.0])),
    }


@pytest.mark.parametrize("name", list(_cases(10)))
def test_statistics_are_the_numpy_passes(compiled, monkeypatch, name):
    a, b = _cases(30_000)[name]
    a, b = a.copy(), b.copy()
    a[1::97] = np.nan
    fast = numeric_block(a[None, :], b[None, :])
    monkeypatch.setenv("PYTEST_MLOPS_KERNEL", "numpy")
    kernel.compiled.cache_clear()
    slow = numeric_block(a[None, :], b[None, :])
    # the numpy passes sum the steps of F_ref - F_cur inside a bin (rounding grows with a crowded
    # bin's size); the compiled ones count them: equal within 1e-12, and the compiled to scipy's
    assert fast["ks"][0] == pytest.approx(slow["ks"][0], abs=1e-12), name
    present = a[np.isfinite(a)]
    assert fast["ks"][0] == pytest.approx(stats.ks_2samp(present, b).statistic, abs=1e-15), name
    assert fast["wasserstein"][0] == pytest.approx(slow["wasserstein"][0], rel=1e-10, abs=1e-12)
    for key in ("n_ref", "n_cur", "min", "max", "psi_edges", "ref_bins", "cur_bins"):
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=f"{name}: {key}")
    for key in ("mean_ref", "std_ref", "std_cur", "psi"):
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_small_columns_keep_the_numpy_passes(monkeypatch):
    monkeypatch.delenv("PYTEST_MLOPS_KERNEL", raising=False)
    assert kernel.for_size(kernel.COMPILED_FROM - 1) is None
    assert kernel.for_size(kernel.COMPILED_FROM) is not None


def test_the_numpy_passes_can_be_chosen(monkeypatch):
    monkeypatch.setenv("PYTEST_MLOPS_KERNEL", "numpy")
    kernel.compiled.cache_clear()
    try:
        assert kernel.for_size(10**9) is None
    finally:
        kernel.compiled.cache_clear()


def test_threads_do_not_change_the_statistics(compiled, monkeypatch):
    rng = np.random.default_rng(11)
    a = rng.normal(size=(6, 20_000))
    b = rng.normal(0.05, 1, (6, 25_000))
    b[2, ::3] = np.nan
    monkeypatch.setenv("PYTEST_MLOPS_THREADS", "1")
    assert kernel.threads_for(6, 45_000) == 1
    alone = numeric_block(a, b)
    monkeypatch.setenv("PYTEST_MLOPS_THREADS", "3")
    assert kernel.threads_for(6, 45_000) == min(3, len(os.sched_getaffinity(0)))
    threaded = numeric_block(a, b)
    for key, value in alone.items():
        np.testing.assert_array_equal(threaded[key], value, err_msg=key)


def test_small_blocks_run_on_the_calling_thread(monkeypatch):
    monkeypatch.delenv("PYTEST_MLOPS_THREADS", raising=False)
    assert kernel.threads_for(1, 10**7) == 1
    assert kernel.threads_for(50, kernel.COMPILED_FROM - 1) == 1


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("PYTEST_MLOPS_KERNEL", "fast", "expected 'auto'"),
        ("PYTEST_MLOPS_THREADS", "two", "positive integer"),
        ("PYTEST_MLOPS_THREADS", "0", "positive integer"),
    ],
)
def test_a_bad_setting_is_named(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    kernel.compiled.cache_clear()
    try:
        with pytest.raises(ConfigError, match=f"{name}='{value}'.*{words}"):
            kernel.threads_for(4, 10**7)
    finally:
        kernel.compiled.cache_clear()
