"""The Docker + OCI path for real: images built, run, probed, pushed, promoted and rolled back.

Needs dockerd, an OCI registry and a Python base image: ``bash scripts/services.sh`` starts them
and ``scripts/test.sh`` exports MLOPS_TEST_REGISTRY and MLOPS_TEST_BASE_IMAGE. In CI (CI=true) a
missing part is a failure; elsewhere these tests skip and say what is missing. The whole journey
also runs through the registries behind TLS with htpasswd and with token authentication.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
from deploy_helpers import fresh_bundle, project_config, require_service
from net_helpers import assert_serves, tls_services

from pytest_mlops.cli import main
from pytest_mlops.deploy.client import http_call
from pytest_mlops.deploy.promote import deploy_to_staging, promote, rollback
from pytest_mlops.deploy.registry import Version
from pytest_mlops.deploy.settings import deploy_settings
from pytest_mlops.errors import DeployError


def digest_of(version: Version) -> str:
    """The digest of the serving image a registry version points at."""
    assert version.image is not None, f"version {version.version} has no serving image"
    return version.image.split("@")[1]


def _missing() -> str | None:
    for var in ("MLOPS_TEST_REGISTRY", "MLOPS_TEST_BASE_IMAGE"):
        if not os.environ.get(var):
            return f"{var} is not set (run bash scripts/services.sh and source its env file)"
    from pytest_mlops.deploy.image import docker_client

    try:
        docker_client()
    except DeployError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def engine() -> None:
    require_service("Docker", _missing())


@pytest.fixture
def oci_project(
    engine: None,
    tiny_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Path:
    """The tiny project on a fresh repository of the plain registry, or (parameter
    ``htpasswd`` or ``token``) of a registry behind TLS with that authentication."""
    kind = getattr(request, "param", "plain")
    host, extra = os.environ["MLOPS_TEST_REGISTRY"], ""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))  # not the machine's
    if kind != "plain":
        env = tls_services()
        host = env["MLOPS_TEST_REGISTRY_TLS" if kind == "htpasswd" else "MLOPS_TEST_REGISTRY_TOKEN"]
        extra = f'\nca_bundle = "{env["MLOPS_TEST_CA"]}"'
        monkeypatch.setenv("MLOPS_REGISTRY_USERNAME", env["MLOPS_TEST_REGISTRY_USER"])
        monkeypatch.setenv("MLOPS_REGISTRY_PASSWORD", env["MLOPS_TEST_REGISTRY_PASSWORD"])
    repo = f"tiny-{uuid.uuid4().hex[:8]}"
    config = (tiny_project / "mlops.toml").read_text()
    config = config.replace(
        'registry = "registry"',
        f'registry = "oci://{host}/{repo}"\n'
        f'base_image = "{os.environ["MLOPS_TEST_BASE_IMAGE"]}"{extra}',
    )
    (tiny_project / "mlops.toml").write_text(config)
    return tiny_project


@pytest.mark.parametrize("oci_project", ["plain", "htpasswd", "token"], indirect=True)
def test_image_is_built_pushed_smoke_tested_promoted_and_rolled_back(
    oci_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_mlops.deploy.oci import OciRegistry

    registry = OciRegistry(deploy_settings(project_config(oci_project)))
    first = deploy_to_staging(registry, fresh_bundle(oci_project, 1))
    assert first.smoke is not None
    assert first.smoke.passed, first.smoke.message
    v1 = first.version
    assert v1.image is not None
    assert v1.image.startswith(f"{registry.host}/{registry.repository}@sha256:")
    assert registry.tag_digest("staging") == digest_of(v1)

    promote(registry, "tiny")
    assert registry.tag_digest("production") == digest_of(v1)

    second = deploy_to_staging(registry, fresh_bundle(oci_project, 2))
    v2 = second.version
    assert registry.tag_digest("staging") == digest_of(v2) != digest_of(v1)
    assert registry.tag_digest("production") == digest_of(v1)
    promote(registry, "tiny")
    assert registry.tag_digest("production") == digest_of(v2)
    rollback(registry, "tiny", why="test")
    assert registry.tag_digest("production") == digest_of(v1)
    # A tag moved without its audit event (a process killed in between) follows the log again.
    registry.retag(digest_of(v2), "production")
    assert registry.reconcile("tiny", "production") is True
    assert registry.tag_digest("production") == digest_of(v1)
    assert [e.action for e in registry.history("tiny")] == [
        "deploy", "promote", "deploy", "promote", "rollback",
    ]  # fmt: skip

    # A CI job on a fresh runner (no .mlops) sees it all through the registry: the ledger's copy
    # under the tag mlops-ledger, and the bundle files as blobs.
    other = oci_project.parent / "fresh-runner"
    shutil.copytree(oci_project, other, ignore=shutil.ignore_patterns(".mlops", "build"))
    fresh = OciRegistry(deploy_settings(project_config(other)))
    assert [e.action for e in fresh.history("tiny")][-1] == "rollback"
    assert fresh.stage("tiny", "production") == registry.stage("tiny", "production")
    assert fresh.model_bytes(v2) == registry.model_bytes(v2)
    promote(fresh, "tiny", version=v2.version)
    assert registry.tag_digest("production") == digest_of(v2)
    assert registry.history("tiny")[-1].action == "promote"  # the first runner sees it too

    # The commands on another fresh runner: history, then serve production's verified files.
    third = oci_project.parent / "third-runner"
    shutil.copytree(oci_project, third, ignore=shutil.ignore_patterns(".mlops", "build"))
    monkeypatch.chdir(third)
    capsys.readouterr()
    assert main(["history"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.search(rf"production\s+promote\s+v{v2.version}\s", last), last
    assert_serves(third, "tiny", v2.version)

    # The image: non-root, a HEALTHCHECK, the lineage in its labels.
    image = registry._docker().images.get(v1.image)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert "/v2/health/ready" in " ".join(config["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["io.pytest-mlops.model.sha256"] == v1.model_sha256
    assert labels["io.pytest-mlops.report.sha256"] == v1.evidence["report_sha256"]
    assert labels["io.pytest-mlops.bundle.digest"] == v1.digest
    assert labels["io.pytest-mlops.data.current"].startswith("sha256:")

    # The container reports itself healthy to the engine.
    with registry.run_container(v1) as url:
        assert http_call(url + "/v2/models/tiny").json()["versions"] == ["1"]
        container = registry._docker().containers.list(
            filters={"label": f"io.pytest-mlops.smoke={v1.digest}"}
        )[0]
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                break
            time.sleep(0.5)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        # docker stop / a rolling update: readiness fails at once while the server still
        # answers (the drain period), then the process exits 0, before any SIGKILL
        container.kill(signal="SIGTERM")
        status, deadline = 200, time.monotonic() + 10
        while status == 200 and time.monotonic() < deadline:
            status = http_call(url + "/v2/health/ready").status
        assert status == 503
        assert http_call(url + "/v2/health/live").status == 200
        assert container.wait(timeout=60)["StatusCode"] == 0
        logs = container.logs().decode()
        assert "draining" in logs
        assert "stopped" in logs


def test_links_the_registry_lost_are_put_back_from_the_ledger(oci_project: Path) -> None:
    """Debian's docker-registry (filesystem storage) leaves an empty link file when a client is
    killed in the middle of a manifest upload; reads then fail with HTTP 500. The next move puts
    the manifest back from the ledger's copy, and the tag with it."""
    from pytest_mlops.deploy.oci import OciRegistry

    storage = os.environ.get("MLOPS_TEST_REGISTRY_DATA")
    if not storage:
        require_service("Docker", "MLOPS_TEST_REGISTRY_DATA is not set (source the env file)")
    registry = OciRegistry(deploy_settings(project_config(oci_project)))
    v1 = deploy_to_staging(registry, fresh_bundle(oci_project, 1)).version
    promote(registry, "tiny")
    digest = digest_of(v1)
    assert storage is not None
    manifests = Path(storage, "docker/registry/v2/repositories", registry.repository, "_manifests")
    revision = manifests / "revisions" / "sha256" / digest.split(":")[1] / "link"
    tag = manifests / "tags" / "production" / "current" / "link"
    for link in (revision, tag):
        assert link.read_text() == digest
        link.write_text("")  # what an interrupted upload leaves
    assert registry.tag_digest("production") is None  # the registry answers 500 now

    assert registry.reconcile("tiny", "production") is True
    assert revision.read_text() == tag.read_text() == digest
    assert registry.tag_digest("production") == digest
    registry.verify(v1)


def test_tampered_artifact_is_refused_and_the_tag_stays(oci_project: Path) -> None:
    from pytest_mlops.deploy.oci import OciRegistry

    registry = OciRegistry(deploy_settings(project_config(oci_project)))
    v1 = deploy_to_staging(registry, fresh_bundle(oci_project, 1)).version
    blob = registry.ledger.blob_path(v1.model_sha256)
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(DeployError, match="does not match its digest"):
        promote(registry, "tiny")
    assert registry.tag_digest("production") is None
