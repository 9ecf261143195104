"""The registry a project uses: the backend its deploy settings name, and ``registry:`` references.

:func:`open_registry` picks the backend (embedded directory, OCI registry or MLflow server);
``resolve_model_reference("registry:production", config)`` loads the ONNX model that a stage
points at (what a champion/challenger gate's ``baseline`` names). :mod:`pytest_mlops.deploy`
registers it with :func:`~pytest_mlops.models.load.register_model_resolver` for the
``registry`` scheme, so gates resolve such references without knowing deploy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_mlops.deploy.registry import STAGES, LocalRegistry, RegistryBackend, Version
from pytest_mlops.errors import ConfigError, DeployError

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig
    from pytest_mlops.deploy.settings import DeploySettings
    from pytest_mlops.models.base import Model

__all__ = ["open_registry", "resolve_model_reference", "resolve_version"]


def open_registry(settings: DeploySettings) -> RegistryBackend:
    """The backend the deploy settings name.

    A directory (embedded), ``oci://host/repo`` or ``mlflow+http://host:port``.
    """
    if settings.is_oci:
        from pytest_mlops.deploy.oci import OciRegistry

        return OciRegistry(settings)
    if settings.is_mlflow:
        from pytest_mlops.deploy.mlflow_registry import MlflowRegistry

        return MlflowRegistry(settings)
    if settings.registry.startswith("mlflow"):
        from pytest_mlops.deploy.mlflow_registry import parse_mlflow

        parse_mlflow(settings.registry)  # says what is expected
    return LocalRegistry(settings.registry_dir)


def resolve_model_reference(spec: str, config: ProjectConfig) -> Model:
    """Load the ONNX model a registry reference names.

    ``"registry:production"`` / ``"registry:staging"`` is the version the stage points at;
    ``"registry:v3"`` (or ``"registry:3"``) is version 3. The model's bytes are verified against
    their digest before ONNX Runtime sees them; nothing is unpickled.
    """
    from pytest_mlops.deploy.settings import deploy_settings
    from pytest_mlops.models.onnx import OnnxModel

    ref = spec.partition(":")[2].strip()
    if not ref:
        raise ConfigError(
            f"model reference {spec!r}: expected 'registry:production', 'registry:staging' "
            "or 'registry:v<N>'"
        )
    settings = deploy_settings(config)
    registry = open_registry(settings)
    version = resolve_version(registry, settings.name, ref, spec)
    return OnnxModel(
        registry.model_bytes(version),
        output=config.settings.model_output,  # type: ignore[arg-type]
        name=f"{version.label}",
    )


def resolve_version(registry: RegistryBackend, name: str, ref: str, spec: str) -> Version:
    """The version of *name* that *ref* names: a stage (``production``) or ``v<N>`` / ``<N>``.

    Parameters
    ----------
    registry:
        The registry to look in.
    name:
        The model's name in the registry.
    ref:
        ``"staging"``, ``"production"``, ``"v3"`` or ``"3"``.
    spec:
        The reference as the user wrote it, for messages (``"registry:production"``).

    Raises
    ------
    ConfigError
        For a reference that is neither a stage nor a version number.
    DeployError
        When the stage points at no version yet.
    """
    digits = ref[1:] if ref[:1] in ("v", "V") else ref
    if digits.isdigit():
        return registry.get(name, int(digits))
    if ref not in STAGES:
        raise ConfigError(
            f"model reference {spec!r}: unknown stage {ref!r}; use 'staging', 'production' "
            "or 'v<N>'"
        )
    version = registry.stage(name, ref)
    if version is None:
        raise DeployError(
            f"model reference {spec!r}: no version of {name!r} is in {ref} yet in the registry "
            f"{registry.location!r}"
        )
    return version
