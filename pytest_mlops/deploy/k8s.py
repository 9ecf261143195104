"""Kubernetes manifests for a stage, rendered from a registry version.

Per stage: a ``Deployment`` (probes on the OIP health endpoints, resources, a GPU request when the
model needs one, a non-root read-only container, the lineage in annotations) and a ``Service``.

Rolling updates lose no request: on SIGTERM the server fails readiness at once and keeps
accepting connections for ``drain_seconds`` (what the usual ``preStop: sleep`` does, so there is
no preStop hook, which would only add its sleep to the drain), then answers what is in flight
within ``shutdown_timeout``; ``terminationGracePeriodSeconds`` is their sum plus 5 s, and the
container gets both through ``MLOPS_SERVE_DRAIN_SECONDS`` and ``MLOPS_SERVE_SHUTDOWN_TIMEOUT``.
With ``canary_percent`` set, production gets a second ``Deployment`` running the candidate (the
version in staging) behind the same Service; the traffic splits by replica count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_mlops.deploy.registry import Version
    from pytest_mlops.deploy.settings import DeploySettings

__all__ = ["render_inference_service", "render_manifests", "write_manifests"]

_ANNOTATION = "pytest-mlops.io"


def render_manifests(
    settings: DeploySettings,
    stage: str,
    version: Version,
    image: str,
    *,
    canary: Version | None = None,
    canary_image: str | None = None,
) -> list[dict[str, Any]]:
    """The Deployment(s) and Service of *stage* running *version* from *image*."""
    replicas = settings.replicas if stage == "production" else 1
    stable = replicas
    docs: list[dict[str, Any]] = []
    if canary is not None and canary_image and settings.canary_percent and stage == "production":
        total = max(replicas, math.ceil(100 / max(1, min(settings.canary_percent, 99))))
        canary_replicas = max(1, round(total * settings.canary_percent / 100))
        stable = max(1, total - canary_replicas)
        docs.append(_deployment(settings, stage, canary, canary_image, canary_replicas, "canary"))
    docs.insert(0, _deployment(settings, stage, version, image, stable, "stable"))
    docs.append(_service(settings, stage))
    return docs


def _labels(settings: DeploySettings, stage: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": settings.name, "pytest-mlops.io/stage": stage}


def _annotations(version: Version) -> dict[str, str]:
    lineage: Mapping[str, Any] = version.manifest.get("lineage", {})
    code = lineage.get("code", {})
    return {
        f"{_ANNOTATION}/version": str(version.version),
        f"{_ANNOTATION}/bundle-digest": version.digest,
        f"{_ANNOTATION}/model-sha256": version.model_sha256,
        f"{_ANNOTATION}/report-sha256": str(version.evidence.get("report_sha256") or ""),
        f"{_ANNOTATION}/git-commit": str(code.get("commit") or ""),
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/metrics",
    }


def _resources(settings: DeploySettings) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {"cpu": settings.cpu, "memory": settings.memory},
        "limits": {"memory": settings.memory},
    }
    if settings.gpu:
        resources["limits"]["nvidia.com/gpu"] = 1
    return resources


def _container(settings: DeploySettings, version: Version, image: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 5}
    return {
        "name": "server",
        "image": image,
        "ports": [{"name": "http", "containerPort": settings.port}],
        "env": [
            {"name": "MLOPS_SERVE_VERSION", "value": str(version.version)},
            {"name": "MLOPS_SERVE_PORT", "value": str(settings.port)},
            # the drain on SIGTERM; the pod's terminationGracePeriodSeconds covers both
            {"name": "MLOPS_SERVE_DRAIN_SECONDS", "value": f"{settings.drain_seconds:g}"},
            {"name": "MLOPS_SERVE_SHUTDOWN_TIMEOUT", "value": f"{settings.shutdown_timeout:g}"},
        ],
        "readinessProbe": {**probe, "initialDelaySeconds": 2},
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {**probe, "failureThreshold": 30},
        "resources": _resources(settings),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _deployment(
    settings: DeploySettings, stage: str, version: Version, image: str, replicas: int, track: str
) -> dict[str, Any]:
    name = f"{settings.name}-{stage}" + ("-canary" if track == "canary" else "")
    labels = {**_labels(settings, stage), "pytest-mlops.io/track": track}
    pod = {
        "containers": [_container(settings, version, image)],
        "terminationGracePeriodSeconds": settings.grace_seconds,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": _annotations(version)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": _annotations(version)},
                "spec": pod,
            },
        },
    }


def _service(settings: DeploySettings, stage: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{settings.name}-{stage}", "labels": _labels(settings, stage)},
        "spec": {
            "selector": _labels(settings, stage),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def render_inference_service(
    settings: DeploySettings, stage: str, version: Version, storage_uri: str
) -> dict[str, Any]:
    """The KServe InferenceService of *stage*: Triton serving *version*'s model repository.

    The repository (see :mod:`pytest_mlops.deploy.triton`) is served from *storage_uri*, with
    the lineage in annotations.
    """
    annotations = {k: v for k, v in _annotations(version).items() if k.startswith(_ANNOTATION)}
    model = {
        "modelFormat": {"name": "triton"},
        "runtime": "kserve-tritonserver",
        "protocolVersion": "v2",
        "storageUri": storage_uri,
        "args": ["--disable-auto-complete-config"],  # config.pbtxt is complete
        "resources": _resources(settings),
    }
    metadata = {
        "name": f"{settings.name}-{stage}",
        "labels": _labels(settings, stage),
        "annotations": annotations,
    }
    replicas = settings.replicas if stage == "production" else 1
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": {"minReplicas": replicas, "model": model}},
    }


def write_manifests(docs: list[dict[str, Any]], path: str | Path) -> Path:
    """Write *docs* as one multi-document YAML file (JSON documents are valid YAML)."""
    from pytest_mlops._files import write_atomic

    text = "".join(f"---\n{json.dumps(d, indent=2)}\n" for d in docs)
    return write_atomic(Path(path), text, what="the manifests")
