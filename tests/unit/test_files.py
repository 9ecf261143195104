"""Atomic outputs: a file or directory appears whole or not at all; unwritable is named."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pytest_mlops._files import atomic_dir, atomic_file, write_atomic
from pytest_mlops.errors import OutputError


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "out.json", "old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:  # noqa: PT012 - fails inside
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["out.json"]


def test_a_failed_directory_leaves_the_old_one_and_no_temporary(tmp_path):
    out = tmp_path / "bundle"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:  # noqa: PT012 - fails inside
        (tmp / "b").write_text("2")
        raise RuntimeError("interrupted")
    assert _listing(tmp_path) == ["bundle", "bundle/a"]
    with atomic_dir(out) as tmp:
        (tmp / "c").write_text("3")
    assert _listing(tmp_path) == ["bundle", "bundle/c"]


@pytest.mark.parametrize(
    ("where", "words"),
    [
        (lambda d: d / "blocker" / "out.json", "is a file, not a directory"),
        (lambda d: d / "blocker" / "deeper" / "out.json", "is a file, not a directory"),
        (lambda d: d / "folder", "it is a directory"),
    ],
)
def test_an_unwritable_destination_names_the_path_and_the_reason(tmp_path, where, words):
    (tmp_path / "blocker").write_text("keep")
    (tmp_path / "folder").mkdir()
    before = _listing(tmp_path)
    target = where(tmp_path)
    with pytest.raises(OutputError, match=words) as caught:
        write_atomic(target, "x", what="the report")
    assert f"cannot write the report {str(target)!r}" in str(caught.value)
    assert _listing(tmp_path) == before
    assert (tmp_path / "blocker").read_text() == "keep"


def test_a_read_only_directory_is_named(unwritable_dir):
    target = unwritable_dir / "sub" / "out.json"
    with pytest.raises(
        OutputError, match=r"cannot write the report .*(Permission denied|not permitted)"
    ):
        write_atomic(target, "x", what="the report")
    with (
        pytest.raises(OutputError, match="cannot write the bundle"),
        atomic_dir(unwritable_dir / "bundle", what="the bundle"),
    ):
        pass


def test_directories_made_for_a_failed_output_are_taken_away(tmp_path):
    from pytest_mlops._files import probe_writable

    with pytest.raises(RuntimeError), atomic_file(tmp_path / "a" / "b" / "out.json"):
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "c" / "bundle"):
        raise RuntimeError("interrupted")
    probe_writable(tmp_path / "d" / "e" / "report.json")
    assert _listing(tmp_path) == []


def test_content_digests_follow_the_contents(tmp_path):
    from pytest_mlops._files import content_digest, file_sha256

    (tmp_path / "lake" / "day=1").mkdir(parents=True)
    part = tmp_path / "lake" / "day=1" / "part-0.parquet"
    part.write_bytes(b"rows")
    assert (
        content_digest(part) == file_sha256(part) == "sha256:" + hashlib.sha256(b"rows").hexdigest()
    )
    assert content_digest(tmp_path / "missing.csv") is None
    lake = content_digest(tmp_path / "lake")
    assert lake is not None
    assert lake != content_digest(part)
    part.rename(part.with_name("part-1.parquet"))  # a rename is a change
    renamed = content_digest(tmp_path / "lake")
    assert renamed != lake
    (tmp_path / "lake" / "day=1" / "part-1.parquet").write_bytes(b"rowz")
    assert content_digest(tmp_path / "lake") not in (lake, renamed)


def test_outputs_get_the_permissions_of_a_plain_file(tmp_path):
    fresh = write_atomic(tmp_path / "report.json", "{}")
    mask = os.umask(0o022)
    os.umask(mask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    kept = tmp_path / "shared.json"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert kept.stat().st_mode & 0o777 == 0o640
    with atomic_dir(tmp_path / "bundle") as folder:
        (folder / "model.onnx").write_bytes(b"")
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o777 & ~mask
