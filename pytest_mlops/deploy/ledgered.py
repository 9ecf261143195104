"""Registries whose stage pointers live in a remote system, with the record kept in a ledger.

The OCI and MLflow backends share this shape: the remote system holds what gets deployed (an
image, a model version) and the ``staging``/``production`` pointers (tags, aliases) that
deployments read; a local ledger (a :class:`~pytest_mlops.deploy.registry.LocalRegistry`) holds the
versions, a verified copy of each bundle, the smoke tests and the audit log.

A stage move verifies the version (the ledger's bytes and the remote copy), moves the remote
pointer, then commits the audit event. A process killed between the two leaves the pointer one
move ahead of the log; the log is the record, so the next move (or :meth:`reconcile`) first puts
the pointer back where the log says.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.deploy.registry import Event, LocalRegistry, SmokeRecord, Version

if TYPE_CHECKING:
    from pytest_mlops.deploy.bundle import Bundle
    from pytest_mlops.deploy.settings import DeploySettings
    from pytest_mlops.results import CheckResult

__all__ = ["LedgeredRegistry"]


class LedgeredRegistry:
    """The ledger half of a remote backend; subclasses say how to read and move a pointer."""

    location: str

    def __init__(self, settings: DeploySettings, kind: str, remote: str) -> None:
        self.settings = settings
        slug = re.sub(r"[^a-z0-9]+", "-", remote.lower())
        self.ledger = LocalRegistry(settings.registry_dir / kind / slug)

    # --- what a backend provides ---

    def _pointed(self, name: str, stage: str) -> str | None:
        """The remote reference the stage pointer names now (``None``: it names nothing)."""
        raise NotImplementedError

    def _reference(self, version: Version) -> str:
        """The remote reference of *version* (an image digest, a model version number)."""
        raise NotImplementedError

    def _point(self, name: str, stage: str, version: Version) -> None:
        """Move the remote stage pointer to *version*."""
        raise NotImplementedError

    def _verify_remote(self, version: Version) -> None:
        """Check the remote copy of *version* against its digests (DeployError if it differs)."""
        raise NotImplementedError

    def _evidence(self, version: Version) -> dict[str, Any]:
        """What the audit event records of the remote copy."""
        raise NotImplementedError

    # --- RegistryBackend ---

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return self.ledger.lock()

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
        """Verify, move the remote pointer, then commit the audit event."""
        with self.lock():
            self.reconcile(name, stage)
            target = self.get(name, version)
            self.verify(target)
            self._point(name, stage, target)
            return self.ledger._commit_stage(
                target,
                stage,
                action=action,
                why=why,
                evidence={**evidence, **self._evidence(target)},
            )

    def reconcile(self, name: str, stage: str) -> bool:
        """Point the remote stage pointer back at the ledger's version if they disagree.

        True if it moved (a process was killed between moving it and committing the event).
        """
        current = self.ledger.stage(name, stage)
        if current is None:
            return False
        if self._pointed(name, stage) == self._reference(current):
            return False
        self._point(name, stage, current)
        return True

    def verify(self, version: Version) -> None:
        """The bundle's bytes in the ledger, and the remote copy, against their digests."""
        self.ledger.verify(version)
        self._verify_remote(version)

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

    def _keep(self, bundle: Bundle, *, image: str | None = None, ref: str | None = None) -> Version:
        """Copy the bundle's files into the ledger and record the version (after the remote push)."""
        for rel, file_digest in bundle.manifest["files"].items():
            self.ledger._put_blob(bundle.path / rel, file_digest)
        self.ledger._put_blob(bundle.path / "manifest.json", bundle.digest)
        return self.ledger._insert_version(bundle, image=image, ref=ref)
