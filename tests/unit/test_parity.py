"""check_parity: its numbers are recomputed here with onnxruntime, numpy and sklearn directly."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pytest_mlops import CheckError, Dataset, check_parity, export_onnx, load_model
from pytest_mlops.data.schema import infer_schema
from pytest_mlops.export.parity import default_tolerances, detect_profile


@pytest.fixture(scope="module")
def holdout(adult_holdout):
    return Dataset(adult_holdout.head(3000), target="income", name="holdout")


@pytest.fixture(scope="module")
def credit_onnx(credit_pipeline, adult_holdout, tmp_path_factory):
    path = tmp_path_factory.mktemp("parity") / "credit.onnx"
    return export_onnx(credit_pipeline, adult_holdout.head(8), path)


def _session_proba(path, frame):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy(object)
        else:
            values = column.to_numpy(np.float32)
        feeds[spec.name] = values.reshape(-1, 1)
    labels, proba = session.run(None, feeds)
    return labels, proba.astype(np.float64)


def test_parity_numbers_match_a_direct_computation(credit_pipeline, credit_onnx, holdout):
    result = check_parity(credit_pipeline, credit_onnx, holdout)
    assert result.passed, result.message
    assert result.kind == "parity"
    labels, proba = _session_proba(credit_onnx.path, holdout.X)
    native = credit_pipeline.predict_proba(holdout.X)
    assert result.metrics["max_abs_diff_probabilities"] == pytest.approx(
        np.abs(proba - native).max(), rel=1e-9
    )
    assert result.metrics["label_flip_rate"] == np.mean(
        labels != credit_pipeline.predict(holdout.X)
    )
    auc_native = roc_auc_score(holdout.y, native[:, 1])
    auc_onnx = roc_auc_score(holdout.y, proba[:, 1])
    assert result.metrics["roc_auc_native"] == pytest.approx(auc_native, abs=1e-15)
    assert result.metrics["roc_auc_onnx"] == pytest.approx(auc_onnx, abs=1e-15)
    assert result.metrics["metric_delta"] == pytest.approx(abs(auc_onnx - auc_native), abs=1e-15)
    assert result.context["profile"] == "sklearn"
    assert result.context["providers"] == "CPUExecutionProvider"
    rows = result.tables["parity"]
    assert {(r["batch_size"], r["n"]) for r in rows} == {(1, 256), (37, 3000), (1024, 3000)}
    assert "ONNX parity holds" in result.message
    assert "n=3000" in result.message


def test_tolerances_are_settable_and_failures_say_where(credit_pipeline, credit_onnx, holdout):
    result = check_parity(
        credit_pipeline, credit_onnx, holdout, rtol=0, atol=1e-12, batch_sizes=(1, 999)
    )
    assert result.failed
    assert result.metric == "mismatch_share"
    assert result.op == "<="
    assert result.bound == 0
    assert "probabilities out of tolerance (rtol=0, atol=1.000e-12)" in result.message
    assert "provider=CPUExecutionProvider, batch_size=1, n=256" in result.message
    assert result.details.count("\n") == 1  # one line per batch size


def test_label_flips_are_counted_and_gated(credit_pipeline, credit_onnx, holdout):
    # a native model that differs from the exported one: its labels flip on some rows
    other = copy.deepcopy(credit_pipeline)
    other[-1].intercept_ = other[-1].intercept_ + 0.4
    flips = np.mean(other.predict(holdout.X) != credit_pipeline.predict(holdout.X))
    assert 0.001 < flips < 0.2
    result = check_parity(
        other, credit_onnx, holdout, batch_sizes=(1024,), rtol=1, atol=1, metric="accuracy"
    )
    assert result.failed
    assert result.metric == "label_agreement"
    assert result.value == pytest.approx(1 - flips)
    assert "label agreement must be >= 0.999" in result.message
    loose = check_parity(
        other, credit_onnx, holdout, batch_sizes=(1024,), rtol=1, atol=1, min_label_agreement=0.5
    )
    assert loose.passed
    delta = check_parity(
        other, credit_onnx, holdout, batch_sizes=(1024,), rtol=1, atol=1,
        min_label_agreement=0, max_metric_delta=1e-9, metric="accuracy",
    )  # fmt: skip
    accuracy_delta = abs(
        np.mean(credit_pipeline.predict(holdout.X) == holdout.y)
        - np.mean(other.predict(holdout.X) == holdout.y)
    )
    assert delta.metrics["metric_delta"] == pytest.approx(accuracy_delta, abs=1e-12)
    assert delta.failed
    assert "accuracy delta must be <= 1.000e-09" in delta.message


def test_providers_are_never_silently_replaced(credit_pipeline, credit_onnx, holdout):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the refusal is for CPU-only builds")
    with pytest.raises(CheckError, match=r"has no \['CUDAExecutionProvider'\]") as info:
        check_parity(credit_pipeline, credit_onnx, holdout, providers=["CUDAExecutionProvider"])
    assert "onnxruntime-gpu" in str(info.value)


def test_bad_settings(credit_pipeline, credit_onnx, holdout):
    with pytest.raises(CheckError, match="batch_sizes must be whole numbers >= 1"):
        check_parity(credit_pipeline, credit_onnx, holdout, batch_sizes=(0,))
    with pytest.raises(CheckError, match="min_label_agreement is a share of rows"):
        check_parity(credit_pipeline, credit_onnx, holdout, min_label_agreement=2)
    with pytest.raises(CheckError, match="unknown metric 'auc_roc'"):
        check_parity(credit_pipeline, credit_onnx, holdout, metric="auc_roc")


def test_default_tolerances_per_profile_and_dtype():
    net = default_tolerances("network")
    assert (net.rtol, net.atol, net.max_mismatch_share) == (1e-3, 1e-5, 0.0)
    sk32, sk64 = default_tolerances("sklearn", "float32"), default_tolerances("sklearn", "float64")
    assert (sk32.rtol, sk32.atol, sk64.rtol, sk64.atol) == (1e-5, 1e-5, 1e-9, 1e-7)
    trees = default_tolerances("trees")
    assert trees.max_mismatch_share == 0.001
    assert trees.min_label_agreement == 0.999
    with pytest.raises(CheckError, match="'network', 'sklearn' or 'trees'"):
        default_tolerances("boosted")  # type: ignore[arg-type]


def test_trees_are_held_to_decisions(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X[:400], y[:400])
    assert detect_profile(forest) == "trees"
    assert detect_profile(LogisticRegression()) == "sklearn"
    exported = export_onnx(forest, X[:4], tmp_path / "rf.onnx")
    result = check_parity(forest, exported, X[400:], random_rows=20)
    assert result.context["profile"] == "trees"
    assert result.tables["random_rows"][0]["examples"] == 20  # rows drawn for array data too
    labels = load_model(exported.path).predict(X[400:])
    assert result.metrics["label_agreement"] == np.mean(labels == forest.predict(X[400:]))
    assert result.passed, result.message


def test_network_logits_and_probabilities(tmp_path):
    X, _ = load_breast_cancer(return_X_y=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    exported = export_onnx(net.eval(), X[:2], tmp_path / "net.onnx")
    result = check_parity(net, exported.path, X)
    assert result.passed, result.message
    assert result.context["profile"] == "network"
    (logits,) = ort.InferenceSession(str(exported.path)).run(None, {"input": X.astype(np.float32)})
    with torch.no_grad():
        expected = net(torch.from_numpy(X.astype(np.float32))).numpy()
    assert result.metrics["max_abs_diff_logits"] == pytest.approx(
        np.abs(logits.astype(np.float64) - expected.astype(np.float64)).max(), rel=1e-6, abs=1e-12
    )


def test_random_rows_find_the_smallest_disagreeing_row(credit_pipeline, adult_holdout, tmp_path):
    # The ONNX file comes from a model that differs only for sex == "Female"; the data compared
    # holds men only, so only the random rows (drawn from the full schema) can catch it.
    other = copy.deepcopy(credit_pipeline)
    names = list(other[:-1].get_feature_names_out())
    other[-1].coef_[0, names.index("categorical__sex_Female")] += 0.5
    exported = export_onnx(other, adult_holdout.head(8), tmp_path / "other.onnx")
    men = Dataset(adult_holdout[adult_holdout["sex"] == "Male"].head(500), target="income")
    schema = infer_schema(adult_holdout.drop(columns="income"))
    plain = check_parity(credit_pipeline, exported, men, batch_sizes=(512,))
    assert plain.passed, plain.message
    result = check_parity(
        credit_pipeline, exported, men, batch_sizes=(512,), random_rows=60, schema=schema, seed=3
    )
    assert result.failed
    assert "on random valid rows (seed=3) probabilities differ" in result.message
    summary = result.tables["random_rows"][0]
    assert "'sex': 'Female'" in summary["failing"]
    again = check_parity(
        credit_pipeline, exported, men, batch_sizes=(512,), random_rows=60, schema=schema, seed=3
    )
    assert again.tables["random_rows"] == result.tables["random_rows"]  # seeded: same rows


def test_random_rows_pass_on_a_faithful_export(credit_pipeline, credit_onnx, holdout):
    result = check_parity(
        credit_pipeline, credit_onnx, holdout, batch_sizes=(1024,), random_rows=40
    )
    assert result.passed, result.message
    assert result.tables["random_rows"][0]["examples"] == 40


def test_regressor_values_and_r2_delta(tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import r2_score

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    exported = export_onnx(forest, X.head(3), tmp_path / "reg.onnx")
    data = Dataset(X.assign(target=y), target="target")
    result = check_parity(forest, exported, data, batch_sizes=(1, 1024))
    assert result.passed, result.message
    # float32 sums differ with the batch size: the worst of one-row and full-batch runs counts
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    feeds = {c: X[c].to_numpy(np.float32).reshape(-1, 1) for c in X.columns}
    full = session.run(None, feeds)[0].reshape(-1).astype(np.float64)
    one = np.array(
        [
            session.run(None, {c: v[i : i + 1] for c, v in feeds.items()})[0].item()
            for i in range(256)
        ]
    )
    native = forest.predict(X)
    worst = max(np.abs(full - native).max(), np.abs(one - native[:256]).max())
    assert result.metrics["max_abs_diff_values"] == pytest.approx(worst, rel=1e-12)
    values = full
    assert result.metrics["r2_onnx"] == pytest.approx(r2_score(y, values), abs=1e-15)
    assert "label_agreement" not in result.metrics
