"""The embedded registry's database knows it exists.

It is created whole with a format marker, and checked before every use, so a lost or damaged
database is reported, never silently re-created.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from pytest_mlops.errors import DeployError

__all__ = ["check_database", "create_database"]

REGISTRY_FORMAT = "pytest-mlops-registry"
REGISTRY_VERSION = 1
_MARKER = (
    "CREATE TABLE registry_format (format TEXT NOT NULL, version INTEGER NOT NULL,"
    " created_at TEXT NOT NULL, created_by TEXT NOT NULL)"
)

Corrupt = Callable[[str], DeployError]


def _artifacts(blobs: Path) -> int:
    try:
        return sum(1 for p in blobs.iterdir() if not p.name.startswith("."))
    except OSError:
        return 0


def create_database(db: Path, blobs: Path, schema: str, corrupt: Corrupt) -> None:
    """Create *db* with *schema* and the marker, whole: built aside, then linked into place.

    Refused when *blobs* already holds artifacts: their versions, stages and audit log lived in
    a database that is gone, and an empty one would hand out their version numbers again.
    """
    count = _artifacts(blobs)
    if count:
        raise corrupt(f"is missing, but {count} artifact(s) are stored under {str(blobs)!r}")
    from pytest_mlops.deploy.bundle import utc_now, who

    fd, name = tempfile.mkstemp(prefix=".registry.db.", suffix=".tmp", dir=db.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
            conn.execute(_MARKER)
            conn.execute(
                "INSERT INTO registry_format VALUES (?, ?, ?, ?)",
                (REGISTRY_FORMAT, REGISTRY_VERSION, utc_now(), who()),
            )
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, db)
    finally:
        for path in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            path.unlink(missing_ok=True)


def check_database(db: Path, corrupt: Corrupt) -> None:
    """Check that *db* is a registry database of this format.

    One made before the marker is adopted: it has the registry's tables.
    """
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        raise corrupt("is missing") from None
    if size == 0:
        raise corrupt("is empty (0 bytes): its versions, stage pointers and audit log are gone")
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=60, isolation_level=None)
        ) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "registry_format" not in tables:
                _adopt(conn, tables, corrupt)
                return
            rows = conn.execute("SELECT format, version FROM registry_format").fetchall()
    except sqlite3.OperationalError as exc:
        raise DeployError(f"cannot open the registry database {str(db)!r}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise corrupt(f"is unreadable or corrupt ({exc})") from None
    if rows != [(REGISTRY_FORMAT, REGISTRY_VERSION)]:
        raise corrupt(
            f"has format marker {rows[:1]!r}; this pytest-mlops reads "
            f"{(REGISTRY_FORMAT, REGISTRY_VERSION)!r}"
        )


def _adopt(conn: sqlite3.Connection, tables: set[str], corrupt: Corrupt) -> None:
    """A database from before the marker: a registry if it has the registry's tables."""
    from pytest_mlops.deploy.bundle import utc_now, who

    if not {"versions", "stages", "events"} <= tables:
        what = (
            "holds no registry tables"
            if not tables
            else f"is not a registry (tables {sorted(tables)[:5]})"
        )
        raise corrupt(what)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_MARKER.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        if not conn.execute("SELECT 1 FROM registry_format").fetchone():
            conn.execute(
                "INSERT INTO registry_format VALUES (?, ?, ?, ?)",
                (REGISTRY_FORMAT, REGISTRY_VERSION, utc_now(), who()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
