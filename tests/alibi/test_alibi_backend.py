"""Our KS and chi-square agree with alibi-detect's detectors; the alibi backend's result shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from alibi_detect.cd import ChiSquareDrift, KSDrift

from pytest_mlops import check_drift
from pytest_mlops.checks.drift.alibi import check_drift_alibi


def _frames(n_ref: int, n_cur: int, shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def make(n: int, s: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(s, 1, n),
                "b": rng.exponential(1 + s, n),
                "c": rng.choice(["x", "y", "z"], n, p=[0.5 - s / 4, 0.3, 0.2 + s / 4]),
            }
        )

    return make(n_ref, 0.0), make(n_cur, shift)


@pytest.mark.parametrize("shift", [0.0, 0.05])
def test_ks_and_chi_square_agree_with_alibi(shift):
    # Above 10,000 values both use the asymptotic KS distribution (alibi always does).
    ref, cur = _frames(12_000, 11_000, shift)
    ours = {r["column"]: r for r in check_drift(ref, cur).tables["columns"]}
    x_ref = ref[["a", "b"]].to_numpy(np.float32)
    x_cur = cur[["a", "b"]].to_numpy(np.float32)
    ks = KSDrift(x_ref.astype(np.float64), p_val=0.05).predict(
        x_cur.astype(np.float64), return_p_val=True, return_distance=True
    )["data"]
    codes = {"x": 0, "y": 1, "z": 2}
    chi = ChiSquareDrift(ref["c"].map(codes).to_numpy(np.int64)[:, None], p_val=0.05).predict(
        cur["c"].map(codes).to_numpy(np.int64)[:, None], return_p_val=True, return_distance=True
    )["data"]
    for i, column in enumerate(["a", "b"]):
        x, y = ref[column].to_numpy(np.float32), cur[column].to_numpy(np.float32)
        mine = check_drift(pd.DataFrame({column: x}), pd.DataFrame({column: y}))
        (row,) = mine.tables["columns"]
        assert row["statistic"] == pytest.approx(float(ks["distance"][i]), abs=1e-6)
        assert row["p_value"] == pytest.approx(float(ks["p_val"][i]), abs=1e-5)
        assert ours[column]["statistic"] == pytest.approx(float(ks["distance"][i]), abs=1e-4)
    assert ours["c"]["statistic"] == pytest.approx(float(chi["distance"][0]), rel=1e-5)
    assert ours["c"]["p_value"] == pytest.approx(float(chi["p_val"][0]), abs=1e-5)


def test_alibi_univariate_backend_has_our_result_shape():
    ref, cur = _frames(12_000, 11_000, 0.3)
    native = check_drift(ref, cur)
    alibi = check_drift_alibi(ref, cur)
    assert alibi.status == native.status == "failed"
    for a, b in zip(native.tables["columns"], alibi.tables["columns"], strict=True):
        assert set(a) == set(b)
        assert a["column"] == b["column"]
        assert a["drifted"] == b["drifted"]
        assert b["p_value"] == pytest.approx(a["p_value"], abs=1e-5)
        assert b["effect"] == a["effect"]


@pytest.mark.parametrize("detector", ["mmd", "lsdd", "classifier"])
def test_alibi_multivariate_detectors(detector):
    ref, cur = _frames(400, 400, 0.0)
    _, shifted = _frames(400, 400, 1.0)
    assert check_drift_alibi(ref, shifted, detector=detector, n_samples=300).failed
    same = check_drift_alibi(ref, cur, detector=detector, n_samples=300)
    assert same.metric == "p_value"
    assert set(same.tables) == {"columns", "histograms"}
