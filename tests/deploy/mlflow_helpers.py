"""The MLflow servers of the test services: plain, and with basic-auth behind TLS."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

import httpx
from deploy_helpers import require_service


@dataclass(frozen=True)
class MlflowServer:
    """An MLflow tracking server of the test services: its URL, CA and credentials."""

    url: str
    ca: str | None = None
    user: str | None = None
    password: str | None = None

    def http(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=self.ca) if self.ca else True
        auth = (self.user, self.password) if self.user and self.password else None
        return httpx.Client(
            base_url=self.url, verify=verify, auth=auth, timeout=30, trust_env=False
        )


def mlflow_server_of(kind: str) -> MlflowServer:
    """The plain server, or (``auth``) the one with basic-auth behind TLS; skip (fail in CI)
    when it is not there."""
    names = {"plain": ("MLOPS_TEST_MLFLOW",), "auth": ("MLOPS_TEST_MLFLOW_TLS", "MLOPS_TEST_CA")}
    missing = [n for n in names[kind] if not os.environ.get(n)]
    reason = f"{', '.join(missing)} not set (run bash scripts/services.sh and source its env file)"
    if not missing:
        env = os.environ
        server = (
            MlflowServer(env["MLOPS_TEST_MLFLOW"])
            if kind == "plain"
            else MlflowServer(
                env["MLOPS_TEST_MLFLOW_TLS"],
                env["MLOPS_TEST_CA"],
                env.get("MLOPS_TEST_MLFLOW_USER"),
                env.get("MLOPS_TEST_MLFLOW_PASSWORD"),
            )
        )
        try:
            with server.http() as http:
                if http.get("/health").status_code == 200:
                    return server
            reason = f"the MLflow server at {server.url} is not healthy"
        except httpx.HTTPError as exc:
            reason = f"the MLflow server at {server.url} does not answer: {exc}"
    require_service("MLflow", reason)
    raise AssertionError("unreachable")
