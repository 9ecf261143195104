"""The MLflow backend against a real MLflow tracking server: versions, aliases, verification.

``bash scripts/services.sh`` starts ``mlflow server`` (from its own cached virtual environment)
on 127.0.0.1 and writes MLOPS_TEST_MLFLOW to its env file, which ``scripts/test.sh`` sources; and
``mlflow server --app-name basic-auth`` behind TLS (MLOPS_TEST_MLFLOW_TLS, with the test CA and
its admin's credentials): every test here runs against both. In CI (CI=true) a missing server is
a failure; elsewhere these tests skip and say why.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import fresh_bundle, project_config
from mlflow_helpers import MlflowServer, mlflow_server_of
from net_helpers import assert_serves

from pytest_mlops.cli import main
from pytest_mlops.deploy.mlflow_registry import MlflowRegistry
from pytest_mlops.deploy.promote import deploy_to_staging, promote, rollback
from pytest_mlops.deploy.registries import open_registry
from pytest_mlops.deploy.settings import deploy_settings
from pytest_mlops.errors import ConfigError, DeployError


@pytest.fixture(scope="module", params=["plain", "auth"])
def mlflow_server(request: pytest.FixtureRequest) -> MlflowServer:
    return mlflow_server_of(request.param)


@pytest.fixture
def mlflow_project(
    mlflow_server: MlflowServer, tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The tiny project, its registered model under a fresh name on the MLflow server (with
    the test CA and the server's credentials when it has them)."""
    name = f"tiny-{uuid.uuid4().hex[:8]}"
    config = (tiny_project / "mlops.toml").read_text()
    config = config.replace('name = "tiny"', f'name = "{name}"').replace(
        'registry = "registry"', f'registry = "mlflow+{mlflow_server.url}"'
    )
    if mlflow_server.ca:
        config += f'ca_bundle = "{mlflow_server.ca}"\n'
    for var in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    if mlflow_server.user:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_server.user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", str(mlflow_server.password))
    (tiny_project / "mlops.toml").write_text(config)
    return tiny_project


@pytest.fixture
def rest(mlflow_server: MlflowServer) -> Any:
    """``rest(method, path, body=None)``: a REST call to the server, asserted to succeed."""

    def call(method: str, path: str, body: Any = None) -> Any:
        with mlflow_server.http() as http:
            answer = http.request(method, path, json=body)
        assert answer.status_code == 200, answer.content
        return answer.json()

    return call


def test_versions_aliases_promotion_rollback_and_reconcile(
    rest: Any,
    mlflow_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_mlops.deploy.mlflow_registry import MlflowRegistry

    registry = open_registry(deploy_settings(project_config(mlflow_project)))
    assert isinstance(registry, MlflowRegistry)
    first = deploy_to_staging(registry, fresh_bundle(mlflow_project, 1))
    assert first.smoke is not None
    assert first.smoke.passed, first.smoke.message
    v1 = first.version
    name = v1.name
    assert v1.ref is not None
    assert registry.alias(name, "staging") == v1.ref

    # MLflow holds the lineage: model version tags, the run's metrics and the bundle's files.
    record = rest("GET", f"/api/2.0/mlflow/model-versions/get?name={name}&version={v1.ref}")
    tags = {t["key"]: t["value"] for t in record["model_version"]["tags"]}
    assert tags["io.pytest-mlops.bundle.digest"] == v1.digest
    assert tags["io.pytest-mlops.model.sha256"] == v1.model_sha256
    assert tags["io.pytest-mlops.report.sha256"] == v1.evidence["report_sha256"]
    run = rest("GET", f"/api/2.0/mlflow/runs/get?run_id={record['model_version']['run_id']}")
    metrics = {m["key"]: m["value"] for m in run["run"]["data"]["metrics"]}
    assert metrics == pytest.approx(dict(v1.manifest["lineage"]["metrics"]))
    assert run["run"]["info"]["status"] == "FINISHED"

    promote(registry, name)
    assert registry.alias(name, "production") == v1.ref
    second = fresh_bundle(mlflow_project, 2)
    v2 = deploy_to_staging(registry, second).version
    assert registry.alias(name, "staging") == v2.ref != v1.ref
    assert registry.alias(name, "production") == v1.ref
    promote(registry, name)
    assert registry.alias(name, "production") == v2.ref
    rollback(registry, name, why="test")
    assert registry.alias(name, "production") == v1.ref

    # An alias moved without its audit event (a process killed in between) follows the log again.
    rest(
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        {"name": name, "alias": "production", "version": v2.ref},
    )
    assert registry.reconcile(name, "production") is True
    assert registry.alias(name, "production") == v1.ref
    assert registry.reconcile(name, "production") is False
    history = registry.history(name)
    assert [e.action for e in history] == ["deploy", "promote", "deploy", "promote", "rollback"]
    assert history[-1].evidence["mlflow_model_version"] == f"models:/{name}/{v1.ref}"
    monkeypatch.chdir(mlflow_project)
    capsys.readouterr()
    assert main(["history"]) == 0
    shown = capsys.readouterr().out
    assert f"production {name} v{v1.version}" in shown
    assert f"at=models:/{name}/{v1.ref}" in shown.splitlines()[-1]  # the rollback

    # A second push of the same bundle is the same version, in the ledger and in MLflow.
    again = registry.push(second)
    assert (again.version, again.ref) == (v2.version, v2.ref)


def test_a_fresh_runner_sees_what_the_previous_job_left(
    mlflow_project: Path, tmp_path: Path
) -> None:
    """CI jobs run on fresh machines: the staging job's ledger travels through MLflow, so the
    production job (another checkout, an empty .mlops) promotes, and both see one history."""
    import shutil

    staging_job = open_registry(deploy_settings(project_config(mlflow_project)))
    first = fresh_bundle(mlflow_project, 1)
    v1 = deploy_to_staging(staging_job, first).version
    name = v1.name

    other = tmp_path / "production-job"
    shutil.copytree(mlflow_project, other, ignore=shutil.ignore_patterns(".mlops", "build"))
    production_job = open_registry(deploy_settings(project_config(other)))
    assert isinstance(production_job, MlflowRegistry)
    assert not (other / ".mlops").exists()
    assert [v.digest for v in production_job.versions(name)] == [v1.digest]
    promote(production_job, name)  # verifies v1: its files come from MLflow
    assert production_job.alias(name, "production") == v1.ref
    assert production_job.model_bytes(v1) == (first.path / "model.onnx").read_bytes()

    v2 = deploy_to_staging(staging_job, fresh_bundle(mlflow_project, 2)).version
    assert v2.version == 2  # the staging job saw the production job's promotion first

    # Two writers at once: the one that did not see the other's change is refused, clearly.
    stale = open_registry(deploy_settings(project_config(other)))
    stale._pull = lambda: None  # type: ignore[attr-defined]  # it read before v2 landed
    with pytest.raises(DeployError, match=r"moved on while this ran .* one at a time"):
        stale.push(fresh_bundle(other, 3))

    actions = ["deploy", "promote", "deploy"]
    assert [e.action for e in production_job.history(name)] == actions
    assert [e.action for e in staging_job.history(name)] == actions
    assert [v.version for v in production_job.versions(name)] == [1, 2]  # MLflow's ledger won

    # `pytest-mlops serve` on yet another runner serves production's files from MLflow
    third = tmp_path / "serving-host"
    shutil.copytree(mlflow_project, third, ignore=shutil.ignore_patterns(".mlops", "build"))
    assert_serves(third, name, v1.version)


def test_tampered_files_in_mlflow_are_refused_and_the_alias_stays(
    mlflow_server: MlflowServer, rest: Any, mlflow_project: Path
) -> None:
    registry = open_registry(deploy_settings(project_config(mlflow_project)))
    v1 = deploy_to_staging(registry, fresh_bundle(mlflow_project, 1)).version
    name = v1.name
    record = rest("GET", f"/api/2.0/mlflow/model-versions/get?name={name}&version={v1.ref}")
    source = record["model_version"]["source"].removeprefix("mlflow-artifacts:/")
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/{source}/model.onnx"
    with mlflow_server.http() as http:
        data = bytearray(http.get(artifact).content)
        data[-10] ^= 0x01
        assert http.put(artifact, content=bytes(data)).status_code == 200
    with pytest.raises(DeployError, match=r"in MLflow .* do not match its digests"):
        promote(registry, name)
    assert isinstance(registry, MlflowRegistry)
    assert registry.alias(name, "production") is None
    assert [e.action for e in registry.history(name)] == ["deploy"]


def test_bad_locations_and_an_absent_server_are_clear_errors(tiny_project: Path) -> None:
    settings = deploy_settings(project_config(tiny_project), {"registry": "mlflow+ftp://host"})
    with pytest.raises(ConfigError, match=r"expected mlflow\+http://HOST\[:PORT\]"):
        open_registry(settings)
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = deploy_settings(
        project_config(tiny_project), {"registry": f"mlflow+http://127.0.0.1:{port}"}
    )
    with pytest.raises(DeployError, match=rf"127.0.0.1:{port}.*(refused|failed)"):
        open_registry(settings).push(fresh_bundle(tiny_project, 1))
