"""The OCI registry backend: serving images pushed by digest, stage tags re-pointed by digest.

``registry = "oci://HOST:PORT/REPOSITORY"`` in the deploy settings. A push builds the bundle's
image (through the Docker SDK), pushes it, and records the version with its image digest; a stage
move re-tags that exact manifest as ``staging`` or ``production`` through the distribution v2 API
(``GET`` the manifest by digest, ``PUT`` it under the stage tag), so the tag can only ever name an
image that was pushed and verified. The lineage travels in the image's labels. The bundle's files
are blobs of the repository too (tag ``bundle-<digest>-files``). The audit log, the smoke tests
and a verified copy of each bundle live in a ledger (a
:class:`~pytest_mlops.deploy.registry.LocalRegistry` under ``.mlops/registry/oci/...``) whose
copy travels through the registry: a blob under the tag ``mlops-ledger``, its generation and
sha256 in the manifest's annotations (see :mod:`pytest_mlops.deploy.ledgered`).

The registry is spoken to over HTTPS with the credentials people keep
(:mod:`~pytest_mlops.deploy.distribution`, :mod:`~pytest_mlops.deploy.credentials`); the image
push goes through the Docker daemon, which gets the same credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops._files import write_atomic
from pytest_mlops.deploy.bundle import Bundle, verify_bundle
from pytest_mlops.deploy.distribution import DistributionClient
from pytest_mlops.deploy.ledgered import LedgeredRegistry
from pytest_mlops.deploy.registry import Version
from pytest_mlops.deploy.transport import http_options
from pytest_mlops.errors import ConfigError, DeployError

if TYPE_CHECKING:
    from pytest_mlops.deploy.settings import DeploySettings
    from pytest_mlops.results import CheckResult

__all__ = ["OciRegistry", "parse_oci"]

_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_ANNOTATION = "io.pytest-mlops"
_LEDGER_TAG = "mlops-ledger"
_LEDGER_CONFIG = "application/vnd.pytest-mlops.ledger.config.v1+json"
_BUNDLE_CONFIG = "application/vnd.pytest-mlops.bundle.config.v1+json"
_SQLITE = "application/vnd.sqlite3"
_FILE_TYPE = "application/octet-stream"
_LEDGER_LIMIT = 1 << 30  # the largest ledger copy read back
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")


def parse_oci(location: str) -> tuple[str, str]:
    """``"oci://127.0.0.1:5000/team/credit"`` -> ``("127.0.0.1:5000", "team/credit")``."""
    match = re.fullmatch(r"oci://([^/]+)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)", location)
    host = match.group(1) if match else ""
    if match is None or not _HOST.fullmatch(host) or any(len(p) > 63 for p in host.split(".")):
        raise ConfigError(
            f"deploy registry {location!r}: expected oci://HOST[:PORT]/REPOSITORY "
            "(a host name or address, and a lower-case repository path), e.g. "
            "oci://ghcr.io/team/credit-scoring or oci://127.0.0.1:5000/credit-scoring"
        )
    return host, match.group(2)


class OciRegistry(LedgeredRegistry):
    """Images in an OCI (distribution v2) registry; versions and audit log in a ledger.

    The registry holds the ledger's copy.
    """

    def __init__(self, settings: DeploySettings) -> None:
        self.host, self.repository = parse_oci(settings.registry)
        self.location = settings.registry
        super().__init__(settings, "oci", f"{self.host}-{self.repository}")
        self.api = DistributionClient(
            self.host, self.repository, http_options(settings), insecure=settings.insecure
        )
        self._client: Any = None

    # --- the distribution v2 API ---

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """The manifest bytes, media type and digest of a tag or digest.

        An image manifest the registry cannot read back by digest (the filesystem storage of
        Debian's docker-registry leaves an empty link file when a client is killed in the middle
        of a manifest upload: HTTP 500 "invalid checksum digest format") is put back from the
        ledger's copy, which push keeps.
        """
        answer = self.api.get_manifest(reference, _MANIFEST_TYPES)
        if answer.status >= 500 and reference.startswith("sha256:"):
            kept = self._kept_manifest(reference)
            if kept is not None:
                media_type = str(json.loads(kept).get("mediaType") or _OCI_MANIFEST)
                self._put_manifest(reference, kept, media_type)
                return kept, media_type, reference
        if answer.status != 200:
            raise DeployError(
                f"the OCI registry {self.host} has no manifest {self.repository}:{reference} "
                f"(HTTP {answer.status})"
            )
        headers = answer.headers
        return (
            answer.body,
            headers.get("content-type", ""),
            headers.get("docker-content-digest", ""),
        )

    def _put_manifest(self, reference: str, body: bytes, media_type: str) -> None:
        self.api.put_manifest(reference, body, media_type)

    def _keep_manifest(self, digest: str) -> None:
        """A copy of the image manifest in the ledger, to put back if the registry loses it."""
        body, _, _ = self.manifest(digest)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise DeployError(f"the OCI registry returned another manifest for {digest[:19]}...")
        with tempfile.TemporaryDirectory(prefix="mlops-manifest-") as tmp:
            path = Path(tmp) / "manifest"
            path.write_bytes(body)
            self.ledger.put_blob(path, digest)

    def _kept_manifest(self, digest: str) -> bytes | None:
        path = self.ledger.blob_path(digest)
        if not path.is_file():
            return None
        body = path.read_bytes()
        return body if "sha256:" + hashlib.sha256(body).hexdigest() == digest else None

    def upload_blob(self, data: bytes) -> tuple[str, int]:
        """Store *data* as a blob (skipped if it is there); its digest and size."""
        return self.api.upload_bytes(data)

    def upload_file(self, path: Path) -> tuple[str, int]:
        """Stream a file into a blob; its digest and size.

        The blob is mounted from another repository of this registry that this project pushed
        it to, if any.
        """
        return self.api.upload_file(path, mount_from=self._mount_sources())

    def fetch_blob(self, digest: str) -> bytes:
        """A (small) blob's bytes, checked against its digest."""
        return self.api.fetch(digest, limit=_LEDGER_LIMIT)

    def download_blob(self, digest: str, dest: Path) -> None:
        """Stream a blob into *dest*, checked against its digest before it lands."""
        self.api.download(digest, dest)

    def _mount_sources(self) -> tuple[str, ...]:
        """Other repositories of this registry whose ledgers sit beside this one.

        The blobs pushed there can be mounted rather than sent again.
        """
        sources = []
        for record in self.ledger.root.parent.glob("*/remote.json"):
            try:
                remote = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if remote.get("host") == self.host and remote.get("repository") != self.repository:
                sources.append(str(remote["repository"]))
        return tuple(sorted(sources))

    def put_artifact(
        self,
        tag: str,
        config_type: str,
        layers: list[tuple[str, str, int, dict[str, str]]],
        annotations: Mapping[str, str],
    ) -> None:
        """Tag an OCI manifest of *layers*, with an empty config of *config_type*.

        The layers are ``(media type, digest, size, annotations)`` of blobs already stored; the
        manifest carries *annotations*.
        """
        config, size = self.upload_blob(b"{}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": _OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": config, "size": size},
            "layers": [
                {"mediaType": t, "digest": d, "size": n, **({"annotations": a} if a else {})}
                for t, d, n, a in layers
            ],
            "annotations": dict(annotations),
        }
        self._put_manifest(tag, json.dumps(manifest, sort_keys=True).encode(), _OCI_MANIFEST)

    def tag_digest(self, tag: str) -> str | None:
        """The manifest digest a tag points at, or ``None`` (no tag, or one it cannot read)."""
        pointed = self._pointed("", tag)
        return None if pointed is None or pointed.startswith("unreadable") else pointed

    def retag(self, digest: str, tag: str) -> None:
        """Point *tag* at the manifest *digest* (the same bytes, so the same digest)."""
        body, media_type, actual = self.manifest(digest)
        if actual and actual != digest:
            raise DeployError(
                f"the OCI registry returned {actual} for {digest}: refusing to tag it"
            )
        self._put_manifest(tag, body, media_type)

    # --- RegistryBackend ---

    def _docker(self) -> Any:
        if self._client is None:
            from pytest_mlops.deploy.image import docker_client

            self._client = docker_client()
        return self._client

    def push(self, bundle: Bundle) -> Version:
        """Build the bundle's image, push it, record the version with its image digest."""
        from pytest_mlops.deploy.image import build_image

        verify_bundle(bundle.path, bundle.digest)
        with self.lock():
            existing = self.ledger.by_digest(bundle.name, bundle.digest)
            if existing is not None and existing.image:
                return existing
            tag = f"bundle-{bundle.short}"
            ref = f"{self.host}/{self.repository}"
            self.api.check_push()  # credentials and scope, before a long build
            client = self._docker()
            build_image(
                bundle,
                f"{ref}:{tag}",
                base_image=self.settings.base_image,
                python=self.settings.python,
                client=client,
            )
            self._push_image(client, ref, tag)
            digest = self.tag_digest(tag)
            if digest is None:
                raise DeployError(f"pushed {ref}:{tag} but the registry does not list it")
            # the bundle's files as blobs too (the image holds only what serving needs), under a
            # tag of their own so that garbage collection keeps them
            files = [
                (rel, self.upload_file(bundle.path / rel))
                for rel in [*bundle.manifest["files"], "manifest.json"]
            ]
            self._keep_manifest(digest)
            self.put_artifact(
                f"{tag}-files",
                _BUNDLE_CONFIG,
                [
                    (_FILE_TYPE, d, s, {"org.opencontainers.image.title": rel})
                    for rel, (d, s) in files
                ],
                {f"{_ANNOTATION}.bundle.digest": bundle.digest},
            )
            self._remember_remote()
            return self._keep(bundle, image=f"{ref}@{digest}")

    def _remember_remote(self) -> None:
        record = self.ledger.root / "remote.json"
        if not record.is_file():
            record.parent.mkdir(parents=True, exist_ok=True)
            remote = {"host": self.host, "repository": self.repository}
            write_atomic(record, json.dumps(remote), what="the registry's remote record")

    def _docker_auth(self) -> dict[str, str] | None:
        """What the Docker daemon needs to push or pull here.

        Our credentials, if the registry asks for some (else the daemon's own, from its
        configuration).
        """
        self.api.base()
        if not self.api.asks_for_credentials:
            return None
        return self.api.credentials().docker_auth() or None

    def _push_image(self, client: Any, ref: str, tag: str) -> None:
        stream = client.images.push(
            ref, tag=tag, stream=True, decode=True, auth_config=self._docker_auth()
        )
        errors = [
            line.get("error") or line.get("errorDetail", {}).get("message")
            for line in stream
            if isinstance(line, dict) and ("error" in line or "errorDetail" in line)
        ]
        if errors:
            raise DeployError(
                f"the Docker daemon could not push {ref}:{tag}: {errors[0]} (it trusts a "
                f"registry's CA from /etc/docker/certs.d/{self.host}/ca.crt)"
            )

    # --- the stage pointers: tags ---

    def _pointed(self, name: str, stage: str) -> str | None:
        answer = self.api.get_manifest(stage, _MANIFEST_TYPES, method="HEAD")
        if answer.status == 404:
            return None
        if answer.status != 200:  # a tag the registry cannot read back: reconciling puts it again
            return f"unreadable (HTTP {answer.status})"
        return answer.headers.get("docker-content-digest")

    def _reference(self, version: Version) -> str:
        if not version.image or "@" not in version.image:
            raise DeployError(f"{version.label} has no image in {self.location}: push it again")
        return version.image.rsplit("@", 1)[1]

    def _point(self, name: str, stage: str, version: Version) -> None:
        self.retag(self._reference(version), stage)

    def _evidence(self, version: Version) -> dict[str, Any]:
        return {"image": version.image}

    # --- the ledger's copy: a blob under the tag mlops-ledger ---

    def _ledger_state(self) -> dict[str, Any]:
        answer = self.api.get_manifest(_LEDGER_TAG, _OCI_MANIFEST)
        if answer.status == 404:
            return {"generation": 0}
        try:
            if answer.status != 200:
                raise ValueError(f"HTTP {answer.status}")
            manifest = json.loads(answer.body)
            notes = manifest["annotations"]
            state = {
                "generation": int(notes[f"{_ANNOTATION}.ledger.generation"]),
                "sha256": str(notes[f"{_ANNOTATION}.ledger.sha256"]),
                "blob": str(manifest["layers"][0]["digest"]),
            }
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise DeployError(
                f"the tag {_LEDGER_TAG!r} of {self.location} is not pytest-mlops's ledger record "
                f"({exc}): {answer.body[:120]!r}"
            ) from None
        return state

    def _read_ledger(self, state: dict[str, Any]) -> bytes:
        return self.fetch_blob(state["blob"])

    def _write_ledger(self, data: bytes, digest: str, state: dict[str, Any]) -> None:
        blob, size = self.upload_blob(data)
        self.put_artifact(
            _LEDGER_TAG,
            _LEDGER_CONFIG,
            [(_SQLITE, blob, size, {})],
            {
                f"{_ANNOTATION}.ledger.generation": str(int(state["generation"]) + 1),
                f"{_ANNOTATION}.ledger.sha256": digest,
            },
        )

    def _remote_files(self, version: Version) -> Callable[[str, Path], None]:
        digests = {**version.manifest["files"], "manifest.json": version.digest}
        return lambda rel, dest: self.download_blob(digests[rel], dest)

    def _verify_remote(self, version: Version) -> None:
        """The image manifest in the registry, by digest."""
        digest = self._reference(version)
        body, _, _ = self.manifest(digest)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise DeployError(
                f"the image manifest of {version.label} in {self.location} does not match its "
                f"digest {digest[:19]}...: refusing to deploy it"
            )

    def smoke(self, version: Version, stage: str) -> CheckResult:
        """Run the pushed image (by digest) as a container and smoke-test it."""
        from pytest_mlops.deploy.smoke import smoke_test

        with tempfile.TemporaryDirectory(prefix="mlops-smoke-") as tmp:
            bundle = self.checkout(version, Path(tmp) / "bundle")
            with self.run_container(version) as url:
                return smoke_test(url, bundle, stage=stage)

    @contextmanager
    def run_container(self, version: Version, *, timeout: float = 60.0) -> Iterator[str]:
        """Start the version's image on a free port of the engine's host; yield its URL.

        The host is 127.0.0.1 for a local engine. The container is removed after.
        """
        from pytest_mlops.deploy.smoke import wait_ready

        client = self._docker()
        self._ensure_image(client, str(version.image))
        port = f"{self.settings.port}/tcp"
        host = _engine_host()
        container = client.containers.run(
            version.image,
            detach=True,
            ports={port: ("127.0.0.1" if host == "127.0.0.1" else "0.0.0.0", None)},  # noqa: S104 - only for a remote daemon
            environment={"MLOPS_SERVE_VERSION": str(version.version)},
            labels={"io.pytest-mlops.smoke": version.digest},
        )
        try:
            url = self._published_url(container, port, timeout, host)
            try:
                wait_ready(url, timeout)
            except DeployError:
                logs = container.logs(tail=20).decode(errors="replace")
                raise DeployError(
                    f"the container of {version.label} did not get ready: {logs}"
                ) from None
            yield url
        finally:
            container.remove(force=True)

    def _ensure_image(self, client: Any, image: str) -> None:
        """Pull *image* (by digest) with the registry's credentials unless the engine has it."""
        import docker.errors

        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            repository, _, digest = image.partition("@")
            try:
                client.images.pull(repository, tag=digest, auth_config=self._docker_auth())
            except docker.errors.APIError as exc:
                raise DeployError(f"the Docker daemon could not pull {image}: {exc}") from None

    def _published_url(self, container: Any, port: str, timeout: float, host: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(port)
            if bindings:
                return f"http://{host}:{bindings[0]['HostPort']}"
            if container.status == "exited":
                logs = container.logs(tail=20).decode(errors="replace")
                raise DeployError(f"the serving container exited: {logs}")
            time.sleep(0.2)
        raise DeployError("the serving container published no port")


def _engine_host() -> str:
    """Where a published port of the container engine is reached.

    That is 127.0.0.1 for a local engine, the host of ``DOCKER_HOST=tcp://HOST:PORT`` for a
    remote one (a CI service).
    """
    parsed = urllib.parse.urlsplit(os.environ.get("DOCKER_HOST", ""))
    if parsed.scheme in ("tcp", "http", "https") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"
