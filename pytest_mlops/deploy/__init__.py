"""Deploy: bundle -> serving image -> registry -> staging -> production, gated on evidence.

Vocabulary
----------
bundle
    A directory with the ONNX model, its lineage manifest (code, data, model, evidence), the
    serving app and a Dockerfile; content-addressed by the sha256 of its manifest.
registry
    Where versions, stage pointers and the audit log live: the embedded default (SQLite and
    content-addressed files in a directory), an OCI registry (images pushed by digest, stage
    tags) or an MLflow server (model versions, stage aliases); ``open_registry`` picks one.
stage
    ``staging`` or ``production``: a pointer to a version, moved only on evidence.

Importing this package imports nothing heavy; the names below load on first use. The top of the
package calls :func:`register`, which lets gates resolve ``registry:`` model references.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig
    from pytest_mlops.models.base import Model

__all__ = [
    "Bundle",
    "LocalRegistry",
    "build_bundle",
    "deploy_settings",
    "deploy_to_staging",
    "open_registry",
    "promote",
    "register",
    "resolve_model_reference",
    "rollback",
    "verify_bundle",
]

_LAZY = {
    "Bundle": "pytest_mlops.deploy.bundle",
    "build_bundle": "pytest_mlops.deploy.bundle",
    "verify_bundle": "pytest_mlops.deploy.bundle",
    "LocalRegistry": "pytest_mlops.deploy.registry",
    "open_registry": "pytest_mlops.deploy.registries",
    "resolve_model_reference": "pytest_mlops.deploy.registries",
    "deploy_settings": "pytest_mlops.deploy.settings",
    "deploy_to_staging": "pytest_mlops.deploy.promote",
    "promote": "pytest_mlops.deploy.promote",
    "rollback": "pytest_mlops.deploy.promote",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_mlops.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def register() -> None:
    """Resolve ``registry:`` model references (a gate's ``baseline``) through the deploy registry.

    Cheap: the registry modules load when a reference is first resolved.
    """
    from pytest_mlops.models.load import register_model_resolver

    register_model_resolver("registry", _resolve_registry_reference)


def _resolve_registry_reference(spec: str, config: ProjectConfig) -> Model:
    from pytest_mlops.deploy.registries import resolve_model_reference

    return resolve_model_reference(spec, config)
