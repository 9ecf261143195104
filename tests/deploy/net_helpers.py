"""Network parts of the registry tests, all on 127.0.0.1: the TLS and authentication services
``scripts/services.sh`` runs, a forward proxy (HTTP CONNECT), a reverse proxy that injects
faults, and a registry of a test's own.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deploy_helpers import require_service

from pytest_mlops.deploy.client import http_call
from pytest_mlops.errors import DeployError

TLS_VARS = (
    "MLOPS_TEST_CA",
    "MLOPS_TEST_REGISTRY_TLS",
    "MLOPS_TEST_REGISTRY_TOKEN",
    "MLOPS_TEST_REGISTRY_USER",
    "MLOPS_TEST_REGISTRY_PASSWORD",
)


def tls_services() -> dict[str, str]:
    """The TLS and authentication services' variables (skip, or fail in CI, without them)."""
    missing = [v for v in TLS_VARS if not os.environ.get(v)]
    reason = (
        f"{', '.join(missing)} not set (run bash scripts/services.sh and source its env file)"
        if missing
        else None
    )
    require_service("TLS registry", reason)
    return {k: v for k, v in os.environ.items() if k.startswith("MLOPS_TEST_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run *handler* on a free 127.0.0.1 port; yield ``127.0.0.1:PORT``; stop it after."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- a forward proxy: HTTP CONNECT tunnels, counted ------------------------------------------


@dataclass
class ProxyLog:
    tunnels: list[str] = field(default_factory=list)


def connect_proxy(log: ProxyLog) -> type[BaseHTTPRequestHandler]:
    """A CONNECT proxy to 127.0.0.1 only; each tunnel's target lands in *log*."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 60

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            host, _, port = self.path.rpartition(":")
            if host not in ("127.0.0.1", "localhost"):
                self.send_error(403, "this test proxy reaches 127.0.0.1 only")
                return
            log.tunnels.append(self.path)
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
            self.send_response(200, "Connection established")
            self.end_headers()
            _relay(self.connection, upstream)
            upstream.close()
            self.close_connection = True

    return Handler


def _relay(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(peers), [], [], 30)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(1 << 16)
            if not data:
                return
            peers[sock].sendall(data)


# --- a reverse proxy that answers some requests with faults ---------------------------------


@dataclass
class Fault:
    """Answer the next *times* requests whose ``METHOD path`` contains *match* with *status*."""

    match: str
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaultLog:
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, int]] = field(default_factory=list)  # ("METHOD path", status)
    location: Callable[[str], str] | None = None  # rewrites Location headers


def fault_proxy(
    upstream: str, ca: str, log: FaultLog, *, scheme: str = "https"
) -> type[BaseHTTPRequestHandler]:
    """Plain HTTP in front of the registry *upstream* (``host:port``; over HTTPS, certificate
    from *ca*): what is in ``log.faults`` is answered here, the rest forwarded (with
    ``X-Forwarded-Proto: http``, so the registry's own Locations point back here)."""
    import ssl

    import httpx

    client = httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=60, trust_env=False)

    class Handler(BaseHTTPRequestHandler):
        timeout = 60
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            line = f"{self.command} {self.path}"
            for fault in log.faults:
                if fault.times > 0 and fault.match in line:
                    fault.times -= 1
                    log.seen.append((line, fault.status))
                    self._answer(fault.status, {"Content-Length": "0", **fault.headers}, b"")
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["X-Forwarded-Proto"] = "http"
            answer = client.request(
                self.command, f"{scheme}://{upstream}{self.path}", headers=headers, content=body
            )
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            if "location" in answer.headers and log.location is not None:
                out["location"] = log.location(answer.headers["location"])
            out["Content-Length"] = str(len(answer.content))
            log.seen.append((line, answer.status_code))
            self._answer(answer.status_code, out, b"" if self.command == "HEAD" else answer.content)

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
        "te", "trailer", "upgrade", "proxy-authorization", "accept-encoding"}  # fmt: skip


# --- a registry of a test's own (TLS + htpasswd), storage in a temporary directory -----------


@contextlib.contextmanager
def own_registry(root: Path, env: dict[str, str]) -> Iterator[str]:
    """Debian's docker-registry with the services' certificate and htpasswd, storing in *root*;
    yield ``127.0.0.1:PORT``; stopped by PID after."""
    port = free_port()
    config = root / "registry.yml"
    config.write_text(
        f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / "data"}
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {env["MLOPS_TEST_TLS_CERT"]}
    key: {env["MLOPS_TEST_TLS_KEY"]}
auth:
  htpasswd:
    realm: pytest-mlops
    path: {env["MLOPS_TEST_HTPASSWD"]}
"""
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(config)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"docker-registry did not start: {(root / 'registry.log').read_text()}"
                )
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- serving what a registry holds ---------------------------------------------------------


def assert_serves(project: Path, name: str, version: int) -> None:
    """``pytest-mlops serve`` in *project* serves production (*version* of model *name*)."""
    port, log = free_port(), project / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "pytest_mlops.cli", "serve", "--stage", "production",
             "--port", str(port)],
            cwd=project, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if http_call(url + "/v2/health/ready", timeout=2).status == 200:
                    break
            except DeployError:
                time.sleep(0.3)
        assert server.poll() is None, log.read_text(errors="replace")[-2000:]
        assert http_call(f"{url}/v2/models/{name}").json()["versions"] == [str(version)]
    finally:
        server.terminate()
        server.wait(30)
