"""Kubernetes manifests rendered from a registry version, validated offline (kubernetes-validate)."""

from __future__ import annotations

from pathlib import Path

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


def validate(docs: list[dict]) -> None:
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
    assert stable["spec"]["replicas"] == 3 and canary["spec"]["replicas"] == 1  # 25% of the pods
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
