from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from pytest_mlops import ModelError, load_model
from pytest_mlops.errors import DataError
from pytest_mlops.models import CallableModel


@pytest.fixture(scope="module")
def small(adult_holdout):
    return adult_holdout.head(300).fillna("missing")


@pytest.fixture(scope="module")
def onnx_friendly(credit_module, adult_train):
    """The example's features through encoders skl2onnx converts (no imputer of NaN strings)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), credit_module.NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), credit_module.CATEGORICAL),
        ]
    )
    frame = adult_train.fillna("missing")
    return Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=500))]).fit(
        frame[credit_module.FEATURES], frame[credit_module.TARGET]
    )


def test_sklearn_pipeline_matches_the_estimator(credit_pipeline, credit_module, small):
    model = load_model(credit_pipeline)
    assert model.kind == "scikit-learn"
    assert model.task == "classification"
    np.testing.assert_array_equal(
        model.predict(small), credit_pipeline.predict(small[credit_module.FEATURES])
    )
    np.testing.assert_allclose(
        model.predict_proba(small), credit_pipeline.predict_proba(small[credit_module.FEATURES])
    )
    assert model.classes is not None
    assert list(model.classes) == [0, 1]
    assert model.signature is not None
    assert set(credit_module.FEATURES) == set(model.signature.names)


def test_sklearn_missing_columns_are_named(credit_pipeline, small):
    with pytest.raises(DataError, match=r"expects the columns \['age'\]"):
        load_model(credit_pipeline).predict(small.drop(columns=["age"]))


def test_onnx_file_matches_sklearn(tmp_path, onnx_friendly, credit_module, small):
    credit_pipeline = onnx_friendly
    from skl2onnx import to_onnx

    sample = small[credit_module.FEATURES].head(5)
    onx = to_onnx(credit_pipeline, sample, options={"zipmap": False}, target_opset=17)
    path = tmp_path / "credit.onnx"
    path.write_bytes(onx.SerializeToString())
    model = load_model(str(path))
    assert model.kind == "onnx"
    assert model.has_proba
    assert model.classes is not None
    assert list(model.classes) == [0, 1]
    np.testing.assert_array_equal(
        model.predict(small), credit_pipeline.predict(small[credit_module.FEATURES])
    )
    np.testing.assert_allclose(
        model.predict_proba(small),
        credit_pipeline.predict_proba(small[credit_module.FEATURES]),
        atol=1e-5,
    )
    assert model.signature is not None
    assert "age" in model.signature.names
    # The same model, given as a session and as a ModelProto
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(load_model(session).predict(small), model.predict(small))
    np.testing.assert_array_equal(load_model(onx).predict(small), model.predict(small))


def test_zipmap_output_is_understood(tmp_path, onnx_friendly, credit_module, small):
    credit_pipeline = onnx_friendly
    from skl2onnx import to_onnx

    onx = to_onnx(credit_pipeline, small[credit_module.FEATURES].head(5), target_opset=17)
    path = tmp_path / "zip.onnx"
    path.write_bytes(onx.SerializeToString())
    np.testing.assert_allclose(
        load_model(path).predict_proba(small),
        credit_pipeline.predict_proba(small[credit_module.FEATURES]),
        atol=1e-5,
    )


def test_torch_module_logits():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model = load_model(net)
    X = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), expected.argmax(axis=1))
    assert model.signature is not None
    assert model.signature.inputs[0].shape == (None, 3)


def test_torch_binary_single_logit_and_regression():
    import torch

    net = torch.nn.Linear(2, 1)
    X = np.ones((4, 2), dtype="float32")
    proba = load_model(net).predict_proba(X)
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    values = load_model(net, output="values").predict(X)
    assert values.shape == (4,)


def test_callable_model():
    model = load_model(lambda X: np.asarray(X)[:, 0] > 0)
    assert isinstance(model, CallableModel)
    assert list(model.predict(np.array([[1.0], [-1.0]]))) == [True, False]
    with pytest.raises(ModelError, match="has no predict_proba"):
        model.predict_proba(np.zeros((1, 1)))


def test_a_model_that_raises_becomes_a_model_error():
    def broken(X):
        raise ValueError("boom")

    with pytest.raises(ModelError, match=r"raised ValueError in predict on 2 rows: boom"):
        load_model(broken).predict(np.zeros((2, 1)))


def test_factory_reference(tmp_path):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent("""
        import numpy as np
        from sklearn.dummy import DummyClassifier

        def make():
            return DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), [0, 1, 1, 1])

        fitted = make()
    """)
    )
    try:
        model = load_model("my_models:make", base_dir=tmp_path)
        assert model.kind == "scikit-learn"
        assert model.name == "my_models:make"
        assert load_model("my_models:fitted", base_dir=tmp_path).kind == "scikit-learn"
        with pytest.raises(ModelError, match="has no attribute 'nope'"):
            load_model("my_models:nope", base_dir=tmp_path)
    finally:
        sys.modules.pop("my_models", None)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("missing.onnx", r"the model file 'missing.onnx' does not exist"),
        ("model.pkl", "never unpickles"),
        ("model.joblib", "never unpickles"),
        ("no_such_module_xyz:make", "cannot import the module 'no_such_module_xyz'"),
        ("plainword", "neither an existing .onnx file nor 'package.module:factory'"),
    ],
)
def test_bad_model_references(tmp_path, spec, expected):
    with pytest.raises(ModelError, match=expected):
        load_model(spec, base_dir=tmp_path)


def test_corrupt_onnx_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelError, match=r"ONNX Runtime cannot load the ONNX model '.*bad.onnx'"):
        load_model(path)


def test_unusable_object():
    with pytest.raises(ModelError, match="cannot use a int as a model"):
        load_model(3)
