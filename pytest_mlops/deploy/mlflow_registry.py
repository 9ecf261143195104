"""The MLflow backend: each pushed bundle is an MLflow model version; stages are model aliases.

``registry = "mlflow+http://HOST:PORT"`` (or ``mlflow+https://...``) in the deploy settings names
an MLflow tracking server that serves artifacts (``mlflow server``'s default). Only its REST API
is used, so the ``mlflow`` package is not needed on this side. A push:

1. creates a run in the experiment ``pytest-mlops/<name>``, with the bundle's metrics (from the
   test report) and its lineage as tags, and uploads the bundle's files to the run's artifacts
   under ``bundle/``;
2. registers them as a new version of the registered model ``<name>``, with the lineage (bundle
   digest, model and report sha256, git commit, data fingerprints) as model version tags.

A stage move downloads that version's files from MLflow and checks every one against the
bundle's digests, then points the model alias ``staging`` or ``production`` at it, so
``models:/<name>@production`` always names a verified version. The smoke test serves the files
downloaded from MLflow. The audit log, the smoke results and a verified copy of each bundle are
kept in a ledger (``.mlops/registry/mlflow/...``), as for the OCI backend, whose copy travels
through MLflow (see :mod:`pytest_mlops.deploy.ledgered`); MLflow's own version numbers may differ
from the ledger's (``Version.ref`` maps them).

Credentials come from MLflow's own environment variables: ``MLFLOW_TRACKING_TOKEN`` (a bearer
token) or ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` (basic auth), and TLS
from MLflow's too: ``MLFLOW_TRACKING_SERVER_CERT_PATH`` (a CA bundle; the deploy setting
``ca_bundle`` first), ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` (a client certificate) and
``MLFLOW_TRACKING_INSECURE_TLS=true`` (no verification). Calls go through
:mod:`~pytest_mlops.deploy.transport` (proxies, timeouts, retries); artifacts are streamed from
and to files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.deploy.bundle import MANIFEST, Bundle, verify_bundle
from pytest_mlops.deploy.dockerfile import image_labels
from pytest_mlops.deploy.ledgered import LedgeredRegistry
from pytest_mlops.deploy.registry import Version
from pytest_mlops.deploy.transport import (
    HttpOptions,
    basic_auth,
    http_client,
    http_options,
    read_bounded,
    save_stream,
    send,
)
from pytest_mlops.errors import ConfigError, DeployError

if TYPE_CHECKING:
    import httpx

    from pytest_mlops.deploy.settings import DeploySettings
    from pytest_mlops.results import CheckResult

__all__ = ["MlflowRegistry", "parse_mlflow"]

_ARTIFACTS = "mlflow-artifacts:/"
_LEDGER_TAG = "io.pytest-mlops.ledger"
_TAG_PREFIX = "io.pytest-mlops"
_JSON_LIMIT = 16 << 20  # the largest REST answer read
_LEDGER_LIMIT = 1 << 30


def parse_mlflow(location: str) -> str:
    """``"mlflow+http://127.0.0.1:5000"`` -> ``"http://127.0.0.1:5000"``."""
    match = re.fullmatch(r"mlflow\+(https?://[^/?#\s]+)(/[^?#\s]*)?", location)
    if match is None:
        raise ConfigError(
            f"deploy registry {location!r}: expected mlflow+http://HOST[:PORT] (or "
            "mlflow+https://...), the address of an MLflow tracking server, e.g. "
            "mlflow+http://127.0.0.1:5000"
        )
    return match.group(1) + (match.group(2) or "").rstrip("/")


def _auth_headers() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return {"Authorization": basic_auth(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))}
    return {}


def _credentials_text() -> str:
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return "the token in MLFLOW_TRACKING_TOKEN"
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return (
            f"the credentials in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (user {user!r})"
        )
    return ""


def mlflow_http_options(settings: DeploySettings) -> HttpOptions:
    """TLS as MLflow's own client takes it; the timeouts and retries of the deploy settings.

    The TLS settings are ``MLFLOW_TRACKING_SERVER_CERT_PATH``, ``MLFLOW_TRACKING_INSECURE_TLS``
    and ``MLFLOW_TRACKING_CLIENT_CERT_PATH``, the deploy setting ``ca_bundle`` first.
    """
    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
    if insecure and os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        raise ConfigError(
            "MLFLOW_TRACKING_INSECURE_TLS=true and MLFLOW_TRACKING_SERVER_CERT_PATH are both "
            "set: verify against the CA bundle, or do not verify, not both"
        )
    options = http_options(
        settings, ca_env=("MLFLOW_TRACKING_SERVER_CERT_PATH",), verify=not insecure
    )
    client_cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    if client_cert:
        from dataclasses import replace

        options = replace(options, tls=replace(options.tls, client_cert=Path(client_cert)))
    return options


class MlflowRegistry(LedgeredRegistry):
    """Model versions and aliases in an MLflow tracking server; the ledger's copy there too."""

    def __init__(self, settings: DeploySettings) -> None:
        self.url = parse_mlflow(settings.registry)
        self.location = settings.registry
        super().__init__(settings, "mlflow", f"{self.url.split('//', 1)[1]}-{settings.name}")
        self.options = mlflow_http_options(settings)
        self._http: httpx.Client | None = None

    # --- the ledger's copy in MLflow ---
    #
    # A copy of the ledger database per change, in a run of its own ("<name>-ledger", in the
    # model's experiment), named by its sha256; the registered model's tag io.pytest-mlops.ledger
    # records the generation, the copy's URI and sha256, and moves in one call.

    def _ledger_state(self) -> dict[str, Any]:
        found = self._get("/api/2.0/mlflow/registered-models/get", missing_ok=True, name=self.name)
        tags = {
            t["key"]: t["value"] for t in (found or {}).get("registered_model", {}).get("tags", [])
        }
        raw = tags.get(_LEDGER_TAG)
        if raw is None:
            return {"generation": 0}
        try:
            state = json.loads(raw)
            int(state["generation"]), str(state["uri"]), str(state["sha256"]), str(state["run"])
        except (ValueError, TypeError, KeyError):
            raise DeployError(
                f"the tag {_LEDGER_TAG} of the registered model {self.name!r} in MLflow "
                f"({self.location}) is not pytest-mlops's ledger record: {raw[:120]!r}"
            ) from None
        return dict(state)

    def _read_ledger(self, state: dict[str, Any]) -> bytes:
        with tempfile.TemporaryDirectory(prefix="mlops-ledger-") as tmp:
            target = Path(tmp) / "ledger.db"
            self._download(state["uri"], target, limit=_LEDGER_LIMIT)
            return target.read_bytes()

    def _write_ledger(self, data: bytes, digest: str, state: dict[str, Any]) -> None:
        run = state.get("run") or self._create_run(self.name, f"{self.name}-ledger", {})["run_id"]
        artifacts = self._call("GET", f"/api/2.0/mlflow/runs/get?run_id={run}")["run"]["info"][
            "artifact_uri"
        ]
        uri = f"{artifacts}/ledger/{digest}.db"
        self._upload(uri, lambda: data, len(data))
        record = {
            "generation": int(state["generation"]) + 1,
            "uri": uri,
            "sha256": digest,
            "run": run,
        }
        self._call(
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag",
            {"name": self.name, "key": _LEDGER_TAG, "value": json.dumps(record, sort_keys=True)},
        )

    def _remote_files(self, version: Version) -> Callable[[str, Path], None]:
        source = self._record(version)["source"]
        return lambda rel, dest: self._download(f"{source}/{rel}", dest)

    # --- the REST API ---

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = http_client(self.options)
        return self._http

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One call to the server (retried as the transport says).

        A 401 or 403 is an error that names the credentials.
        """
        client = self._client()
        sent = {**_auth_headers(), **(headers or {})}
        response = send(
            client,
            lambda: client.build_request(
                method, self.url + path, headers=sent, content=content() if content else None
            ),
            self.options,
            stream=stream,
        )
        if response.status_code in (401, 403):
            body = read_bounded(response, 64 << 10)
            raise self._refused(method, path, response.status_code, body)
        return response

    def _refused(self, method: str, path: str, status: int, body: bytes) -> DeployError:
        what = f"{method} {path.split('?')[0]}"
        error = _error_of(status, body)
        said = " ".join(part for part in (error["error_code"], error["message"]) if part)
        who = _credentials_text()
        if status == 401 and not who:
            return DeployError(
                f"the MLflow server {self.url} needs credentials ({what}: HTTP 401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
            )
        if status == 401:
            return DeployError(
                f"the MLflow server {self.url} refused {who} ({what}: HTTP 401 {said}): check them"
            )
        return DeployError(
            f"the MLflow server {self.url} does not let {who or 'anonymous users'} {what} "
            f"(HTTP 403 {said}): the user needs EDIT permission on the experiment "
            f"'pytest-mlops/{self.name}' and MANAGE on the registered model {self.name!r}, or "
            "MLflow's default permission must allow it"
        )

    def _call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        """One REST call; the JSON answer (``None`` for a missing resource with *missing_ok*)."""
        payload = None if body is None else json.dumps(body).encode()
        response = self._send(
            method,
            path,
            content=(lambda: payload) if payload is not None else None,
            headers={"Content-Type": "application/json"} if payload is not None else None,
            stream=True,
        )
        data = read_bounded(response, _JSON_LIMIT)
        if response.status_code == 200:
            try:
                return json.loads(data) if data else {}
            except ValueError:
                raise DeployError(
                    f"{self.url} answered {method} {path.split('?')[0]} with something else "
                    f"than JSON: {data[:120]!r} (is it an MLflow tracking server?)"
                ) from None
        error = _error_of(response.status_code, data)
        code, message = error["error_code"], error["message"]
        # MLflow answers an unknown alias with INVALID_PARAMETER_VALUE "... alias X not found."
        unknown_alias = code == "INVALID_PARAMETER_VALUE" and re.search(
            r"alias .* not found", message
        )
        if missing_ok and (
            response.status_code == 404 or code == "RESOURCE_DOES_NOT_EXIST" or unknown_alias
        ):
            return None
        raise DeployError(
            f"the MLflow server {self.url} refused {method} {path.split('?')[0]}: HTTP "
            f"{response.status_code} {code} {message}".rstrip()
        )

    def _get(self, path: str, *, missing_ok: bool = False, **query: str) -> Any:
        return self._call("GET", f"{path}?{urllib.parse.urlencode(query)}", missing_ok=missing_ok)

    def _artifact_path(self, uri: str) -> str:
        if not uri.startswith(_ARTIFACTS):
            raise DeployError(
                f"the MLflow server {self.url} stores artifacts at {uri!r}, which this client "
                "cannot reach: run it with artifact serving on (mlflow server --serve-artifacts, "
                "the default, with --artifacts-destination)"
            )
        return "/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(
            uri[len(_ARTIFACTS) :].lstrip("/")
        )

    def _upload(self, uri: str, content: Callable[[], Any], size: int) -> None:
        """PUT an artifact; *content* makes its body (bytes, or an iterator for a file)."""
        response = self._send(
            "PUT",
            self._artifact_path(uri),
            content=content,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if response.status_code != 200:
            raise DeployError(
                f"the MLflow server {self.url} refused the upload of {uri}: HTTP "
                f"{response.status_code} {response.content[:200]!r}"
            )

    def _upload_file(self, uri: str, path: Path) -> None:
        self._upload(uri, lambda: _read_file(path), path.stat().st_size)

    def _download(self, uri: str, dest: Path, *, limit: int | None = None) -> None:
        """Stream an artifact into *dest* (through a temporary file beside it)."""
        response = self._send("GET", self._artifact_path(uri), stream=True)
        try:
            if response.status_code != 200:
                raise DeployError(
                    f"the MLflow server {self.url} has no artifact {uri} "
                    f"(HTTP {response.status_code})"
                )
            save_stream(response, dest, f"{uri} from {self.url}", limit=limit)
        finally:
            response.close()

    def _experiment(self, name: str) -> str:
        experiment_name = f"pytest-mlops/{name}"
        found = self._get(
            "/api/2.0/mlflow/experiments/get-by-name",
            missing_ok=True,
            experiment_name=experiment_name,
        )
        if found is None:
            try:
                found = {
                    "experiment": self._call(
                        "POST", "/api/2.0/mlflow/experiments/create", {"name": experiment_name}
                    )
                }
            except DeployError:  # created meanwhile by another process
                found = self._get(
                    "/api/2.0/mlflow/experiments/get-by-name", experiment_name=experiment_name
                )
        return str(found["experiment"]["experiment_id"])

    def _create_run(self, name: str, run_name: str, tags: Mapping[str, str]) -> dict[str, Any]:
        """A new run in model *name*'s experiment; its ``info`` (run_id, artifact_uri, ...)."""
        answer = self._call(
            "POST",
            "/api/2.0/mlflow/runs/create",
            {
                "experiment_id": self._experiment(name),
                "run_name": run_name,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        return dict(answer["run"]["info"])

    def model_version(self, name: str, number: str) -> dict[str, Any] | None:
        """MLflow's record of a model version (``None`` if there is none)."""
        found = self._get(
            "/api/2.0/mlflow/model-versions/get", missing_ok=True, name=name, version=number
        )
        return None if found is None else dict(found["model_version"])

    def alias(self, name: str, alias: str) -> str | None:
        """The MLflow version number a model alias names, or ``None``."""
        found = self._get(
            "/api/2.0/mlflow/registered-models/alias", missing_ok=True, name=name, alias=alias
        )
        if found is None:
            return None
        return str(found["model_version"]["version"])

    # --- RegistryBackend ---

    def push(self, bundle: Bundle) -> Version:
        """Log the bundle as a run's artifacts and register it as a new model version."""
        verify_bundle(bundle.path, bundle.digest)
        with self.lock():
            existing = self.ledger.by_digest(bundle.name, bundle.digest)
            if existing is not None:
                return existing
            lineage = bundle.manifest.get("lineage", {})
            tags = {
                **image_labels(lineage, bundle.name),
                f"{_TAG_PREFIX}.bundle.digest": bundle.digest,
            }
            run = self._create_run(bundle.name, f"{bundle.name}-{bundle.short}", tags)
            metrics = [
                {"key": key, "value": float(value), "timestamp": int(time.time() * 1000), "step": 0}
                for key, value in sorted(lineage.get("metrics", {}).items())
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            ]
            if metrics:
                self._call(
                    "POST",
                    "/api/2.0/mlflow/runs/log-batch",
                    {"run_id": run["run_id"], "metrics": metrics},
                )
            source = f"{run['artifact_uri']}/bundle"
            for rel in [*bundle.manifest["files"], MANIFEST]:
                self._upload_file(f"{source}/{rel}", bundle.path / rel)
            self._call(
                "POST",
                "/api/2.0/mlflow/runs/update",
                {
                    "run_id": run["run_id"],
                    "status": "FINISHED",
                    "end_time": int(time.time() * 1000),
                },
            )
            if (
                self._get(
                    "/api/2.0/mlflow/registered-models/get", missing_ok=True, name=bundle.name
                )
                is None
            ):
                self._call(
                    "POST", "/api/2.0/mlflow/registered-models/create", {"name": bundle.name}
                )
            created = self._call(
                "POST",
                "/api/2.0/mlflow/model-versions/create",
                {
                    "name": bundle.name,
                    "source": source,
                    "run_id": run["run_id"],
                    "tags": [{"key": k, "value": v} for k, v in tags.items()],
                    "description": f"pytest-mlops bundle {bundle.digest}",
                },
            )
            return self._keep(bundle, ref=str(created["model_version"]["version"]))

    def smoke(self, version: Version, stage: str) -> CheckResult:
        """Serve the files downloaded from MLflow in a child process and smoke-test them."""
        from pytest_mlops.deploy.smoke import smoke_test_in_process

        with tempfile.TemporaryDirectory(prefix="mlops-smoke-") as tmp:
            bundle = self.download(version, Path(tmp) / "bundle")
            return smoke_test_in_process(bundle, version=str(version.version), stage=stage)

    def download(self, version: Version, dest: Path) -> Bundle:
        """The version's files as MLflow holds them, as a bundle directory verified by digest."""
        record = self._record(version)
        dest.mkdir(parents=True, exist_ok=True)
        for rel in [*version.manifest["files"], MANIFEST]:
            self._download(f"{record['source']}/{rel}", dest / rel)
        try:
            return verify_bundle(dest, version.digest)
        except DeployError as exc:
            raise DeployError(
                f"the files of {version.label} in MLflow ({self.location}, model version "
                f"{version.ref}) do not match its digests: {exc}; refusing to deploy them"
            ) from None

    def _record(self, version: Version) -> dict[str, Any]:
        number = self._reference(version)
        record = self.model_version(version.name, number)
        if record is None:
            raise DeployError(
                f"MLflow ({self.location}) has no model version {number} of {version.name!r} "
                f"({version.label}): it was deleted there; push the bundle again"
            )
        tags = {t["key"]: t["value"] for t in record.get("tags", [])}
        if tags.get(f"{_TAG_PREFIX}.bundle.digest") != version.digest:
            raise DeployError(
                f"MLflow model version {number} of {version.name!r} is not {version.label} "
                f"(its bundle digest tag is {tags.get(f'{_TAG_PREFIX}.bundle.digest')!r}, "
                f"expected {version.digest}): refusing to deploy it"
            )
        return record

    # --- the stage pointers: aliases ---

    def _pointed(self, name: str, stage: str) -> str | None:
        return self.alias(name, stage)

    def _reference(self, version: Version) -> str:
        if not version.ref:
            raise DeployError(
                f"{version.label} has no MLflow model version in {self.location}: push it again"
            )
        return version.ref

    def _point(self, name: str, stage: str, version: Version) -> None:
        self._call(
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            {"name": name, "alias": stage, "version": self._reference(version)},
        )

    def _evidence(self, version: Version) -> dict[str, Any]:
        return {"mlflow_model_version": f"models:/{version.name}/{self._reference(version)}"}

    def _verify_remote(self, version: Version) -> None:
        with tempfile.TemporaryDirectory(prefix="mlops-verify-") as tmp:
            self.download(version, Path(tmp) / "bundle")


def _error_of(status: int, body: bytes) -> dict[str, str]:
    """MLflow's ``{"error_code", "message"}``, or the body's start."""
    try:
        error = json.loads(body)
        return {
            "error_code": str(error.get("error_code", "")),
            "message": str(error.get("message", "")),
        }
    except (ValueError, AttributeError):
        return {"error_code": "", "message": body[:200].decode(errors="replace")}


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(1 << 20), b"")
