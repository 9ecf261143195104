"""OCI registries as teams run them: TLS, authentication, credentials, proxies, retries, blobs.

Against the real services ``scripts/services.sh`` starts: Debian's docker-registry behind TLS (a
test CA) with htpasswd authentication, and another with token authentication whose tokens come
from ``scripts/registry_token_issuer.py``. No image is built here (the Docker journey through
both is in test_deploy_docker.py), except for the refusals, which need a version to refuse.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from deploy_helpers import fresh_bundle, project_config
from net_helpers import (
    Fault,
    FaultLog,
    ProxyLog,
    connect_proxy,
    fault_proxy,
    free_port,
    own_registry,
    serving,
    tls_services,
)

from pytest_mlops.cli import main
from pytest_mlops.deploy.credentials import Credentials, registry_credentials
from pytest_mlops.deploy.distribution import DistributionClient
from pytest_mlops.deploy.oci import OciRegistry
from pytest_mlops.deploy.settings import deploy_settings
from pytest_mlops.deploy.transport import HttpOptions, TlsOptions
from pytest_mlops.errors import ConfigError, DeployError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return tls_services()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, CA or proxy of the machine's leak in; Docker's configuration is the
    test's own (empty until a test writes one)."""
    for var in (
        "MLOPS_REGISTRY_USERNAME", "MLOPS_REGISTRY_PASSWORD", "MLOPS_REGISTRY_CA_BUNDLE",
        "MLOPS_REGISTRY", "MLOPS_DEFAULT_REGISTRY", "GITHUB_TOKEN", "CI_REGISTRY",
        "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
        "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def writer(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], user: str = "") -> None:
    monkeypatch.setenv("MLOPS_REGISTRY_USERNAME", user or env["MLOPS_TEST_REGISTRY_USER"])
    monkeypatch.setenv("MLOPS_REGISTRY_PASSWORD", env["MLOPS_TEST_REGISTRY_PASSWORD"])


def project(root: Path, host: str, **deploy: object) -> Path:
    """The tiny project (from *root*) on a fresh repository of *host*, with *deploy* settings."""
    repo = f"tiny-{uuid.uuid4().hex[:8]}"
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in deploy.items())
    config = (root / "mlops.toml").read_text()
    config = config.replace('registry = "registry"', f'registry = "oci://{host}/{repo}"\n{lines}')
    (root / "mlops.toml").write_text(config)
    return root


def open_oci(root: Path) -> OciRegistry:
    return OciRegistry(deploy_settings(project_config(root)))


def client(env: dict[str, str], host: str, repository: str) -> DistributionClient:
    tls = TlsOptions(Path(env["MLOPS_TEST_CA"]), "the test CA")
    return DistributionClient(host, repository, HttpOptions(tls=tls, retries=1))


# --- TLS: the CA bundle setting, the variables, insecure -----------------------------------


def test_an_unknown_ca_names_the_host_and_the_setting(
    env: dict[str, str],
    tiny_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = env["MLOPS_TEST_REGISTRY_TLS"]
    writer(monkeypatch, env)
    root = project(tiny_project, host)
    with pytest.raises(DeployError, match=rf"TLS: the certificate of {host} is not trusted"):
        open_oci(root).history("tiny")
    monkeypatch.chdir(root)
    assert main(["history"]) == 2
    err = capsys.readouterr().err
    assert f"the certificate of {host} is not trusted" in err
    assert "deploy setting 'ca_bundle'" in err
    assert "Traceback" not in err


def test_the_ca_bundle_comes_from_the_setting_or_the_environment(
    env: dict[str, str], tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer(monkeypatch, env)
    root = project(tiny_project, env["MLOPS_TEST_REGISTRY_TLS"])
    for var in ("MLOPS_REGISTRY_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        with monkeypatch.context() as patch:
            patch.setenv(var, env["MLOPS_TEST_CA"])
            patch.delenv("SSL_CERT_DIR", raising=False)
            assert open_oci(root).history("tiny") == [], var
    config = (root / "mlops.toml").read_text()
    (root / "mlops.toml").write_text(config + "insecure = true\n")
    assert open_oci(root).history("tiny") == []  # TLS, without verifying the certificate
    (root / "mlops.toml").write_text(config + 'ca_bundle = "no-such-ca.pem"\n')
    with pytest.raises(ConfigError, match=r"'ca_bundle': cannot read the CA bundle .*no-such-ca"):
        open_oci(root).history("tiny")


# --- credentials: where they come from ------------------------------------------------------


def docker_config(monkeypatch: pytest.MonkeyPatch, config: dict[str, object]) -> Path:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str, secret: str) -> Path:
    """``docker-credential-mlopstest`` on PATH: answers *user*/*secret*, logs what it was asked."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    log = tmp_path / "helper.log"
    script = folder / "docker-credential-mlopstest"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "server = sys.stdin.read().strip()\n"
        f"open({str(log)!r}, 'a').write(sys.argv[1] + ' ' + server + '\\n')\n"
        f"print(json.dumps({{'ServerURL': server, 'Username': {user!r}, 'Secret': {secret!r}}}))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("kind", ["auths", "credHelpers", "credsStore", "identitytoken"])
def test_credentials_from_dockers_configuration(
    kind: str, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = env["MLOPS_TEST_REGISTRY_TOKEN"]
    user, password = env["MLOPS_TEST_REGISTRY_USER"], env["MLOPS_TEST_REGISTRY_PASSWORD"]
    log = helper(tmp_path, monkeypatch, user, password)
    if kind == "auths":
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        docker_config(monkeypatch, {"auths": {f"https://{host}": {"auth": encoded}}})
    elif kind == "credHelpers":
        docker_config(monkeypatch, {"credHelpers": {host: "mlopstest"}, "credsStore": "absent"})
    elif kind == "credsStore":
        docker_config(monkeypatch, {"credsStore": "mlopstest", "auths": {host: {}}})
    else:  # what docker login keeps from an OAuth2 token service: a refresh token
        issued = httpx.post(
            f"{env['MLOPS_TEST_TOKEN_ISSUER']}/token",
            data={"grant_type": "password", "username": user, "password": password,
                  "service": "pytest-mlops-registry", "access_type": "offline"},
            verify=ssl.create_default_context(cafile=env["MLOPS_TEST_CA"]),
        ).json()  # fmt: skip
        docker_config(monkeypatch, {"auths": {host: {"identitytoken": issued["refresh_token"]}}})
    registry = client(env, host, f"creds-{uuid.uuid4().hex[:8]}")
    digest, _ = registry.upload_bytes(b"a blob pushed with the credentials of " + kind.encode())
    assert registry.blob_exists(digest)
    source = registry.credentials().source
    if kind in ("credHelpers", "credsStore"):
        assert source.startswith(f"docker-credential-mlopstest ({kind} in ")
        assert log.read_text().splitlines() == [f"get {host}"]
    else:
        assert source.endswith(")")
        assert "config.json (auths" in source
        assert not log.exists()


def test_the_environment_wins_and_ci_job_tokens_serve_their_registries(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = env["MLOPS_TEST_REGISTRY_TLS"]
    encoded = base64.b64encode(b"mlops:stale-password").decode()
    docker_config(monkeypatch, {"auths": {host: {"auth": encoded}}})
    assert registry_credentials(host).password == "stale-password"
    writer(monkeypatch, env)
    chosen = registry_credentials(host)
    assert chosen.source == "MLOPS_REGISTRY_USERNAME/MLOPS_REGISTRY_PASSWORD"
    assert client(env, host, "env-wins").upload_bytes(b"x")[1] == 1

    ci = {"CI_REGISTRY": host, "CI_REGISTRY_USER": "mlops", "CI_REGISTRY_PASSWORD": "pw"}
    assert registry_credentials(host, ci) == Credentials(
        "mlops", "pw", "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"
    )
    assert not registry_credentials("other.example:5000", ci).present
    github = {"GITHUB_TOKEN": "ghs_x", "GITHUB_ACTOR": "octocat"}
    assert registry_credentials("ghcr.io", github) == Credentials(
        "octocat", "ghs_x", "GITHUB_TOKEN"
    )
    assert not registry_credentials("registry.gitlab.com", github).present
    # the GitLab job token against a real registry: CI_REGISTRY names it
    monkeypatch.delenv("MLOPS_REGISTRY_USERNAME")
    docker_config(monkeypatch, {})
    token_host = env["MLOPS_TEST_REGISTRY_TOKEN"]
    monkeypatch.setenv("CI_REGISTRY", token_host)
    monkeypatch.setenv("CI_REGISTRY_USER", env["MLOPS_TEST_REGISTRY_USER"])
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", env["MLOPS_TEST_REGISTRY_PASSWORD"])
    assert client(env, token_host, "gitlab-job").upload_bytes(b"y")[1] == 1


def test_a_missing_credential_helper_is_a_clear_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_config(monkeypatch, {"credsStore": "no-such-helper"})
    with pytest.raises(
        DeployError, match=r"credential helper 'docker-credential-no-such-helper'.*not installed"
    ):
        client(env, env["MLOPS_TEST_REGISTRY_TLS"], "x").upload_bytes(b"z")


# --- refusals: clear, exit 2, nothing moved -------------------------------------------------


@pytest.fixture(scope="module")
def staged(
    env: dict[str, str], tiny_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """Projects with one version in staging on the htpasswd or the token registry (built with
    Docker, pushed with the writer's credentials), made once per module and kind."""
    from deploy_helpers import require_service

    from pytest_mlops.deploy.promote import deploy_to_staging

    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind in made:
            return made[kind]
        if not os.environ.get("MLOPS_TEST_BASE_IMAGE"):
            require_service("Docker", "MLOPS_TEST_BASE_IMAGE is not set")
        host = env["MLOPS_TEST_REGISTRY_TLS" if kind == "htpasswd" else "MLOPS_TEST_REGISTRY_TOKEN"]
        root = tmp_path_factory.mktemp(f"staged-{kind}") / "project"
        shutil.copytree(tiny_template, root)
        base_image, ca = os.environ["MLOPS_TEST_BASE_IMAGE"], env["MLOPS_TEST_CA"]
        project(root, host, base_image=base_image, ca_bundle=ca)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DOCKER_CONFIG", str(root / "docker-config"))
            writer(patch, env)
            result = deploy_to_staging(open_oci(root), fresh_bundle(root, 1))
        assert result.smoke is not None
        assert result.smoke.passed, result.smoke.message
        made[kind] = root
        return root

    return make


BAD = {
    # case -> (who: a wrong password, none, the pull-only user, the user whose tokens have all
    # expired; the message expected)
    "wrong password": (
        "bad",
        r"refused the credentials from MLOPS_REGISTRY_USERNAME/MLOPS_REGISTRY_PASSWORD "
        r"\(user 'mlops'\)",
    ),
    "no credentials": (
        None,
        r"needs credentials for pull access to repository '.*' .*No credentials were found",
    ),
    "pull-only user": ("reader", r"push scope needed; the token service granted pull"),
    "expired tokens": ("expired", r"refused the tokens its token service .* issued .*\(expired"),
}
CASES = [
    *(("htpasswd", case) for case in ("wrong password", "no credentials")),  # no scopes, no tokens
    *(("token", case) for case in sorted(BAD)),
]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_refused_credentials_are_one_clear_paragraph_and_nothing_moves(
    kind: str,
    case: str,
    staged: Callable[[str], Path],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = staged(kind)
    who, message = BAD[case]
    if who == "bad":
        monkeypatch.setenv("MLOPS_REGISTRY_USERNAME", env["MLOPS_TEST_REGISTRY_USER"])
        monkeypatch.setenv("MLOPS_REGISTRY_PASSWORD", "not-the-password")
        if kind == "token":
            message = r"token service of .* refused the credentials from MLOPS_REGISTRY_USERNAME"
    elif who == "reader":
        monkeypatch.setenv("MLOPS_REGISTRY_USERNAME", env["MLOPS_TEST_REGISTRY_READER"])
        monkeypatch.setenv("MLOPS_REGISTRY_PASSWORD", env["MLOPS_TEST_REGISTRY_READER_PASSWORD"])
    elif who == "expired":
        writer(monkeypatch, env, user="expired")
    monkeypatch.chdir(root)
    shutil.rmtree(
        root / ".mlops", ignore_errors=True
    )  # a fresh runner: all comes from the registry
    capsys.readouterr()
    assert main(["promote", "--to", "production"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err, err
    assert re.search(message, err), err
    writer(monkeypatch, env)
    registry = open_oci(root)
    assert registry.tag_digest("production") is None
    assert [e.action for e in registry.history("tiny")] == ["deploy"]


def test_a_pull_only_user_is_refused_before_the_image_is_built(
    env: dict[str, str], tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_REGISTRY_USERNAME", env["MLOPS_TEST_REGISTRY_READER"])
    monkeypatch.setenv("MLOPS_REGISTRY_PASSWORD", env["MLOPS_TEST_REGISTRY_READER_PASSWORD"])
    root = project(tiny_project, env["MLOPS_TEST_REGISTRY_TOKEN"], ca_bundle=env["MLOPS_TEST_CA"])
    registry = open_oci(root)
    registry._client = object()  # no Docker client may be asked for anything
    with pytest.raises(DeployError, match=r"refused .*user 'reader'.* push scope needed"):
        registry.push(fresh_bundle(root, 1))
    assert registry.ledger.versions("tiny") == []


def test_a_token_refused_once_is_fetched_again(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer's user ``stale`` gets an expired token every other time (a clock-skewed
    issuer): the registry's 401 makes the client fetch a new one, and the call goes through."""
    writer(monkeypatch, env, user="stale")
    registry = client(env, env["MLOPS_TEST_REGISTRY_TOKEN"], f"stale-{uuid.uuid4().hex[:8]}")
    digest, _ = registry.upload_bytes(b"pushed with a refreshed token")
    assert registry.blob_exists(digest)
    assert registry.stats.tokens == 4  # pull and push scopes: each refused once, then fresh


# --- the network: proxies, retries, Location, mounts, failures -------------------------------


def test_the_proxy_variables_are_honoured(
    env: dict[str, str], tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer(monkeypatch, env)
    root = project(tiny_project, env["MLOPS_TEST_REGISTRY_TOKEN"], ca_bundle=env["MLOPS_TEST_CA"])
    log = ProxyLog()
    with serving(connect_proxy(log)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://{proxy}")
        assert open_oci(root).history("tiny") == []
        issuer = env["MLOPS_TEST_TOKEN_ISSUER"].removeprefix("https://")
        assert env["MLOPS_TEST_REGISTRY_TOKEN"] in log.tunnels
        assert issuer in log.tunnels
        seen = len(log.tunnels)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert open_oci(root).history("tiny") == []
        assert len(log.tunnels) == seen  # bypassed
    dead = free_port()
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    (root / "mlops.toml").write_text((root / "mlops.toml").read_text() + "retries = 1\n")
    with pytest.raises(
        DeployError, match=rf"the proxy http://127.0.0.1:{dead} refused the connection"
    ):
        open_oci(root).history("tiny")


def test_429_and_5xx_are_retried_with_retry_after(
    env: dict[str, str], tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer(monkeypatch, env)
    log = FaultLog()
    upstream = env["MLOPS_TEST_REGISTRY_TLS"]
    with serving(fault_proxy(upstream, env["MLOPS_TEST_CA"], log)) as front:
        root = project(tiny_project, front)  # plain HTTP on loopback, to the proxy
        registry = open_oci(root)
        log.faults = [
            Fault("HEAD /v2/", 502),
            Fault("POST /v2/", 429, headers={"Retry-After": "2"}),
            Fault("PUT /v2/", 500),
            Fault("/manifests/flaky", 503, headers={"Retry-After": "0"}),
        ]
        started = time.monotonic()
        digest, size = registry.upload_blob(b"through a flaky proxy")
        registry.put_artifact("flaky", "application/vnd.test+json", [("x/y", digest, size, {})], {})
        assert time.monotonic() - started >= 2.0  # Retry-After: 2 was honoured
        assert registry.tag_digest("flaky") is not None
        statuses = [status for _, status in log.seen]
        for fault in (502, 429, 500, 503):
            at = statuses.index(fault)
            again, status = log.seen[at + 1]  # the same request, then it passed
            assert again.split()[0] == log.seen[at][0].split()[0], log.seen
            assert status not in (429, 500, 502, 503), log.seen
        log.faults = [Fault("GET /v2/", 503, times=1000)]
        (root / "mlops.toml").write_text((root / "mlops.toml").read_text() + "retries = 2\n")
        with pytest.raises(DeployError, match=r"answered GET .* with HTTP 503, 3 tries in a row"):
            open_oci(root).history("tiny")
        assert statuses.count(503) + 3 == [s for _, s in log.seen].count(503)


def test_locations_on_another_origin_are_followed(env: dict[str, str], tiny_project: Path) -> None:
    """The plain registry's upload Locations rewritten to point past the proxy, straight at the
    registry (another origin): the chunks go there; relative Locations are what the token
    registry answers (``relativeurls``), absolute ones the htpasswd registry's."""
    plain = os.environ.get("MLOPS_TEST_REGISTRY")
    if not plain:
        pytest.skip("MLOPS_TEST_REGISTRY is not set")

    def past_the_proxy(location: str) -> str:
        parts = urllib.parse.urlsplit(location)
        return urllib.parse.urlunsplit(("http", plain, parts.path, parts.query, ""))

    log = FaultLog(location=past_the_proxy)
    with serving(fault_proxy(plain, env["MLOPS_TEST_CA"], log, scheme="http")) as front:
        registry = DistributionClient(
            front, f"moved-{uuid.uuid4().hex[:8]}", HttpOptions(retries=1), chunk_size=1 << 20
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(os.urandom(3 * (1 << 20) + 5))
            digest, _ = registry.upload_file(path)
        lines = [line for line, _ in log.seen]
        assert any(line.startswith("POST ") for line in lines)
        assert not any(line.startswith(("PATCH ", "PUT ")) for line in lines)  # went direct
        assert registry.stats.chunks == 3
        assert DistributionClient(plain, registry.repository, HttpOptions()).blob_exists(digest)


def test_blobs_another_repository_holds_are_mounted(
    env: dict[str, str], tiny_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    writer(monkeypatch, env)
    host = env["MLOPS_TEST_REGISTRY_TOKEN"]
    first = open_oci(project(tiny_project, host, ca_bundle=env["MLOPS_TEST_CA"]))
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(1 << 16))
    digest, _ = first.upload_file(path)
    first._remember_remote()
    config = tiny_project / "mlops.toml"
    config.write_text(config.read_text().replace(first.repository, f"{first.repository}-two"))
    second = open_oci(tiny_project)
    assert second._mount_sources() == (first.repository,)
    assert second.upload_file(path) == (digest, 1 << 16)
    assert (second.api.stats.mounted, second.api.stats.uploaded) == (1, 0)
    target = tmp_path / "back"
    second.download_blob(digest, target)
    assert target.read_bytes() == path.read_bytes()


def test_servers_that_are_no_registry_or_not_there(
    env: dict[str, str],
    tiny_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tiny_project)
    mlflow = os.environ.get("MLOPS_TEST_MLFLOW", "").removeprefix("http://")
    cases = {f"127.0.0.1:{free_port()}": r"refused the connection .*nothing listens there"}
    if mlflow:
        cases[mlflow] = r"does not speak the OCI distribution API: GET .*/v2/ answered HTTP 404"
    config = tiny_project / "mlops.toml"
    config.write_text(config.read_text() + "retries = 1\n")
    for host, message in cases.items():
        monkeypatch.setenv("MLOPS_REGISTRY", f"oci://{host}/tiny")
        assert main(["history"]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err), err
        assert err.count("\n") == 1, err


def test_a_host_name_that_does_not_resolve(tiny_project: Path) -> None:
    """In a network namespace of its own (no network at all: nothing is asked of a resolver
    outside), the CLI says the name does not resolve."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a network namespace")
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "pytest_mlops.cli", "history"],
        cwd=tiny_project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MLOPS_REGISTRY": "oci://registry.example.invalid/tiny"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot resolve the host name 'registry.example.invalid'" in done.stderr
    assert "Traceback" not in done.stderr


# --- a large blob, streamed ------------------------------------------------------------------


def test_a_2_gib_blob_streams_with_bounded_memory(env: dict[str, str], tmp_path: Path) -> None:
    """benchmarks/large_blob.py in a child process: a 2 GiB sparse file up (chunked) and down
    (verified) through TLS and htpasswd; the child's peak resident memory (VmHWM) stays far
    below the blob."""
    with own_registry(tmp_path, env) as host:
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "large_blob.py"), "--registry", host,
             "--ca-bundle", env["MLOPS_TEST_CA"], "--size", "2GiB", "--dir", str(tmp_path)],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "MLOPS_REGISTRY_USERNAME": env["MLOPS_TEST_REGISTRY_USER"],
                 "MLOPS_REGISTRY_PASSWORD": env["MLOPS_TEST_REGISTRY_PASSWORD"]},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["size"] == 2 << 30
    assert figures["chunks"] >= 60  # 32 MiB chunks
    assert figures["peak_rss"] < 256 << 20, figures  # the blob is 2048 MiB
    assert figures["peak_rss"] - figures["baseline_rss"] < 64 << 20, figures
