"""Model registries: where bundle versions, stage pointers and the audit log live.

Every backend implements :class:`RegistryBackend`. The embedded default, :class:`LocalRegistry`,
needs no server: a directory holding a SQLite database (versions, stage pointers, smoke tests and
an append-only audit log) and content-addressed files (``blobs/sha256/<hex>``).

Crash safety: a version's files are written (to a temporary name, fsynced, renamed) and verified
before the row that makes them visible is committed; a stage pointer and its audit event change
in one SQLite transaction. A process killed at any point leaves every stage on a complete,
verified version and an audit log that agrees with the pointers. Writers take a file lock, so
concurrent promotions serialise.

:mod:`pytest_mlops.deploy.registries` opens the backend the deploy settings name and resolves
``registry:`` model references.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_mlops._files import file_sha256
from pytest_mlops.deploy.bundle import (
    MANIFEST,
    Bundle,
    canonical_json,
    utc_now,
    verify_bundle,
    who,
)
from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    from pytest_mlops.results import CheckResult

__all__ = [
    "STAGES",
    "Event",
    "LocalRegistry",
    "RegistryBackend",
    "SmokeRecord",
    "Version",
]

STAGES = ("staging", "production")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL, manifest TEXT NOT NULL,
    created_at TEXT NOT NULL, created_by TEXT NOT NULL, image TEXT, ref TEXT,
    PRIMARY KEY (name, version), UNIQUE (name, digest));
CREATE TABLE IF NOT EXISTS stages (
    name TEXT NOT NULL, stage TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (name, stage));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version INTEGER NOT NULL,
    stage TEXT NOT NULL, digest TEXT NOT NULL, action TEXT NOT NULL, previous_version INTEGER,
    who TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL, evidence TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS smoke (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version INTEGER NOT NULL,
    digest TEXT NOT NULL, stage TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


_MODIFIED = "does not match its digest: the artifact was modified or damaged; refusing it"


@dataclass(frozen=True)
class Version:
    """One pushed bundle."""

    name: str
    version: int
    digest: str
    manifest: Mapping[str, Any]
    created_at: str
    created_by: str
    image: str | None = None  # the serving image, on an OCI registry
    ref: str | None = None  # the version's name in a remote registry (an MLflow model version)

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["files"]["model.onnx"])

    @property
    def evidence(self) -> Mapping[str, Any]:
        return dict(self.manifest.get("lineage", {}).get("evidence", {}))

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class Event:
    """One entry of the audit log: a stage pointer moved."""

    seq: int
    name: str
    version: int
    stage: str
    digest: str
    action: str
    previous_version: int | None
    who: str
    at: str
    why: str
    evidence: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "digest": self.digest,
            "action": self.action,
            "previous_version": self.previous_version,
            "who": self.who,
            "at": self.at,
            "why": self.why,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class SmokeRecord:
    """A recorded smoke test of a version at a stage."""

    version: int
    digest: str
    stage: str
    status: str
    message: str
    at: str


class RegistryBackend(Protocol):
    """What promotion, rollback, history and serving need of a registry."""

    location: str

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def push(self, bundle: Bundle) -> Version: ...

    def versions(self, name: str) -> list[Version]: ...

    def get(self, name: str, version: int) -> Version: ...

    def stage(self, name: str, stage: str) -> Version | None: ...

    def set_stage(
        self,
        name: str,
        stage: str,
        version: int,
        *,
        action: str,
        why: str,
        evidence: Mapping[str, Any],
    ) -> Event: ...

    def record_smoke(self, version: Version, stage: str, result: CheckResult) -> None: ...

    def smoke_records(self, name: str, version: int) -> list[SmokeRecord]: ...

    def history(self, name: str) -> list[Event]: ...

    def verify(self, version: Version) -> None: ...

    def checkout(self, version: Version, dest: Path) -> Bundle: ...

    def model_bytes(self, version: Version) -> bytes: ...

    def smoke(self, version: Version, stage: str) -> CheckResult: ...


class LocalRegistry:
    """The embedded registry: SQLite + content-addressed files under one directory.

    The database is created whole (under a temporary name, then linked into place) with a
    format marker; from then on it must be there. A database that is missing while artifacts
    exist, empty, corrupt or without the marker is an error naming the path and how to restore
    it (*restore* says where another copy lives, e.g. a remote ledger's), never re-created.
    """

    def __init__(self, root: str | os.PathLike[str], *, restore: str | None = None) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.restore = restore or "restore it from a backup of the registry directory"
        self._depth = 0
        self._lock_file: Any = None
        self._ready = False

    # --- plumbing ---

    @property
    def _db_path(self) -> Path:
        return self.root / "registry.db"

    def _init(self) -> None:
        if self._ready:
            return
        from pytest_mlops.deploy.registry_file import check_database, create_database

        blobs = self.root / "blobs" / "sha256"
        try:
            blobs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeployError(f"cannot create the registry at {self.location!r}: {exc}") from None
        if not self._db_path.exists():
            create_database(self._db_path, blobs, _SCHEMA, self._corrupt)
        check_database(self._db_path, self._corrupt)
        with self._db() as db:
            db.executescript(_SCHEMA)
            columns = [row[1] for row in db.execute("PRAGMA table_info(versions)")]
            if "ref" not in columns:  # a registry made before remote references were kept
                with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                    db.execute("ALTER TABLE versions ADD COLUMN ref TEXT")
        self._ready = True

    def _corrupt(self, what: str) -> DeployError:
        """The error for a database that cannot be trusted: *what* is wrong, how to restore it."""
        return DeployError(
            f"the registry database {str(self._db_path)!r} {what}; nothing was changed: "
            f"{self.restore} (the artifacts under {str(self.root / 'blobs')!r} are "
            "content-addressed and intact)"
        )

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        path = self._db_path
        try:
            db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.OperationalError as exc:  # locked, unreachable
            raise DeployError(f"cannot open the registry database {str(path)!r}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"is unreadable or corrupt ({exc})") from None
        try:
            yield db
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"is unreadable or corrupt ({exc})") from None
        finally:
            db.close()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive, re-entrant within this object: writers (push, promote) serialise."""
        self._init()
        if self._depth == 0:
            self._lock_file = (self.root / "lock").open("a+")
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def blob_path(self, digest: str) -> Path:
        """Where the content-addressed file with *digest* (``sha256:<hex>``) lives (it may not exist).

        Raises DeployError for a malformed digest.
        """
        algo, _, hexdigest = digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64:
            raise DeployError(f"registry {self.location!r}: malformed digest {digest!r}")
        return self.root / "blobs" / "sha256" / hexdigest

    def put_blob(self, source: Path, digest: str) -> None:
        """Store *source* as the blob *digest*: written to a temporary name, fsynced, verified, renamed.

        A blob already present with that content is kept. Raises DeployError when *source* does
        not hash to *digest* (it changed while it was copied).
        """
        dest = self.blob_path(digest)
        if dest.is_file() and file_sha256(dest) == digest:
            return
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            if file_sha256(Path(tmp)) != digest:
                raise DeployError(f"{str(source)!r} changed while it was pushed: refusing it")
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(dest.parent)

    def _read_blob(self, digest: str, what: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._bad_blob(digest, what, "is missing") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise self._bad_blob(digest, what, _MODIFIED)
        return data

    def _copy_blob(self, digest: str, target: Path, what: str) -> None:
        """Copy a blob to *target* in chunks (a large model never sits in memory), verified."""
        hasher = hashlib.sha256()
        try:
            source = self.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise self._bad_blob(digest, what, "is missing") from None
        with source, target.open("wb") as out:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                hasher.update(chunk)
                out.write(chunk)
        if "sha256:" + hasher.hexdigest() != digest:
            raise self._bad_blob(digest, what, _MODIFIED)

    def _bad_blob(self, digest: str, what: str, how: str) -> DeployError:
        return DeployError(
            f"registry {self.location!r} is corrupt: {what} (blob {digest[:19]}...) {how}"
        )

    # --- versions ---

    def push(self, bundle: Bundle) -> Version:
        """Store a verified bundle; pushing the same digest again returns the existing version."""
        verify_bundle(bundle.path, bundle.digest)
        with self.lock():
            existing = self.by_digest(bundle.name, bundle.digest)
            if existing is not None:
                return existing
            for rel, digest in bundle.manifest["files"].items():
                self.put_blob(bundle.path / rel, digest)
            self.put_blob(bundle.path / MANIFEST, bundle.digest)
            return self.insert_version(bundle, image=None)

    def insert_version(
        self, bundle: Bundle, *, image: str | None, ref: str | None = None
    ) -> Version:
        """Make a version of *bundle* visible: the next number, committed after its blobs are stored.

        Callers store the bundle's files with :meth:`put_blob` first; *image* and *ref* are where
        a backend pushed the serving image and the bundle (an OCI digest, an MLflow run).
        """
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?", (bundle.name,)
            ).fetchone()
            version = Version(
                name=bundle.name,
                version=int(row[0]),
                digest=bundle.digest,
                manifest=bundle.manifest,
                created_at=utc_now(),
                created_by=who(),
                image=image,
                ref=ref,
            )
            db.execute(
                "INSERT INTO versions (name, version, digest, manifest, created_at, created_by,"
                " image, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version.name,
                    version.version,
                    version.digest,
                    canonical_json(bundle.manifest).decode(),
                    version.created_at,
                    version.created_by,
                    image,
                    ref,
                ),
            )
            db.execute("COMMIT")
        return version

    def by_digest(self, name: str, digest: str) -> Version | None:
        """The version of *name* whose bundle has manifest digest *digest*, if one was pushed."""
        self._init()
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM versions WHERE name = ? AND digest = ?", (name, digest)
            ).fetchone()
        return self._version(row) if row else None

    def _version(self, row: tuple[Any, ...]) -> Version:
        name, version, digest, manifest, created_at, created_by, image, ref = row
        try:
            parsed = json.loads(manifest)
            parsed["files"]["model.onnx"]
        except (ValueError, TypeError, KeyError):
            raise DeployError(
                f"registry {self.location!r} is corrupt: the manifest of {name} v{version} is "
                "unreadable; push the bundle again or roll back to another version"
            ) from None
        return Version(name, int(version), digest, parsed, created_at, created_by, image, ref)

    def versions(self, name: str) -> list[Version]:
        self._init()
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM versions WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [self._version(r) for r in rows]

    def names(self) -> list[str]:
        self._init()
        with self._db() as db:
            rows = db.execute("SELECT DISTINCT name FROM versions ORDER BY name").fetchall()
        return [str(r[0]) for r in rows]

    def get(self, name: str, version: int) -> Version:
        self._init()
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            known = [v.version for v in self.versions(name)]
            raise DeployError(
                f"registry {self.location!r} has no version {version} of {name!r}"
                + (f"; it has versions {known}" if known else f"; nothing of {name!r} was pushed")
            )
        return self._version(row)

    # --- stages and the audit log ---

    def stage(self, name: str, stage: str) -> Version | None:
        self._init()
        with self._db() as db:
            row = db.execute(
                "SELECT version FROM stages WHERE name = ? AND stage = ?", (name, stage)
            ).fetchone()
        return self.get(name, int(row[0])) if row else None

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
        """Point *stage* at *version* and append the audit event, atomically, after verifying it."""
        with self.lock():
            target = self.get(name, version)
            self.verify(target)
            return self.commit_stage(target, stage, action=action, why=why, evidence=evidence)

    def commit_stage(
        self, target: Version, stage: str, *, action: str, why: str, evidence: Mapping[str, Any]
    ) -> Event:
        """Point *stage* at *target* and append its audit event, in one transaction.

        The caller has checked the evidence; a ledgered backend calls this after moving its own
        pointer. Returns the event written.
        """
        at, actor = utc_now(), who()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT version FROM stages WHERE name = ? AND stage = ?", (target.name, stage)
            ).fetchone()
            previous = int(row[0]) if row else None
            db.execute(
                "INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?)",
                (target.name, stage, target.version, target.digest, at),
            )
            cursor = db.execute(
                "INSERT INTO events (name, version, stage, digest, action, previous_version, who,"
                " at, why, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    target.name,
                    target.version,
                    stage,
                    target.digest,
                    action,
                    previous,
                    actor,
                    at,
                    why,
                    json.dumps(dict(evidence), sort_keys=True),
                ),
            )
            seq = int(cursor.lastrowid or 0)
            db.execute("COMMIT")
        return Event(
            seq,
            target.name,
            target.version,
            stage,
            target.digest,
            action,
            previous,
            actor,
            at,
            why,
            dict(evidence),
        )

    def history(self, name: str) -> list[Event]:
        self._init()
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM events WHERE name = ? ORDER BY seq", (name,)
            ).fetchall()
        events = []
        for row in rows:
            try:
                evidence = json.loads(row[10])
            except ValueError:
                evidence = {"unreadable": row[10][:200]}
            seq, name_, version, stage, digest, action, previous, actor, at, why = row[:10]
            events.append(
                Event(
                    int(seq),
                    name_,
                    int(version),
                    stage,
                    digest,
                    action,
                    None if previous is None else int(previous),
                    actor,
                    at,
                    why,
                    evidence,
                )
            )
        return events

    def record_smoke(self, version: Version, stage: str, result: CheckResult) -> None:
        self._init()
        with self._db() as db:
            db.execute(
                "INSERT INTO smoke (name, version, digest, stage, status, message, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    version.name,
                    version.version,
                    version.digest,
                    stage,
                    result.status,
                    result.message,
                    utc_now(),
                ),
            )

    def smoke_records(self, name: str, version: int) -> list[SmokeRecord]:
        self._init()
        with self._db() as db:
            rows = db.execute(
                "SELECT version, digest, stage, status, message, at FROM smoke"
                " WHERE name = ? AND version = ? ORDER BY seq",
                (name, version),
            ).fetchall()
        return [SmokeRecord(int(r[0]), *r[1:]) for r in rows]

    # --- artifacts ---

    def verify(self, version: Version) -> None:
        """Re-hash the manifest and every file of *version*; a DeployError names the bad one."""
        manifest = self._read_blob(version.digest, f"the manifest of {version.label}")
        if json.loads(manifest) != dict(version.manifest):
            raise DeployError(
                f"registry {self.location!r} is corrupt: the recorded manifest of "
                f"{version.label} differs from its stored blob"
            )
        for rel, digest in version.manifest["files"].items():
            path = self.blob_path(digest)
            if not path.is_file():
                raise DeployError(
                    f"registry {self.location!r} is corrupt: {rel!r} of {version.label} "
                    f"(blob {digest[:19]}...) is missing"
                )
            if file_sha256(path) != digest:
                raise DeployError(
                    f"registry {self.location!r} is corrupt: {rel!r} of {version.label} does not "
                    f"match its digest {digest[:19]}...: the artifact was modified or damaged; "
                    "refusing to deploy it"
                )

    def checkout(self, version: Version, dest: Path) -> Bundle:
        """Copy *version* out as a bundle directory, verified byte for byte."""
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for rel, digest in version.manifest["files"].items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_blob(digest, target, f"{rel!r} of {version.label}")
        (dest / MANIFEST).write_bytes(
            self._read_blob(version.digest, f"the manifest of {version.label}")
        )
        return verify_bundle(dest, version.digest)

    def model_bytes(self, version: Version) -> bytes:
        """The ONNX model of *version*, read once and verified against its digest."""
        return self._read_blob(version.model_sha256, f"model.onnx of {version.label}")

    def smoke(self, version: Version, stage: str) -> CheckResult:
        """Serve a verified checkout of *version* in a child process and smoke-test it."""
        from pytest_mlops.deploy.smoke import smoke_test_in_process

        with tempfile.TemporaryDirectory(prefix="mlops-smoke-") as tmp:
            bundle = self.checkout(version, Path(tmp) / "bundle")
            return smoke_test_in_process(bundle, version=str(version.version), stage=stage)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
