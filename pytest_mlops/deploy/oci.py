"""The OCI registry backend: serving images pushed by digest, stage tags re-pointed by digest.

``registry = "oci://HOST:PORT/REPOSITORY"`` in the deploy settings. A push builds the bundle's
image (through the Docker SDK), pushes it, and records the version with its image digest; a stage
move re-tags that exact manifest as ``staging`` or ``production`` through the distribution v2 API
(``GET`` the manifest by digest, ``PUT`` it under the stage tag), so the tag can only ever name an
image that was pushed and verified. The lineage travels in the image's labels. The audit log, the
smoke tests and a verified copy of each bundle live in the embedded ledger (a
:class:`~pytest_mlops.deploy.registry.LocalRegistry` under ``.mlops/registry/oci/...``).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.deploy.bundle import Bundle, verify_bundle
from pytest_mlops.deploy.registry import Event, LocalRegistry, SmokeRecord, Version
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


def parse_oci(location: str) -> tuple[str, str]:
    """``"oci://127.0.0.1:5000/team/credit"`` -> ``("127.0.0.1:5000", "team/credit")``."""
    match = re.fullmatch(r"oci://([^/]+)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)", location)
    if match is None:
        raise ConfigError(
            f"deploy registry {location!r}: expected oci://HOST[:PORT]/REPOSITORY "
            "(a lower-case repository path), e.g. oci://127.0.0.1:5000/credit-scoring"
        )
    return match.group(1), match.group(2)


class OciRegistry:
    """Images in an OCI (distribution v2) registry; versions and audit log in a local ledger."""

    def __init__(self, settings: DeploySettings) -> None:
        self.settings = settings
        self.host, self.repository = parse_oci(settings.registry)
        self.location = settings.registry
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.host}-{self.repository}".lower())
        self.ledger = LocalRegistry(settings.registry_dir / "oci" / slug)
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
        """The manifest bytes, media type and digest of a tag or digest."""
        path = f"/v2/{self.repository}/manifests/{urllib.parse.quote(reference, safe=':')}"
        status, headers, body = self._request("GET", path, headers={"Accept": _MANIFEST_TYPES})
        if status != 200:
            raise DeployError(
                f"the OCI registry {self.host} has no manifest {self.repository}:{reference} "
                f"(HTTP {status})"
            )
        return body, headers.get("content-type", ""), headers.get("docker-content-digest", "")

    def tag_digest(self, tag: str) -> str | None:
        """The manifest digest a tag points at, or ``None``."""
        path = f"/v2/{self.repository}/manifests/{tag}"
        status, headers, _ = self._request("HEAD", path, headers={"Accept": _MANIFEST_TYPES})
        return headers.get("docker-content-digest") if status == 200 else None

    def retag(self, digest: str, tag: str) -> None:
        """Point *tag* at the manifest *digest* (the same bytes, so the same digest)."""
        body, media_type, actual = self.manifest(digest)
        if actual and actual != digest:
            raise DeployError(
                f"the OCI registry returned {actual} for {digest}: refusing to tag it"
            )
        status, _, answer = self._request(
            "PUT",
            f"/v2/{self.repository}/manifests/{tag}",
            body=body,
            headers={"Content-Type": media_type},
        )
        if status not in (200, 201):
            raise DeployError(
                f"the OCI registry {self.host} refused to tag {digest[:19]}... as {tag!r}: "
                f"HTTP {status} {answer[:200]!r}"
            )

    # --- RegistryBackend ---

    def _docker(self) -> Any:
        if self._client is None:
            from pytest_mlops.deploy.image import docker_client

            self._client = docker_client()
        return self._client

    def lock(self) -> Any:
        return self.ledger.lock()

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
            for rel, file_digest in bundle.manifest["files"].items():
                self.ledger._put_blob(bundle.path / rel, file_digest)
            self.ledger._put_blob(bundle.path / "manifest.json", bundle.digest)
            return self.ledger._insert_version(bundle, image=f"{ref}@{digest}")

    def _push_image(self, client: Any, ref: str, tag: str) -> None:
        errors = [
            line.get("error") or line.get("errorDetail", {}).get("message")
            for line in client.images.push(ref, tag=tag, stream=True, decode=True)
            if isinstance(line, dict) and ("error" in line or "errorDetail" in line)
        ]
        if errors:
            raise DeployError(f"pushing {ref}:{tag} failed: {errors[0]}")

    def versions(self, name: str) -> list[Version]:
        return self.ledger.versions(name)

    def get(self, name: str, version: int) -> Version:
        return self.ledger.get(name, version)

    def stage(self, name: str, stage: str) -> Version | None:
        return self.ledger.stage(name, stage)

    def set_stage(
        self,
        name: str,
        stage: str,
        version: int,
        *,
        action: str,
        why: str,
        evidence: Mapping[str, Any],
    ) -> Event:
        """Verify, re-point the registry's stage tag by digest, then commit the audit event."""
        with self.lock():
            self.reconcile(name, stage)
            target = self.get(name, version)
            self.verify(target)
            self.retag(self._image_digest(target), stage)
            return self.ledger._commit_stage(
                target, stage, action=action, why=why, evidence={**evidence, "image": target.image}
            )

    def reconcile(self, name: str, stage: str) -> bool:
        """Point the stage tag back at the ledger's version if they disagree.

        A process killed between re-tagging and committing the audit event leaves the tag one
        move ahead of the log; the log is the record, so the tag follows it. True if it moved.
        """
        current = self.ledger.stage(name, stage)
        if current is None or not current.image:
            return False
        expected = self._image_digest(current)
        if self.tag_digest(stage) == expected:
            return False
        self.retag(expected, stage)
        return True

    def _image_digest(self, version: Version) -> str:
        if not version.image or "@" not in version.image:
            raise DeployError(f"{version.label} has no image in {self.location}: push it again")
        return version.image.rsplit("@", 1)[1]

    def verify(self, version: Version) -> None:
        """The bundle's bytes in the ledger, and the image manifest in the registry, by digest."""
        self.ledger.verify(version)
        digest = self._image_digest(version)
        body, _, _ = self.manifest(digest)

        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise DeployError(
                f"the image manifest of {version.label} in {self.location} does not match its "
                f"digest {digest[:19]}...: refusing to deploy it"
            )

    def record_smoke(self, version: Version, stage: str, result: CheckResult) -> None:
        self.ledger.record_smoke(version, stage, result)

    def smoke_records(self, name: str, version: int) -> list[SmokeRecord]:
        return self.ledger.smoke_records(name, version)

    def history(self, name: str) -> list[Event]:
        return self.ledger.history(name)

    def checkout(self, version: Version, dest: Path) -> Bundle:
        return self.ledger.checkout(version, dest)

    def model_bytes(self, version: Version) -> bytes:
        return self.ledger.model_bytes(version)

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
