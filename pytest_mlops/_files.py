"""Atomic outputs: every file or directory pytest-mlops writes appears whole or not at all.

Each writer builds its output under a temporary name in the destination's own directory (so the
final rename stays on one file system) and renames it into place only once it is complete. A
failure at any point removes the temporary and leaves the destination as it was. A destination
that cannot be written (read-only, not a directory, disk full) is an :class:`OutputError` that
names the path and the reason, which the command line turns into exit status 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pytest_mlops.errors import OutputError

__all__ = [
    "atomic_dir",
    "atomic_file",
    "content_digest",
    "file_sha256",
    "probe_writable",
    "write_atomic",
]


def file_sha256(path: Path) -> str:
    """``"sha256:<hex>"`` of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def content_digest(path: Path) -> str | None:
    """The sha256 of a file, or of a directory's files (names and contents); ``None`` if neither.

    A directory's digest covers each regular file below it, in sorted order, as its relative
    path and its own sha256: renaming, adding, removing or changing a file changes it.
    """
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return "sha256:" + digest.hexdigest()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def output_error(path: Path, exc: OSError, what: str) -> OutputError:
    """The error for *what* (``"the report"``...) that cannot be written at *path*."""
    return OutputError(f"cannot write {what} {str(path)!r}: {_reason(exc)}")


def _parent(path: Path, what: str, *, directory: bool = False) -> tuple[Path, list[Path]]:
    """The directory *path* goes in, made if needed; and the directories that made.

    The directories made are returned so that a failure can take them away again.
    """
    parent = path.parent
    missing: list[Path] = []
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(
                    f"cannot write {what} {str(path)!r}: {str(ancestor)!r} is a file, not a "
                    "directory"
                )
            break
        missing.append(ancestor)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _undo(missing)
        raise output_error(path, exc, what) from None
    if path.exists() and path.is_dir() != directory:
        kind = "a directory" if path.is_dir() else "a file"
        raise OutputError(f"cannot write {what} {str(path)!r}: it is {kind}")
    return parent, missing


def _mode_for(target: Path) -> int:
    """The permissions *target* keeps, or those a plain ``open()`` would give a new file."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _current_umask() -> int:
    mask = os.umask(0o022)  # read once, at import, and set back at once
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _undo(created: list[Path]) -> None:
    """Remove directories made for an output that was not written.

    Deepest first, and only if still empty.
    """
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, what: str = "the file") -> Iterator[Path]:
    """Yield a temporary path next to *path*; rename it onto *path* when the block succeeds.

    The temporary is created before the block runs, so an unwritable destination is reported
    before any work is done. On any exception the temporary is removed and *path* is untouched.
    """
    target = Path(path)
    parent, created = _parent(target, what)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        _undo(created)
        raise output_error(target, exc, what) from None
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _mode_for(target))  # mkstemp's 0600 is for the temporary, not the output
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _undo(created)
        raise output_error(target, exc, what) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        _undo(created)
        raise


def probe_writable(path: str | os.PathLike[str], *, what: str = "the file") -> None:
    """Fail now, with an OutputError, where a file could not be written at *path* later."""
    target = Path(path)
    parent, created = _parent(target, what)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise output_error(target, exc, what) from None
    finally:
        _undo(created)  # the probe leaves nothing behind, not even a directory


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, *, what: str = "the file", sync: bool = True
) -> Path:
    """Write *data* (text is UTF-8) to *path* through a temporary file and a rename."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(target, what=what) as tmp, tmp.open("wb") as handle:
        handle.write(raw)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, what: str = "the directory") -> Iterator[Path]:
    """Yield an empty temporary directory next to *path*; swap it in when the block succeeds.

    An existing *path* is moved aside, the new directory renamed into place, then the old one
    removed: a reader sees the old directory or the new one, never a half-written one. The
    caller decides beforehand whether an existing *path* may be replaced.
    """
    target = Path(path)
    parent, created = _parent(target, what, directory=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        _undo(created)
        raise output_error(target, exc, what) from None
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp's 0700 is for the temporary, not the output
        yield tmp
        _swap(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _undo(created)
        raise output_error(target, exc, what) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _undo(created)
        raise


def _swap(new: Path, target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
