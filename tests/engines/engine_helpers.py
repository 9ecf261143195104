"""Data and assertions shared by the engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_mlops import DriftProfile
from pytest_mlops.checks.drift.profile import CategoricalProfile, NumericProfile


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Numbers (continuous, discrete, heavy-tailed), text, flags and a group column ``g``.

    ``x`` is missing in every row of group 3 (partitions by ``g`` hold only missing values) and
    the category ``"only5"`` appears in group 5 only.
    """
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 7, n)
    frame = pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "k": rng.integers(0, 50, n),
            "t": rng.standard_cauchy(n),
            "s": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "g": g,
        }
    )
    frame.loc[g == 3, "x"] = np.nan
    frame.loc[g == 5, "s"] = "only5"
    return frame


def write_parquet(frame: pd.DataFrame, path: Path, files: int = 1) -> Path:
    """*frame* as Parquet: one file, or a folder of *files* files (a small lake)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if files == 1:
        pq.write_table(table, path)
        return path
    path.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), files + 1).astype(int)
    for i in range(files):
        pq.write_table(
            table.slice(bounds[i], bounds[i + 1] - bounds[i]), path / f"part-{i}.parquet"
        )
    return path


def assert_same_profile(single: DriftProfile, engine: DriftProfile) -> None:
    """Counts identical, statistics within 1e-12 (relative for sums), same grid and columns."""
    assert list(engine.columns) == list(single.columns)
    assert engine.n_rows == single.n_rows
    assert dict(engine.problems) == dict(single.problems)
    for name, a in single.columns.items():
        b = engine.columns[name]
        if isinstance(a, NumericProfile):
            assert isinstance(b, NumericProfile)
            np.testing.assert_array_equal(b.edges, a.edges, err_msg=name)
            np.testing.assert_array_equal(b.at, a.at, err_msg=name)
            np.testing.assert_array_equal(b.inside, a.inside, err_msg=name)
            np.testing.assert_allclose(b.inside_sum, a.inside_sum, rtol=1e-12, atol=1e-12)
            assert b.n_missing == a.n_missing, name
            for stat in ("mean", "min", "max"):
                assert getattr(b, stat) == pytest.approx(getattr(a, stat), abs=1e-12, nan_ok=True)
            assert b.m2 == pytest.approx(a.m2, rel=1e-12, abs=1e-12)
        else:
            assert isinstance(a, CategoricalProfile)
            assert isinstance(b, CategoricalProfile)
            assert dict(b.counts) == dict(a.counts), name
            assert (b.n_missing, b.other) == (a.n_missing, a.other), name
