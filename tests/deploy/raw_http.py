"""Raw HTTP/1.1 over sockets for the serving tests: send bytes as a hostile client would, read
back every response and whether the server closed the connection."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Answer:
    """What came back on one connection: the responses in order, and whether it was closed."""

    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    closed: bool = False
    reset: bool = False

    @property
    def statuses(self) -> list[int]:
        return [status for status, _, _ in self.responses]


def _parse(
    data: bytes, head_only: Sequence[bool]
) -> tuple[list[tuple[int, dict[str, str], bytes]], bytes]:
    """Complete responses at the start of *data*, and what is left."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while (end := data.find(b"\r\n\r\n")) >= 0:
        lines = data[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        if status == 100:
            out.append((status, headers, b""))
            data = data[end + 4 :]
            continue
        no_body = status == 204 or (len(out) < len(head_only) and head_only[len(out)])
        length = 0 if no_body else int(headers.get("content-length", "0"))
        if len(data) < end + 4 + length:
            break
        out.append((status, headers, data[end + 4 : end + 4 + length]))
        data = data[end + 4 + length :]
    return out, data


class Client:
    """One connection to the server, with a deadline on every read."""

    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""
        self.answer = Answer()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int, head_only: Sequence[bool] = ()) -> Answer:
        """Read until *count* final responses came, or the server closed (or reset)."""
        while len([s for s in self.answer.statuses if s != 100]) < count and not self.answer.closed:
            self._recv()
        return self.answer

    def read_to_close(self, head_only: Sequence[bool] = ()) -> Answer:
        while not self.answer.closed:
            self._recv(head_only)
        return self.answer

    def closes_within(self, seconds: float) -> bool:
        """Whether the server closes this (idle) connection within *seconds*."""
        self.sock.settimeout(seconds)
        try:
            self._recv()
        except TimeoutError:
            return False
        return self.answer.closed

    def _recv(self, head_only: Sequence[bool] = ()) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk, self.answer.reset = b"", True
        if not chunk:
            self.answer.closed = True
        self.buffer += chunk
        done = len(self.answer.responses)
        parsed, self.buffer = _parse(self.buffer, list(head_only)[done:])
        self.answer.responses += parsed

    def close(self) -> None:
        self.sock.close()


def exchange(
    address: tuple[str, int], raw: bytes, *, expect: int, head_only: Sequence[bool] = ()
) -> Answer:
    """Send *raw* on a new connection; read *expect* responses, then see whether it closes."""
    client = Client(address)
    try:
        client.send(raw)
        while (
            len([s for s in client.answer.statuses if s != 100]) < expect
            and not client.answer.closed
        ):
            client._recv(head_only)
        if not client.answer.closed:
            client.closes_within(0.5)
        return client.answer
    finally:
        client.close()


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    address: tuple[str, int]
    url: str


@contextmanager
def serving_process(
    model: Path, name: str, *args: str, cwd: Path | None = None
) -> Iterator[RunningServer]:
    """``python -m pytest_mlops.deploy.serving`` in a child process; stopped by its PID."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_SERVE_")}
    command = [sys.executable, "-m", "pytest_mlops.deploy.serving", "--model", str(model)]
    command += ["--name", name, "--port", "0", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"on (http://([\d.]+):(\d+))", line)
        if match is None:
            process.kill()
            raise RuntimeError(
                f"the server did not start: {line}{process.communicate()[1][-2000:]}"
            )
        server = RunningServer(process, (match.group(2), int(match.group(3))), match.group(1))
        _wait_live(server.address)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _wait_live(address: tuple[str, int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if live(address):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server never answered /v2/health/live")


def live(address: tuple[str, int]) -> bool:
    """Whether GET /v2/health/live on a new connection answers 200."""
    raw = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    return exchange(address, raw, expect=1).statuses == [200]


def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    """A well-formed HTTP/1.1 request."""
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}{length}\r\n".encode() + body
