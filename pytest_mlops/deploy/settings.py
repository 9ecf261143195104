"""The ``[tool.pytest_mlops.deploy]`` table, validated like every other setting."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlops.config import Param, ProjectConfig, validate_params
from pytest_mlops.errors import ConfigError

__all__ = ["DEFAULT_BASE_IMAGE", "DEPLOY_PARAMS", "DeploySettings", "deploy_settings"]

DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_REGISTRY = ".mlops/registry"

DEPLOY_PARAMS: tuple[Param, ...] = (
    Param(
        "registry",
        "str",
        "where versions live: a directory (the embedded registry, default .mlops/registry next "
        "to the config), oci://HOST:PORT/REPOSITORY (an OCI registry; needs Docker) or "
        "mlflow+http://HOST:PORT (an MLflow tracking server's model registry)",
        default=DEFAULT_REGISTRY,
    ),
    Param(
        "ca_bundle",
        "str",
        "a PEM file of CA certificates to trust for the registry's TLS, besides the system's "
        "(relative to the config file; MLOPS_REGISTRY_CA_BUNDLE sets it too)",
    ),
    Param(
        "insecure",
        "bool",
        "an OCI registry without verified TLS: HTTPS without checking the certificate, else "
        "plain HTTP (Docker's insecure-registries); loopback addresses may use plain HTTP anyway",
        default=False,
    ),
    Param(
        "timeout",
        "number",
        "seconds each call to a remote registry may take (connecting, each read and write)",
        default=60.0,
        minimum=1,
    ),
    Param(
        "retries",
        "int",
        "more tries of a registry call that failed in a way that may pass (connection errors, "
        "timeouts, HTTP 429 and 5xx), with backoff",
        default=4,
        minimum=0,
        maximum=20,
    ),
    Param("name", "str", "the served model's name (default: the config directory's name)"),
    Param(
        "base_image",
        "str",
        "the serving image's base (needs python3 with venv)",
        default=DEFAULT_BASE_IMAGE,
    ),
    Param("python", "str", "the base image's Python version, for its wheels", default="3.11"),
    Param(
        "smoke_rows", "int", "rows of the current data the smoke test sends", default=20, minimum=1
    ),
    Param("port", "int", "the port the server listens on in the container", default=8080),
    Param("replicas", "int", "Kubernetes replicas in production", default=2, minimum=1),
    Param("cpu", "str", "Kubernetes CPU request per replica", default="500m"),
    Param("memory", "str", "Kubernetes memory request per replica", default="512Mi"),
    Param("gpu", "bool", "request an NVIDIA GPU per replica", default=False),
    Param(
        "canary_percent",
        "int",
        "share of production traffic a canary Deployment gets (0: no canary)",
        default=0,
        minimum=0,
        maximum=100,
    ),
    Param("prediction_log", "str", "the server's prediction log (JSON lines), if any"),
    Param(
        "max_batch_rows",
        "int",
        "rows per model call at most under dynamic batching (Triton's max_batch_size)",
        default=256,
        minimum=1,
    ),
    Param(
        "drain_seconds",
        "number",
        "after SIGTERM, seconds the server still accepts connections while readiness fails",
        default=5.0,
        minimum=0,
    ),
    Param(
        "shutdown_timeout",
        "number",
        "after the drain period, seconds requests in flight get to finish",
        default=25.0,
        minimum=0,
    ),
)


@dataclass(frozen=True)
class DeploySettings:
    """Resolved deploy settings (paths absolute, defaults filled in)."""

    registry: str
    name: str
    base_image: str
    python: str
    smoke_rows: int
    port: int
    replicas: int
    cpu: str
    memory: str
    gpu: bool
    canary_percent: int
    prediction_log: str | None
    max_batch_rows: int
    drain_seconds: float
    shutdown_timeout: float
    base_dir: Path
    ca_bundle: str | None = None
    insecure: bool = False
    timeout: float = 60.0
    retries: int = 4

    @property
    def grace_seconds(self) -> int:
        """Kubernetes' terminationGracePeriodSeconds: the drain, the shutdown and 5 s to spare."""
        return math.ceil(self.drain_seconds + self.shutdown_timeout) + 5

    @property
    def is_oci(self) -> bool:
        return self.registry.startswith("oci://")

    @property
    def is_mlflow(self) -> bool:
        return self.registry.startswith(("mlflow+http://", "mlflow+https://"))

    @property
    def registry_dir(self) -> Path:
        """The embedded registry's directory (the OCI and MLflow backends keep their ledger there)."""
        if self.is_oci or self.is_mlflow:
            return self.base_dir / DEFAULT_REGISTRY
        path = Path(self.registry).expanduser()
        return path if path.is_absolute() else self.base_dir / path


def deploy_settings(
    config: ProjectConfig | None, overrides: Mapping[str, Any] | None = None
) -> DeploySettings:
    """The deploy table of *config* layered with *overrides* (``None`` values ignored).

    ``MLOPS_REGISTRY`` in the environment overrides the configured registry;
    ``MLOPS_DEFAULT_REGISTRY`` is the registry when nothing names one (the CI templates set it to
    the CI's own container registry). ``MLOPS_REGISTRY_CA_BUNDLE`` overrides ``ca_bundle``.
    """
    raw: dict[str, Any] = dict(config.settings.deploy) if config is not None else {}
    source = f"{config.source} [deploy]" if config is not None else "deploy settings"
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if os.environ.get("MLOPS_REGISTRY") and not (overrides or {}).get("registry"):
        raw["registry"] = os.environ["MLOPS_REGISTRY"]
    elif os.environ.get("MLOPS_DEFAULT_REGISTRY") and "registry" not in raw:
        raw["registry"] = os.environ["MLOPS_DEFAULT_REGISTRY"]
    if os.environ.get("MLOPS_REGISTRY_CA_BUNDLE") and not (overrides or {}).get("ca_bundle"):
        raw["ca_bundle"] = os.environ["MLOPS_REGISTRY_CA_BUNDLE"]
    values: dict[str, Any] = {p.name: p.default for p in DEPLOY_PARAMS}
    values.update(validate_params(DEPLOY_PARAMS, raw, source))
    base_dir = config.base_dir if config is not None else Path.cwd()
    name = values["name"] or _slug(base_dir.resolve().name)
    if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", name):
        raise ConfigError(
            f"{source}: 'name' must be lower-case letters, digits and . _ - "
            f"(it names images and URLs), got {name!r}"
        )
    values["name"] = name
    return DeploySettings(base_dir=base_dir, **values)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "model"
