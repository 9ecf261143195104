"""Registries whose stage pointers live in a remote system, with the record kept in a ledger.

The OCI and MLflow backends share this shape: the remote system holds what gets deployed (an
image, a model version) and the ``staging``/``production`` pointers (tags, aliases) that
deployments read; a ledger (a :class:`~pytest_mlops.deploy.registry.LocalRegistry`) holds the
versions, a verified copy of each bundle, the smoke tests and the audit log, and travels through
the remote system: a copy after every change, the newest one fetched before every use.

A stage move verifies the version (the ledger's bytes and the remote copy), moves the remote
pointer, then commits the audit event. A process killed between the two leaves the pointer one
move ahead of the log; the log is the record, so the next move (or :meth:`reconcile`) first puts
the pointer back where the log says.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops._files import write_atomic
from pytest_mlops.deploy.bundle import MANIFEST
from pytest_mlops.deploy.distribution import sha256_file
from pytest_mlops.deploy.registry import Event, LocalRegistry, SmokeRecord, Version
from pytest_mlops.errors import DeployError

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
        self.name = settings.name
        slug = re.sub(r"[^a-z0-9]+", "-", remote.lower())
        root = settings.registry_dir / kind / slug
        restore = (
            f"this is the local copy of the ledger that {getattr(self, 'location', remote)} keeps: "
            f"move {str(root)!r} aside and run the command again to fetch the remote copy"
        )
        self.ledger = LocalRegistry(root, restore=restore)
        self._depth = 0
        self._pushed: str | None = None  # sha256 of the ledger copy the remote holds

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

    def _ledger_state(self) -> dict[str, Any]:
        """The remote's record of its ledger copy: ``generation`` (0: none yet), ``sha256``..."""
        raise NotImplementedError

    def _read_ledger(self, state: dict[str, Any]) -> bytes:
        """The ledger copy *state* names."""
        raise NotImplementedError

    def _write_ledger(self, data: bytes, digest: str, state: dict[str, Any]) -> None:
        """Store a new copy and make the record name it, with generation + 1, in one step."""
        raise NotImplementedError

    def _remote_files(self, version: Version) -> Callable[[str, Path], None]:
        """Copies a file of *version* from the remote copy into a path, streamed.

        The file is named by its path in the bundle.
        """
        raise NotImplementedError

    # --- the ledger, kept in the remote too ---
    #
    # After every change (push, stage move, smoke test) a copy of the ledger database goes to the
    # remote, whose record of it (generation, sha256, where) moves in one step; before every use
    # a newer generation comes back, and a bundle file the local copy lacks is read from the
    # remote copy and checked against its digest. So a CI job on a fresh runner sees the
    # versions, stages and audit log the previous job left. Jobs that deploy the same model must
    # run one at a time (a CI concurrency group): of two writers at once, the second to finish
    # is refused and its change dropped.

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return self._synced()

    @contextlib.contextmanager
    def _synced(self) -> Iterator[None]:
        with self.ledger.lock():
            outermost = self._depth == 0
            self._depth += 1
            try:
                if outermost:
                    self._pull()
                yield
            finally:
                self._depth -= 1
            if outermost:
                self._push_ledger()

    def _generation_file(self) -> Path:
        return self.ledger.root / "remote-generation"

    def _local_generation(self) -> int:
        try:
            return int(self._generation_file().read_text())
        except (OSError, ValueError):
            return 0

    def _pull(self) -> None:
        """Replace the local ledger with the remote's copy when the remote's is newer."""
        state = self._ledger_state()
        if int(state["generation"]) <= self._local_generation():
            if self._pushed is None and int(state["generation"]) == self._local_generation():
                self._pushed = state.get("sha256")  # unchanged since: nothing to send
            return
        data = self._read_ledger(state)
        if hashlib.sha256(data).hexdigest() != state["sha256"]:
            raise DeployError(
                f"the ledger {self.location} holds for {self.name!r} does not match its recorded "
                "sha256: refusing to use it"
            )
        db = self.ledger.root / "registry.db"  # the callers hold the ledger's lock
        for stale in (db.with_name("registry.db-wal"), db.with_name("registry.db-shm")):
            stale.unlink(missing_ok=True)
        write_atomic(db, data, what="the ledger")
        write_atomic(self._generation_file(), str(state["generation"]), what="the ledger")
        self._pushed = str(state["sha256"])

    def _snapshot(self) -> bytes:
        """A consistent copy of the ledger database (SQLite's online backup)."""
        with tempfile.TemporaryDirectory(prefix="mlops-ledger-") as tmp:
            target = Path(tmp) / "registry.db"
            source = sqlite3.connect(self.ledger.root / "registry.db")
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
                source.close()
            return target.read_bytes()

    def _push_ledger(self) -> None:
        """Send the ledger when it changed; the remote's generation counts up."""
        data = self._snapshot()
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._pushed:
            return
        state = self._ledger_state()
        if int(state["generation"]) > self._local_generation():
            raise DeployError(
                f"the ledger of {self.name!r} in {self.location} moved on while this ran "
                "(another deployment at the same time?): the remote's ledger wins and this "
                "change is dropped (a stage pointer it moved goes back on the next move); run "
                "deployments of one model one at a time, then run this one again"
            )
        self._write_ledger(data, digest, state)
        write_atomic(self._generation_file(), str(int(state["generation"]) + 1), what="the ledger")
        self._pushed = digest

    def _read(self) -> None:
        """Before a read outside the lock: the remote's newer ledger, if any."""
        if self._depth == 0:
            with self.ledger.lock():
                self._pull()

    def _restore_blobs(self, version: Version) -> None:
        """Files of *version* the local ledger lacks (a fresh runner), from the remote, verified."""
        wanted = {**version.manifest["files"], MANIFEST: version.digest}
        missing = {rel: d for rel, d in wanted.items() if not self.ledger.blob_path(d).is_file()}
        if not missing:
            return
        copy = self._remote_files(version)
        with tempfile.TemporaryDirectory(prefix="mlops-restore-") as tmp:
            for rel, digest in missing.items():
                path = Path(tmp) / digest.replace(":", "-")
                copy(rel, path)
                if sha256_file(path)[0] != digest:
                    raise DeployError(
                        f"{rel!r} of {version.label} in {self.location} does not match its digest "
                        f"{digest[:19]}...: refusing to deploy it"
                    )
                self.ledger.put_blob(path, digest)

    # --- RegistryBackend ---

    def versions(self, name: str) -> list[Version]:
        self._read()
        return self.ledger.versions(name)

    def get(self, name: str, version: int) -> Version:
        self._read()
        return self.ledger.get(name, version)

    def stage(self, name: str, stage: str) -> Version | None:
        self._read()
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
            return self.ledger.commit_stage(
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
        self._restore_blobs(version)
        self.ledger.verify(version)
        self._verify_remote(version)

    def record_smoke(self, version: Version, stage: str, result: CheckResult) -> None:
        with self.lock():
            self.ledger.record_smoke(version, stage, result)

    def smoke_records(self, name: str, version: int) -> list[SmokeRecord]:
        self._read()
        return self.ledger.smoke_records(name, version)

    def history(self, name: str) -> list[Event]:
        self._read()
        return self.ledger.history(name)

    def checkout(self, version: Version, dest: Path) -> Bundle:
        self._restore_blobs(version)
        return self.ledger.checkout(version, dest)

    def model_bytes(self, version: Version) -> bytes:
        self._restore_blobs(version)
        return self.ledger.model_bytes(version)

    def _keep(self, bundle: Bundle, *, image: str | None = None, ref: str | None = None) -> Version:
        """Copy the bundle's files into the ledger and record the version (after the remote push)."""
        for rel, file_digest in bundle.manifest["files"].items():
            self.ledger.put_blob(bundle.path / rel, file_digest)
        self.ledger.put_blob(bundle.path / "manifest.json", bundle.digest)
        return self.ledger.insert_version(bundle, image=image, ref=ref)
