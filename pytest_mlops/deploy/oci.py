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
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.deploy.bundle import Bundle, verify_bundle
from pytest_mlops.deploy.ledgered import LedgeredRegistry
from pytest_mlops.deploy.registry import Version
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


def parse_oci(location: str) -> tuple[str, str]:
    """``"oci://127.0.0.1:5000/team/credit"`` -> ``("127.0.0.1:5000", "team/credit")``."""
    match = re.fullmatch(r"oci://([^/]+)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)", location)
    if match is None:
        raise ConfigError(
            f"deploy registry {location!r}: expected oci://HOST[:PORT]/REPOSITORY "
            "(a lower-case repository path), e.g. oci://127.0.0.1:5000/credit-scoring"
        )
    return match.group(1), match.group(2)


class OciRegistry(LedgeredRegistry):
    """Images in an OCI (distribution v2) registry; versions and audit log in a ledger whose
    copy the registry holds."""

    def __init__(self, settings: DeploySettings) -> None:
        self.host, self.repository = parse_oci(settings.registry)
        self.location = settings.registry
        super().__init__(settings, "oci", f"{self.host}-{self.repository}")
        self._client: Any = None

    # --- the distribution v2 API ---

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, timeout=60)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except (OSError, http.client.HTTPException) as exc:
            raise DeployError(f"the OCI registry {self.host} does not answer: {exc}") from None
        finally:
            conn.close()

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """The manifest bytes, media type and digest of a tag or digest.

        An image manifest the registry cannot read back by digest (the filesystem storage of
        Debian's docker-registry leaves an empty link file when a client is killed in the middle
        of a manifest upload: HTTP 500 "invalid checksum digest format") is put back from the
        ledger's copy, which push keeps.
        """
        path = f"/v2/{self.repository}/manifests/{urllib.parse.quote(reference, safe=':')}"
        status, headers, body = self._request("GET", path, headers={"Accept": _MANIFEST_TYPES})
        if status >= 500 and reference.startswith("sha256:"):
            kept = self._kept_manifest(reference)
            if kept is not None:
                media_type = str(json.loads(kept).get("mediaType") or _OCI_MANIFEST)
                self._put_manifest(reference, kept, media_type)
                return kept, media_type, reference
        if status != 200:
            raise DeployError(
                f"the OCI registry {self.host} has no manifest {self.repository}:{reference} "
                f"(HTTP {status})"
            )
        return body, headers.get("content-type", ""), headers.get("docker-content-digest", "")

    def _put_manifest(self, reference: str, body: bytes, media_type: str) -> None:
        status, _, answer = self._request(
            "PUT",
            f"/v2/{self.repository}/manifests/{reference}",
            body=body,
            headers={"Content-Type": media_type},
        )
        if status not in (200, 201):
            raise DeployError(
                f"the OCI registry {self.host} refused the manifest {reference!r}: HTTP {status} "
                f"{answer[:200]!r}"
            )

    def _keep_manifest(self, digest: str) -> None:
        """A copy of the image manifest in the ledger, to put back if the registry loses it."""
        body, _, _ = self.manifest(digest)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise DeployError(f"the OCI registry returned another manifest for {digest[:19]}...")
        with tempfile.TemporaryDirectory(prefix="mlops-manifest-") as tmp:
            path = Path(tmp) / "manifest"
            path.write_bytes(body)
            self.ledger._put_blob(path, digest)

    def _kept_manifest(self, digest: str) -> bytes | None:
        path = self.ledger._blob(digest)
        if not path.is_file():
            return None
        body = path.read_bytes()
        return body if "sha256:" + hashlib.sha256(body).hexdigest() == digest else None

    def upload_blob(self, data: bytes) -> tuple[str, int]:
        """Store *data* as a blob (a monolithic upload, skipped if it is there); its digest and
        size."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs = f"/v2/{self.repository}/blobs"
        if self._request("HEAD", f"{blobs}/{digest}")[0] == 200:
            return digest, len(data)
        status, headers, answer = self._request("POST", f"{blobs}/uploads/")
        location = urllib.parse.urlsplit(headers.get("location", ""))
        if status != 202 or not location.path:
            raise DeployError(
                f"the OCI registry {self.host} refused a blob upload: HTTP {status} {answer[:200]!r}"
            )
        target = f"{location.path}?{location.query + '&' if location.query else ''}digest={digest}"
        status, _, answer = self._request(
            "PUT", target, body=data, headers={"Content-Type": "application/octet-stream"}
        )
        if status != 201:
            raise DeployError(
                f"the OCI registry {self.host} refused blob {digest[:19]}...: HTTP {status} "
                f"{answer[:200]!r}"
            )
        return digest, len(data)

    def fetch_blob(self, digest: str) -> bytes:
        """A blob's bytes, checked against its digest."""
        status, headers, body = self._request("GET", f"/v2/{self.repository}/blobs/{digest}")
        if status in (301, 302, 307, 308) and headers.get("location"):  # a storage redirect
            import urllib.request

            with urllib.request.urlopen(headers["location"], timeout=60) as response:
                status, body = response.status, response.read()
        if status != 200:
            raise DeployError(
                f"the OCI registry {self.host} has no blob {digest[:19]}... in "
                f"{self.repository} (HTTP {status})"
            )
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise DeployError(
                f"blob {digest[:19]}... from {self.location} does not match its digest"
            )
        return body

    def put_artifact(
        self,
        tag: str,
        config_type: str,
        layers: list[tuple[str, str, int, dict[str, str]]],
        annotations: Mapping[str, str],
    ) -> None:
        """Tag an OCI manifest of *layers* ``(media type, digest, size, annotations)`` (blobs
        already stored), with an empty config of *config_type* and *annotations*."""
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
            existing = self.ledger._by_digest(bundle.name, bundle.digest)
            if existing is not None and existing.image:
                return existing
            tag = f"bundle-{bundle.short}"
            ref = f"{self.host}/{self.repository}"
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
                (rel, self.upload_blob((bundle.path / rel).read_bytes()))
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
            return self._keep(bundle, image=f"{ref}@{digest}")

    def _push_image(self, client: Any, ref: str, tag: str) -> None:
        errors = [
            line.get("error") or line.get("errorDetail", {}).get("message")
            for line in client.images.push(ref, tag=tag, stream=True, decode=True)
            if isinstance(line, dict) and ("error" in line or "errorDetail" in line)
        ]
        if errors:
            raise DeployError(f"pushing {ref}:{tag} failed: {errors[0]}")

    # --- the stage pointers: tags ---

    def _pointed(self, name: str, stage: str) -> str | None:
        path = f"/v2/{self.repository}/manifests/{stage}"
        status, headers, _ = self._request("HEAD", path, headers={"Accept": _MANIFEST_TYPES})
        if status == 404:
            return None
        if status != 200:  # a tag the registry cannot read back: reconciling puts it again
            return f"unreadable (HTTP {status})"
        return headers.get("docker-content-digest")

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
        path = f"/v2/{self.repository}/manifests/{_LEDGER_TAG}"
        status, _, body = self._request("GET", path, headers={"Accept": _OCI_MANIFEST})
        if status == 404:
            return {"generation": 0}
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}")
            manifest = json.loads(body)
            notes = manifest["annotations"]
            state = {
                "generation": int(notes[f"{_ANNOTATION}.ledger.generation"]),
                "sha256": str(notes[f"{_ANNOTATION}.ledger.sha256"]),
                "blob": str(manifest["layers"][0]["digest"]),
            }
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise DeployError(
                f"the tag {_LEDGER_TAG!r} of {self.location} is not pytest-mlops's ledger record "
                f"({exc}): {body[:120]!r}"
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

    def _remote_files(self, version: Version) -> Callable[[str], bytes]:
        digests = {**version.manifest["files"], "manifest.json": version.digest}
        return lambda rel: self.fetch_blob(digests[rel])

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
        """Start the version's image on a free 127.0.0.1 port; yield its URL; remove it after."""
        from pytest_mlops.deploy.smoke import wait_ready

        client = self._docker()
        port = f"{self.settings.port}/tcp"
        container = client.containers.run(
            version.image,
            detach=True,
            ports={port: ("127.0.0.1", None)},
            environment={"MLOPS_SERVE_VERSION": str(version.version)},
            labels={"io.pytest-mlops.smoke": version.digest},
        )
        try:
            url = self._published_url(container, port, timeout)
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

    def _published_url(self, container: Any, port: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(port)
            if bindings:
                return f"http://127.0.0.1:{bindings[0]['HostPort']}"
            if container.status == "exited":
                logs = container.logs(tail=20).decode(errors="replace")
                raise DeployError(f"the serving container exited: {logs}")
            time.sleep(0.2)
        raise DeployError("the serving container published no port")
