"""export_onnx: scikit-learn pipelines, PyTorch modules, ONNX pass-through, metadata, bad input.

Outputs are checked against the native model and against a bare onnxruntime session on the same
rows: the file must decide like the model, not just load.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pytest_mlops import ConfigError, DataError, ModelError, OnnxExport, export_onnx, load_model
from pytest_mlops.models.onnx import OnnxModel


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def credit_onnx(credit_pipeline, credit_module, adult_holdout, tmp_path_factory):
    path = tmp_path_factory.mktemp("credit") / "credit.onnx"
    sample = adult_holdout[credit_module.FEATURES].head(10)
    return export_onnx(credit_pipeline, sample, path, metadata={"git_commit": "3f2a9c1"})


def _feeds(session: ort.InferenceSession, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What a user would write by hand for a bare onnxruntime session."""
    feeds = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy(object)
        else:
            values = column.to_numpy(np.float32 if spec.type == "tensor(float)" else np.float64)
        feeds[spec.name] = values.reshape(-1, 1)
    return feeds


def test_credit_pipeline_exports_one_input_per_column(credit_onnx, credit_module):
    assert isinstance(credit_onnx, OnnxExport)
    types = {s.name: s.dtype for s in credit_onnx.signature.inputs}
    assert list(types) == credit_module.FEATURES
    assert all(types[c] == "float32" for c in credit_module.NUMERIC)
    assert all(types[c] == "string" for c in credit_module.CATEGORICAL)
    proto = onnx.load(str(credit_onnx.path))
    onnx.checker.check_model(proto)
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]  # no ZipMap
    assert proto.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_credit_onnx_decides_like_the_pipeline(
    credit_onnx, credit_pipeline, credit_module, adult_holdout
):
    X = adult_holdout[credit_module.FEATURES]
    assert X[credit_module.CATEGORICAL].isna().any().any()  # missing categories are exercised
    session = ort.InferenceSession(str(credit_onnx.path), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, _feeds(session, X))
    np.testing.assert_allclose(proba, credit_pipeline.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(labels, credit_pipeline.predict(X))
    model = load_model(credit_onnx.path)
    assert isinstance(model, OnnxModel)
    assert model.classes is not None
    assert model.classes.tolist() == [0, 1]
    np.testing.assert_allclose(model.predict_proba(adult_holdout), proba, rtol=0, atol=0)
    np.testing.assert_array_equal(model.predict(adult_holdout), credit_pipeline.predict(X))


def test_float64_export_matches_sklearn_to_the_last_digits(
    credit_pipeline, credit_module, adult_holdout, tmp_path
):
    X = adult_holdout[credit_module.FEATURES]
    exported = export_onnx(credit_pipeline, X.head(5), tmp_path / "m.onnx", dtype="float64")
    assert exported.dtype == "float64"
    assert {s.dtype for s in exported.signature.inputs} == {"float64", "string"}
    proba = load_model(exported.path).predict_proba(X)
    np.testing.assert_allclose(proba, credit_pipeline.predict_proba(X), rtol=0, atol=1e-12)


def test_metadata_stamps_lineage_and_hashes(credit_onnx, credit_pipeline, adult_holdout, tmp_path):
    meta = credit_onnx.metadata
    assert meta["git_commit"] == "3f2a9c1"
    assert meta["pytest_mlops.output"] == "probabilities"
    assert json.loads(meta["pytest_mlops.classes"]) == [0, 1]
    assert meta["pytest_mlops.producer"].startswith("skl2onnx ")
    assert meta["pytest_mlops.source"] == "scikit-learn:Pipeline"
    signature = json.loads(meta["pytest_mlops.signature"])
    assert signature == credit_onnx.signature.to_dict()
    on_disk = {p.key: p.value for p in onnx.load(str(credit_onnx.path)).metadata_props}
    assert on_disk == meta
    assert credit_onnx.sha256 == hashlib.sha256(credit_onnx.path.read_bytes()).hexdigest()
    # the same model with other lineage: same model hash, another file hash
    other = export_onnx(
        credit_pipeline, adult_holdout.head(5), tmp_path / "o.onnx", metadata={"git_commit": "x"}
    )
    assert other.metadata["pytest_mlops.model_sha256"] == meta["pytest_mlops.model_sha256"]
    assert other.sha256 != credit_onnx.sha256


def test_metadata_must_be_strings_and_not_ours(credit_pipeline, adult_holdout, tmp_path):
    with pytest.raises(ConfigError, match=r"'pytest_mlops\.output' is set by pytest-mlops"):
        export_onnx(
            credit_pipeline,
            adult_holdout.head(5),
            tmp_path / "m.onnx",
            metadata={"pytest_mlops.output": "labels"},
        )
    with pytest.raises(ConfigError, match="'rows' maps to int"):
        export_onnx(
            credit_pipeline,
            adult_holdout.head(5),
            tmp_path / "m.onnx",
            metadata={"rows": 3},  # type: ignore[dict-item]
        )
    with pytest.raises(ConfigError, match="dtype must be 'float32' or 'float64', got 'float16'"):
        export_onnx(credit_pipeline, adult_holdout.head(5), tmp_path / "m.onnx", dtype="float16")  # type: ignore[arg-type]


def test_existing_onnx_passes_through_with_new_lineage(credit_onnx, adult_holdout, tmp_path):
    again = export_onnx(credit_onnx.path, None, tmp_path / "copy.onnx", metadata={"stage": "ci"})
    assert again.source == "onnx"
    assert again.metadata["stage"] == "ci"
    assert again.metadata["git_commit"] == "3f2a9c1"  # earlier lineage is kept
    assert again.metadata["pytest_mlops.output"] == "probabilities"
    assert again.metadata["pytest_mlops.producer"] == credit_onnx.metadata["pytest_mlops.producer"]
    np.testing.assert_array_equal(
        load_model(again.path).predict_proba(adult_holdout.head(200)),
        load_model(credit_onnx.path).predict_proba(adult_holdout.head(200)),
    )


def test_adapters_are_unwrapped(credit_pipeline, adult_holdout, tmp_path):
    exported = export_onnx(load_model(credit_pipeline), adult_holdout.head(5), tmp_path / "m.onnx")
    assert exported.source == "scikit-learn"


def test_plain_estimator_on_arrays_and_a_regressor(cancer, tmp_path):
    X, y = cancer
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    exported = export_onnx(clf, X[:3], tmp_path / "clf.onnx")
    assert [(s.name, s.shape) for s in exported.signature.inputs] == [("X", (None, 30))]
    np.testing.assert_allclose(
        load_model(exported.path).predict_proba(X), clf.predict_proba(X), atol=1e-5
    )
    reg = LinearRegression().fit(X, X[:, 0] * 2)
    exported = export_onnx(reg, None, tmp_path / "reg.onnx", dtype="float64")  # width known
    assert exported.output == "values"
    onnx_model = load_model(exported.path)
    assert onnx_model.task == "regression"
    np.testing.assert_allclose(onnx_model.predict(X), reg.predict(X), rtol=1e-9)


# --- PyTorch -------------------------------------------------------------------------------


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
    ).eval()


def test_torch_export_single_file_dynamic_batch(cancer, tmp_path):
    X, _ = cancer
    net = _mlp()
    exported = export_onnx(net, X[:1], tmp_path / "mlp.onnx")  # one row: the axis stays dynamic
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]  # no .onnx.data
    (spec,) = exported.signature.inputs
    assert spec.name == "input"
    assert spec.dtype == "float32"
    assert isinstance(spec.shape[0], str)
    assert spec.shape[1] == 30
    assert exported.metadata["pytest_mlops.output"] == "logits"
    assert exported.metadata["pytest_mlops.producer"].startswith("torch ")
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(torch.from_numpy(X.astype(np.float32))).numpy()
    for size in (1, 7, len(X)):
        (out,) = session.run(None, {"input": X[:size].astype(np.float32)})
        np.testing.assert_allclose(out, expected[:size], rtol=1e-3, atol=1e-5)
    assert not net.training  # the module is left as it was


def test_torch_float64_export(cancer, tmp_path):
    X, _ = cancer
    net = _mlp()
    exported = export_onnx(net, X[:4], tmp_path / "mlp64.onnx", dtype="float64")
    assert exported.signature.inputs[0].dtype == "float64"
    assert next(net.parameters()).dtype == torch.float32  # the user's module is not converted
    with torch.no_grad():
        expected = net.double()(torch.from_numpy(X)).numpy()
    (out,) = ort.InferenceSession(str(exported.path)).run(None, {"input": X})
    np.testing.assert_allclose(out, expected, rtol=1e-9)


class _Branchy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(30, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x)
        if x.sum() > 0:  # data-dependent control flow
            return out * 2
        return out


def test_torch_data_dependent_control_flow_is_refused_clearly(cancer, tmp_path):
    X, _ = cancer
    with pytest.raises(ModelError) as info:
        export_onnx(_Branchy(), X[:4], tmp_path / "b.onnx")
    message = str(info.value)
    assert "_Branchy" in message
    assert "data-dependent control flow" in message
    assert "if x.sum() > 0" in message
    assert "torch.where" in message
    assert not (tmp_path / "b.onnx").exists()


def test_torch_sample_of_the_wrong_dtype(tmp_path):
    with pytest.raises(DataError, match=r"has dtype <U1: expected a numeric array"):
        export_onnx(_mlp(), np.array([["a"] * 30]), tmp_path / "m.onnx")
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"non-numeric columns \['a'\]"):
        export_onnx(_mlp(), frame, tmp_path / "m.onnx")


# --- bad input -----------------------------------------------------------------------------


class HandRolled(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def test_unsupported_estimator_names_it_and_lists_what_is(cancer, tmp_path):
    X, y = cancer
    model = make_pipeline(StandardScaler(), HandRolled()).fit(X, y)
    with pytest.raises(ModelError) as info:
        export_onnx(model, X[:3], tmp_path / "m.onnx")
    message = str(info.value)
    assert "no converter for" in message
    assert "HandRolled" in message
    assert "Pipeline > handrolled" in message
    assert "LogisticRegression" in message
    assert "RandomForestClassifier" in message


def test_not_a_model_and_not_fitted(tmp_path):
    with pytest.raises(ModelError, match=r"cannot export a builtins\.dict"):
        export_onnx({"a": 1}, None, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="LogisticRegression is not fitted"):
        export_onnx(LogisticRegression(), np.zeros((2, 3)), tmp_path / "m.onnx")


def test_sample_columns_of_the_wrong_type(credit_pipeline, adult_holdout, tmp_path):
    sample = adult_holdout.head(5).copy()
    sample["age"] = pd.to_datetime("2020-01-01")
    with pytest.raises(DataError, match=r"sample column 'age' has dtype datetime64"):
        export_onnx(credit_pipeline, sample, tmp_path / "m.onnx")
    sample = adult_holdout.head(5).copy()
    sample["sex"] = pd.Series(["Male", 1, "Female", 2.5, "Male"], dtype=object)
    with pytest.raises(DataError, match=r"sample column 'sex' mixes value types"):
        export_onnx(credit_pipeline, sample, tmp_path / "m.onnx")
    with pytest.raises(DataError, match="lacks the columns \\['age'\\]"):
        export_onnx(credit_pipeline, adult_holdout.drop(columns="age"), tmp_path / "m.onnx")
    with pytest.raises(DataError, match="pass a DataFrame sample"):
        export_onnx(credit_pipeline, np.zeros((2, 12)), tmp_path / "m.onnx")


def test_corrupt_and_truncated_onnx_files(credit_onnx, tmp_path):
    data = credit_onnx.path.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"'.*truncated.onnx' is corrupt or truncated"):
        export_onnx(truncated, None, tmp_path / "out.onnx")
    with pytest.raises(ModelError, match=r"'.*truncated\.onnx': the file is corrupt or truncated"):
        OnnxModel(truncated)
    with pytest.raises(ModelError, match=r"truncated\.onnx': the file is corrupt or truncated"):
        load_model(str(truncated))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"'.*empty.onnx' is empty"):
        export_onnx(empty, None, tmp_path / "out.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx model at all" * 10)
    with pytest.raises(ModelError, match=r"garbage\.onnx"):
        export_onnx(garbage, None, tmp_path / "out.onnx")
    with pytest.raises(ModelError, match=r"'.*missing.onnx' does not exist"):
        export_onnx(tmp_path / "missing.onnx", None, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_graph_that_onnxruntime_refuses_is_caught_at_export(cancer, tmp_path):
    X, y = cancer
    model = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    try:
        exported = export_onnx(model, X[:3], tmp_path / "gb.onnx", dtype="float64")
    except ModelError as exc:  # skl2onnx emits a float64 graph onnxruntime rejects
        # which graphs onnxruntime refuses depends on the installed versions: either outcome is
        # checked, so this cannot be one pytest.raises
        assert "does not load in ONNX Runtime" in str(exc)  # noqa: PT017
        assert "try dtype='float32'" in str(exc)  # noqa: PT017
        assert not (tmp_path / "gb.onnx").exists()
    else:  # a converter that gets it right must then give sklearn's numbers
        np.testing.assert_allclose(
            load_model(exported.path).predict_proba(X), model.predict_proba(X), atol=1e-7
        )


def test_the_users_model_is_not_modified(credit_pipeline, adult_holdout, tmp_path):
    # the export adjusts a copy to treat "" as a missing string; the original keeps NaN
    export_onnx(credit_pipeline, adult_holdout.head(5), tmp_path / "m.onnx")
    encode = credit_pipeline.named_steps["encode"]
    imputer = encode.named_transformers_["categorical"][0]
    assert isinstance(imputer.missing_values, float)
    assert np.isnan(imputer.missing_values)


def test_classifier_without_probabilities_reads_as_labels(cancer, tmp_path):
    from sklearn.linear_model import RidgeClassifier

    from pytest_mlops import check_parity

    X, y = cancer
    clf = make_pipeline(StandardScaler(), RidgeClassifier()).fit(X, y)
    exported = export_onnx(clf, X[:3], tmp_path / "clf.onnx")
    assert exported.output == "labels"
    onnx_model = load_model(exported.path)
    assert not onnx_model.has_proba
    assert onnx_model.task == "classification"
    np.testing.assert_array_equal(onnx_model.predict(X), clf.predict(X))
    result = check_parity(clf, exported, X)
    assert result.passed
    assert result.metrics["label_agreement"] == 1.0
    assert "max_abs_diff_probabilities" not in result.metrics
