"""Progress bars draw on a terminal only, and leave nothing behind."""

from __future__ import annotations

import io
import os

import pytest

from pytest_mlops._progress import Progress, progress, progress_enabled


@pytest.fixture
def tty():
    """The writing end of a real pseudo-terminal, and a reader of what reached it."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")

    def read() -> str:
        stream.flush()
        chunks = []
        os.set_blocking(master, False)
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()

    yield stream, read
    stream.close()
    os.close(master)


def test_draws_on_a_tty_and_clears_its_line(tty, monkeypatch):
    monkeypatch.delenv("PYTEST_MLOPS_PROGRESS", raising=False)
    stream, read = tty
    with Progress(total=4 * 1024**2, label="push", unit="B", stream=stream, interval=0) as bar:
        bar.update(1024**2)
        bar.set(3 * 1024**2)
    out = read()
    assert "push [######------------------]  25% 1.0 MiB/4.0 MiB" in out
    assert "push [##################------]  75% 3.0 MiB/4.0 MiB" in out
    assert out.endswith("\r\x1b[2K")  # the line is cleared on close


def test_silent_when_not_a_tty(monkeypatch):
    monkeypatch.delenv("PYTEST_MLOPS_PROGRESS", raising=False)
    stream = io.StringIO()
    assert list(progress(range(5), label="drift", stream=stream)) == [0, 1, 2, 3, 4]
    assert stream.getvalue() == ""


def test_environment_switch(tty, monkeypatch):
    stream, _read = tty
    monkeypatch.setenv("PYTEST_MLOPS_PROGRESS", "0")
    assert not progress_enabled(stream)
    monkeypatch.setenv("PYTEST_MLOPS_PROGRESS", "1")
    forced = io.StringIO()
    with Progress(None, "rows", unit="rows", stream=forced, interval=0) as bar:
        bar.update(1500)
    assert "rows 1,500 rows" in forced.getvalue()


def test_the_line_without_a_total_counts():
    bar = Progress(None, "export", stream=io.StringIO())
    bar.update(3)
    assert bar.line().startswith("export 3 ")
    assert not bar.enabled
