"""MLflow as teams run it: its own authentication (``--app-name basic-auth``) behind TLS.

The server ``scripts/services.sh`` starts (MLOPS_TEST_MLFLOW_TLS, the test CA, its admin): the
TLS settings MLflow's own client reads, refusals that name the credentials (exit 2, nothing
moved), proxies and retries. The whole MLflow journey against it is in test_deploy_mlflow.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from deploy_helpers import fresh_bundle, project_config
from mlflow_helpers import MlflowServer, mlflow_server_of
from net_helpers import Fault, FaultLog, ProxyLog, connect_proxy, fault_proxy, serving

from pytest_mlops.cli import main
from pytest_mlops.deploy.promote import deploy_to_staging
from pytest_mlops.deploy.registries import open_registry
from pytest_mlops.deploy.settings import deploy_settings
from pytest_mlops.errors import ConfigError, DeployError

_VARS = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLOPS_REGISTRY_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
    "https_proxy", "all_proxy", "no_proxy",
)  # fmt: skip


@pytest.fixture(scope="module")
def server() -> MlflowServer:
    return mlflow_server_of("auth")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)


def project(root: Path, url: str, **deploy: str) -> Path:
    """The tiny project with a registered model of its own on *url*."""
    config = (root / "mlops.toml").read_text()
    config = config.replace('name = "tiny"', f'name = "tiny-{uuid.uuid4().hex[:8]}"')
    config = config.replace('registry = "registry"', f'registry = "mlflow+{url}"')
    config += "".join(f'{key} = "{value}"\n' for key, value in deploy.items())
    (root / "mlops.toml").write_text(config)
    return root


def admin(monkeypatch: pytest.MonkeyPatch, server: MlflowServer) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", str(server.user))
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", str(server.password))


def test_tls_as_mlflows_own_client_takes_it(
    server: MlflowServer, tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin(monkeypatch, server)
    root = project(tiny_project, server.url)
    host = server.url.removeprefix("https://")
    with pytest.raises(DeployError, match=rf"TLS: the certificate of {host} is not trusted"):
        open_registry(deploy_settings(project_config(root))).versions("x")
    for var, value in (
        ("MLFLOW_TRACKING_SERVER_CERT_PATH", server.ca),
        ("MLOPS_REGISTRY_CA_BUNDLE", server.ca),
        ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(var, str(value))
            assert open_registry(deploy_settings(project_config(root))).versions("x") == [], var
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(server.ca))
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_INSECURE_TLS=true and .* both set"):
        open_registry(deploy_settings(project_config(root)))


@pytest.fixture(scope="module")
def reader(server: MlflowServer) -> tuple[str, str]:
    """A user of the server's default permission (READ), made by its admin."""
    name, password = f"reader-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with server.http() as http:
        made = http.post(
            "/api/2.0/mlflow/users/create", json={"username": name, "password": password}
        )
    assert made.status_code == 200, made.content
    return name, password


@pytest.mark.parametrize("who", ["wrong password", "no credentials", "read-only user"])
def test_refusals_name_the_credentials_exit_2_and_move_nothing(
    who: str,
    server: MlflowServer,
    reader: tuple[str, str],
    tiny_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin(monkeypatch, server)
    root = project(tiny_project, server.url, ca_bundle=str(server.ca))
    registry = open_registry(deploy_settings(project_config(root)))
    version = deploy_to_staging(registry, fresh_bundle(root, 1)).version
    expected = {
        "wrong password": r"refused the credentials in MLFLOW_TRACKING_USERNAME/"
        r"MLFLOW_TRACKING_PASSWORD \(user 'admin'\) .*HTTP 401.*check them",
        "no credentials": r"needs credentials .*HTTP 401.*set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD",
        "read-only user": rf"does not let the credentials in .*\(user '{reader[0]}'\) POST "
        r"/api/2.0/mlflow/.* \(HTTP 403 .*\): the user needs EDIT permission on the experiment "
        r"'pytest-mlops/tiny-.*' and MANAGE",
    }[who]
    if who == "wrong password":
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    elif who == "no credentials":
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", reader[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", reader[1])
    monkeypatch.chdir(root)
    capsys.readouterr()
    assert main(["promote", "--to", "production"]) == 2
    err = capsys.readouterr().err
    assert re.search(expected, err), err
    assert err.count("\n") == 1, err
    admin(monkeypatch, server)
    fresh = open_registry(deploy_settings(project_config(root)))
    assert fresh.alias(version.name, "production") is None  # type: ignore[attr-defined]
    assert [e.action for e in fresh.history(version.name)] == ["deploy"]


def test_through_a_proxy_and_past_failures(
    server: MlflowServer, tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin(monkeypatch, server)
    host = server.url.removeprefix("https://")
    log = ProxyLog()
    with serving(connect_proxy(log)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://{proxy}")
        root = project(tiny_project, server.url, ca_bundle=str(server.ca))
        assert open_registry(deploy_settings(project_config(root))).versions("x") == []
        assert log.tunnels == [host]
    monkeypatch.delenv("HTTPS_PROXY")

    faults = FaultLog(
        faults=[
            Fault("POST /api/2.0/mlflow/runs/create", 503),
            Fault("PUT /api/2.0/mlflow-artifacts/", 429, headers={"Retry-After": "1"}),
            Fault("GET /api/2.0/mlflow/registered-models/get", 502, times=2),
        ]
    )
    with serving(fault_proxy(host, str(server.ca), faults)) as front:
        config = (root / "mlops.toml").read_text()
        (root / "mlops.toml").write_text(config.replace(server.url, f"http://{front}"))
        registry = open_registry(deploy_settings(project_config(root)))
        result = deploy_to_staging(registry, fresh_bundle(root, 1))
        assert result.smoke is not None
        assert result.smoke.passed
        assert all(f.times == 0 for f in faults.faults)  # every fault was met, and passed
        assert [e.action for e in registry.history(result.version.name)] == ["deploy"]
