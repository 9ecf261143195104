"""Kubernetes manifests rendered from a registry version, validated offline (kubernetes-validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from deploy_helpers import fresh_bundle, project_config

from pytest_mlops.cli import main
from pytest_mlops.deploy.k8s import render_manifests
from pytest_mlops.deploy.promote import deploy_to_staging, promote
from pytest_mlops.deploy.registry import LocalRegistry, Version
from pytest_mlops.deploy.settings import deploy_settings

K8S = "1.30.0"


@pytest.fixture(scope="module")
def tiny_project(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project for the module: the versions below are only read."""
    import shutil

    root = tmp_path_factory.mktemp("k8s") / "project"
    shutil.copytree(tiny_template, root)
    return root


@pytest.fixture(scope="module")
def versions(tiny_project: Path) -> tuple[Version, Version]:
    registry = LocalRegistry(tiny_project / "registry")
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    promote(registry, "tiny")
    deploy_to_staging(registry, fresh_bundle(tiny_project, 2))
    return registry.get("tiny", 1), registry.get("tiny", 2)


def validate(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_staging_and_production_manifests_are_valid(
    tiny_project: Path, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    settings = deploy_settings(project_config(tiny_project), {"gpu": True, "canary_percent": 25})
    staging = render_manifests(settings, "staging", v2, "registry.local/tiny@sha256:" + "b" * 64)
    production = render_manifests(
        settings, "production", v1, "registry.local/tiny@sha256:" + "a" * 64,
        canary=v2, canary_image="registry.local/tiny@sha256:" + "b" * 64,
    )  # fmt: skip
    validate(staging)
    validate(production)
    assert [d["kind"] for d in production] == ["Deployment", "Deployment", "Service"]
    stable, canary, service = production
    assert stable["spec"]["replicas"] == 3
    assert canary["spec"]["replicas"] == 1
    container = stable["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["runAsNonRoot"] is True
    annotations = stable["metadata"]["annotations"]
    assert annotations["pytest-mlops.io/model-sha256"] == v1.model_sha256
    assert annotations["pytest-mlops.io/report-sha256"] == v1.evidence["report_sha256"]
    for deployment in (stable, canary):  # the Service reaches both tracks
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
    assert "nvidia.com/gpu" not in str(
        render_manifests(deploy_settings(project_config(tiny_project)), "staging", v2, "x")
    )


def test_a_broken_manifest_fails_validation(
    tiny_project: Path, versions: tuple[Version, Version]
) -> None:
    docs = render_manifests(
        deploy_settings(project_config(tiny_project)), "staging", versions[1], "img"
    )
    docs[0]["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(docs)


def test_cli_writes_manifests(
    tiny_project: Path, versions: tuple[Version, Version], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_project)
    assert main(["manifests", "--stage", "production"]) == 2  # the embedded registry has no image
    assert (
        main(["manifests", "--stage", "production", "--image", "reg/tiny:1", "--output", "k.yaml"])
        == 0
    )
    import yaml

    docs = [d for d in yaml.safe_load_all((tiny_project / "k.yaml").read_text()) if d]
    validate(docs)
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/tiny:1"


# --- graceful shutdown --------------------------------------------------------------------------


def test_grace_period_covers_the_drain_the_server_is_told(
    tiny_project: Path, versions: tuple[Version, Version], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = deploy_settings(
        project_config(tiny_project), {"drain_seconds": 7, "shutdown_timeout": 20.5}
    )
    (deployment, _) = render_manifests(settings, "staging", versions[1], "img")
    validate([deployment])
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["MLOPS_SERVE_DRAIN_SECONDS"] == "7"
    assert env["MLOPS_SERVE_SHUTDOWN_TIMEOUT"] == "20.5"
    # the server needs drain + shutdown at most; the kubelet SIGKILLs after the grace period
    assert pod["terminationGracePeriodSeconds"] == 33 >= 7 + 20.5
    # no preStop sleep: the server itself keeps accepting during the drain after SIGTERM
    assert "lifecycle" not in pod["containers"][0]

    from pytest_mlops.deploy.serving.cli import parse_args

    for name, value in env.items():  # what the container reads
        monkeypatch.setenv(name, value)
    options = parse_args([])
    assert (options.drain_seconds, options.shutdown_timeout) == (7.0, 20.5)
    assert options.grace_seconds <= pod["terminationGracePeriodSeconds"]


# --- Triton and KServe --------------------------------------------------------------------------


def triton_message(text: str):
    from pytest_mlops.deploy.triton import check_triton_config

    return check_triton_config(text)


def test_triton_config_follows_the_onnx_signature_and_parses_as_triton_s_protobuf(
    tiny_project: Path, tmp_path: Path
) -> None:
    import onnxruntime as ort

    from pytest_mlops.deploy.triton import write_repository

    settings = deploy_settings(project_config(tiny_project), {"gpu": True, "max_batch_rows": 64})
    config = write_repository(tiny_project / "model.onnx", tmp_path / "triton", "tiny", 3, settings)
    assert config == tmp_path / "triton" / "tiny" / "config.pbtxt"
    assert (tmp_path / "triton" / "tiny" / "3" / "model.onnx").read_bytes() == (
        tiny_project / "model.onnx"
    ).read_bytes()
    message = triton_message(config.read_text())
    from tritonclient.grpc import model_config_pb2 as pb

    assert message.name == "tiny"
    assert message.backend == "onnxruntime"
    assert message.max_batch_size == 64
    assert list(message.version_policy.specific.versions) == [3]
    assert message.dynamic_batching.max_queue_delay_microseconds == 100
    (group,) = message.instance_group
    assert group.kind == pb.ModelInstanceGroup.KIND_GPU
    assert group.count == 1
    assert not group.gpus
    session = ort.InferenceSession(str(tiny_project / "model.onnx"))
    assert [(i.name, list(i.dims)) for i in message.input] == [
        (i.name, [d for d in i.shape[1:]]) for i in session.get_inputs()
    ]
    assert message.input[0].data_type == pb.TYPE_FP32
    label, proba = message.output
    assert (label.name, label.data_type, list(label.dims)) == ("label", pb.TYPE_INT64, [1])
    assert label.HasField("reshape")
    assert list(label.reshape.shape) == []
    assert (proba.name, list(proba.dims)) == ("probabilities", [2])
    cpu = deploy_settings(project_config(tiny_project))
    write_repository(tiny_project / "model.onnx", tmp_path / "cpu", "tiny", 1, cpu)
    message = triton_message((tmp_path / "cpu" / "tiny" / "config.pbtxt").read_text())
    assert message.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU


def test_triton_config_of_a_fixed_batch_multi_input_model(
    tiny_project: Path, tmp_path: Path
) -> None:
    """Inputs of several types, one with a fixed first dimension: no batching, full shapes."""
    import onnx
    from onnx import TensorProto, helper

    from pytest_mlops.deploy.triton import triton_config

    graph = helper.make_graph(
        [helper.make_node("Cast", ["ids"], ["as_float"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["as_float", "x"], ["y"])],
        "two",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )  # fmt: skip
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    text = triton_config(path, "two", 1, deploy_settings(project_config(tiny_project)))
    message = triton_message(text)
    from tritonclient.grpc import model_config_pb2 as pb

    assert message.max_batch_size == 0
    assert not message.HasField("dynamic_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in message.input] == [
        ("ids", pb.TYPE_INT64, [1, 3]),
        ("x", pb.TYPE_FP32, [1, 3]),
    ]


def test_a_broken_triton_config_is_refused(tiny_project: Path) -> None:
    from pytest_mlops.deploy.triton import triton_config
    from pytest_mlops.errors import DeployError

    good = triton_config(
        tiny_project / "model.onnx", "tiny", 1, deploy_settings(project_config(tiny_project))
    )
    for broken, why in (
        (good.replace("KIND_CPU", "KIND_TPU"), "KIND_TPU"),
        (good.replace("data_type: TYPE_FP32", "data_type: FP32"), "FP32"),
        (good.replace("max_batch_size", "max_batch"), "max_batch"),
        (good.replace('backend: "onnxruntime"', ""), "no backend"),
    ):
        with pytest.raises(DeployError, match=why):
            triton_message(broken)


def test_a_zipmap_output_cannot_go_to_triton(tmp_path: Path, tiny_project: Path) -> None:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from pytest_mlops.deploy.triton import triton_config
    from pytest_mlops.errors import DeployError

    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    (tmp_path / "zipmap.onnx").write_bytes(to_onnx(model, X[:2]).SerializeToString())
    with pytest.raises(DeployError, match=r"not a tensor .*without ZipMap"):
        triton_config(
            tmp_path / "zipmap.onnx", "z", 1, deploy_settings(project_config(tiny_project))
        )


def validate_inference_service(doc: dict[str, Any]) -> None:
    """kubernetes-validate has no KServe schema: validate the Kubernetes types an
    InferenceService embeds (its metadata, and its predictor's pod spec with the model as a
    container) against the Kubernetes schemas, strictly."""
    predictor = dict(doc["spec"]["predictor"])
    model = dict(predictor.pop("model"))
    kserve = {k: model.pop(k) for k in ("modelFormat", "runtime", "protocolVersion", "storageUri")}
    assert set(predictor) <= {"minReplicas", "maxReplicas"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": doc["metadata"],
        "spec": {"containers": [{"name": "kserve-container", "image": "triton", **model}]},
    }
    validate([pod])
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert doc["kind"] == "InferenceService"
    assert kserve["modelFormat"] == {"name": "triton"}
    assert kserve["protocolVersion"] == "v2"
    assert kserve["runtime"] == "kserve-tritonserver"
    assert kserve["storageUri"]


def test_cli_writes_a_triton_repository_and_an_inference_service(
    tiny_project: Path, versions: tuple[Version, Version], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_project)
    assert main(["manifests", "--runtime", "triton"]) == 2  # where does the repository go?
    code = main(
        ["manifests", "--runtime", "triton", "--stage", "production",
         "--storage-uri", "s3://models/tiny", "--output", "out/kserve.yaml"]
    )  # fmt: skip
    assert code == 0
    import yaml

    (doc,) = [
        d for d in yaml.safe_load_all((tiny_project / "out" / "kserve.yaml").read_text()) if d
    ]
    validate_inference_service(doc)
    assert doc["metadata"]["name"] == "tiny-production"
    assert (
        doc["metadata"]["annotations"]["pytest-mlops.io/model-sha256"] == versions[0].model_sha256
    )
    assert doc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/tiny"
    config = tiny_project / "out" / "triton" / "tiny" / "config.pbtxt"
    message = triton_message(config.read_text())
    assert list(message.version_policy.specific.versions) == [1]  # production runs v1
    assert (config.parent / "1" / "model.onnx").is_file()


def test_a_broken_inference_service_fails_validation(
    tiny_project: Path, versions: tuple[Version, Version]
) -> None:
    from pytest_mlops.deploy.k8s import render_inference_service

    settings = deploy_settings(project_config(tiny_project), {"gpu": True})
    doc = render_inference_service(settings, "staging", versions[1], "pvc://models")
    validate_inference_service(doc)
    assert doc["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    doc["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"] = {"cores": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_inference_service(doc)
