"""Code-first tests: export the network, load the ONNX file back, check parity."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_mlops import check_parity, export_onnx, load_model


@pytest.fixture(scope="module")
def exported(mlops_model, mlops_reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "mlp.onnx"
    return export_onnx(
        mlops_model, mlops_reference.X.head(8), path, metadata={"example": "pytorch_mlp"}
    )


def test_export_is_one_file_with_a_dynamic_batch_axis(exported):
    assert [p.name for p in exported.path.parent.iterdir()] == ["mlp.onnx"]
    (spec,) = exported.signature.inputs
    assert spec.dtype == "float32"
    assert isinstance(spec.shape[0], str)  # the batch dimension is symbolic
    assert spec.shape[1] == 30
    assert exported.metadata["pytest_mlops.output"] == "logits"
    assert exported.metadata["example"] == "pytorch_mlp"


def test_onnx_model_decides_like_the_network(mlops, mlops_model, mlops_current, exported):
    onnx_model = load_model(exported.path)
    np.testing.assert_array_equal(
        onnx_model.predict(mlops_current.X), mlops_model.predict(mlops_current.X)
    )
    mlops.check(check_parity(mlops_model, exported, mlops_current, random_rows=20))


@pytest.mark.accuracy(dtype="float64", random_rows=0)
def test_float64_export_through_the_fixture(mlops):
    # The declared parity gate's settings, with the marker's on top.
    result = mlops.parity()
    assert result.context["profile"] == "network"
