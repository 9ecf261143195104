"""Hook specifications users implement in ``conftest.py`` to add their own deploy step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlops.deploy.registry import RegistryBackend, Version
    from pytest_mlops.results import CheckResult

hookspec = pytest.hookspec


@hookspec
def pytest_mlops_deploy(
    config: pytest.Config,
    stage: str,
    version: Version,
    smoke: CheckResult,
    registry: RegistryBackend,
) -> Any:
    """Run your own step of ``pytest --mlops-deploy=STAGE``.

    Called after the version was pushed and its smoke test passed, just before the stage is
    re-pointed at it. Raise :class:`~pytest_mlops.errors.DeployError` (or any ``MlopsError``) to
    stop the deployment with your message; the stage then keeps its current version.

    Parameters
    ----------
    config:
        The pytest config.
    stage:
        The stage being deployed to (``"staging"``).
    version:
        The pushed version: ``version.version``, ``version.digest``, ``version.manifest``
        (the lineage), ``version.image`` (on an OCI registry).
    smoke:
        The passed smoke test's :class:`~pytest_mlops.results.CheckResult`.
    registry:
        The registry backend.
    """
