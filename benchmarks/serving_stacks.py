"""Which HTTP stack under the OIP v2 app: the same App, three ways, measured in the same run.

- ``httptools``: this tree's server: llhttp (httptools) under our own asyncio protocol, the
  app's responses written as they resolve (no task per request);
- ``uvicorn``: uvicorn with httptools and the asyncio loop, the app behind a thin ASGI adapter;
- ``granian``: granian (Rust, hyper) with one worker and the RSGI interface, the app behind a
  thin RSGI adapter.

Each serves the bare no-op, the JSON no-op and the tiny model (logistic regression, 1 row per
request, dynamic batching) to wrk; rounds are interleaved and each stack's figures are also
given relative to this tree's server in the same round. A stack that is not installed is
skipped (``pip install uvicorn granian`` to compare; neither is a dependency).

Run: ``.venv/bin/python benchmarks/serving_stacks.py [--rounds 3] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import ROOT, check, request_body, tiny_model, wrk

STACKS = ("httptools", "uvicorn", "granian")
PATHS = {"noop": "/v2/noop", "noop_json": "/v2/noop/json", "tiny": "/v2/models/tiny/infer"}


def _app() -> Any:
    from pytest_mlops.deploy.serving import ServingOptions
    from pytest_mlops.deploy.serving.app import App

    return App(ServingOptions(model=os.environ["STACK_MODEL"], name="tiny", threads=1))


async def _answer(app: Any, method: str, path: str, body: bytes) -> Any:
    from pytest_mlops.deploy.serving.app import Pending

    if app.batcher is None and app.runner is not None:
        app.start()  # on the loop that serves
    result = app.handle(method, path, body)
    if isinstance(result, Pending):
        future = asyncio.get_running_loop().create_future()
        result.then(future.set_result)
        result = await future
    return result


def asgi_app() -> Any:
    """The App behind ASGI (uvicorn)."""
    app = _app()

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, kind, payload = (await _answer(app, scope["method"], scope["path"], body))[:3]
        headers = [(b"content-type", kind.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return asgi


class RsgiApp:
    """The App behind RSGI (granian)."""

    def __init__(self) -> None:
        self.app = _app()

    async def __call__(self, scope: Any, protocol: Any) -> None:
        body = await protocol()
        status, kind, payload = (await _answer(self.app, scope.method, scope.path, body))[:3]
        protocol.response_bytes(status, [("content-type", kind)], payload)


def serve(stack: str, port: int) -> None:
    """Run one stack in this process (the child side of :class:`Running`)."""
    if stack == "uvicorn":
        import uvicorn

        uvicorn.run(asgi_app(), host="127.0.0.1", port=port, http="httptools", loop="asyncio",
                    log_level="warning", access_log=False)  # fmt: skip
    else:
        from granian import Granian

        Granian("serving_stacks:rsgi_factory", port=port, interface="rsgi", workers=1,
                runtime_threads=1, loop="asyncio", factory=True, log_enabled=False,
                working_dir=Path(__file__).parent).serve()  # fmt: skip


def rsgi_factory() -> RsgiApp:
    return RsgiApp()


class Running:
    """A server of one stack in a child process, on a free port."""

    def __init__(self, stack: str, model: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "STACK_MODEL": str(model)}
        if stack == "httptools":
            command = [sys.executable, "-m", "pytest_mlops.deploy.serving", "--model", str(model),
                       "--name", "tiny", "--threads", "1", "--port", str(self.port),
                       "--drain-seconds", "0"]  # fmt: skip
        else:
            command = [sys.executable, __file__, "--serve", stack, "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/v2/health/live", timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{self.url} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def measure(
    args: argparse.Namespace, stacks: list[str], model: Path, body: bytes
) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for stack in stacks:
            server = Running(stack, model)
            try:
                for key, path in PATHS.items():
                    check(server.url + path, body)
                    rate, _ = wrk(server.url + path, body, args.seconds, args.connections)
                    runs.setdefault(f"{stack}:{key}", []).append(rate)
            finally:
                server.stop()
    return runs


def report(runs: dict[str, list[float]], stacks: list[str]) -> None:
    med = {k: float(np.median(v)) for k, v in runs.items()}

    def vs(a: str, b: str) -> str:
        return f"{np.median([x / y for x, y in zip(runs[a], runs[b], strict=True)]):.0%}"

    print(
        f"{'stack':<10} {'no-op':>9} {'JSON no-op':>11} {'tiny model':>11}   tiny/JSON no-op   vs httptools (no-op, JSON, tiny)"
    )
    for s in stacks:
        rel = ", ".join(vs(f"{s}:{k}", f"httptools:{k}") for k in PATHS)
        print(f"{s:<10} {med[s + ':noop']:9.0f} {med[s + ':noop_json']:11.0f} {med[s + ':tiny']:11.0f}"
              f"   {vs(s + ':tiny', s + ':noop_json'):>15}   {rel}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", choices=STACKS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    stacks = [s for s in STACKS if s == "httptools" or importlib.util.find_spec(s) is not None]
    print(f"stacks: {', '.join(stacks)}; wrk, {args.connections} connections, {args.rounds} rounds"
          f" of {args.seconds:g} s; load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp) / "tiny.onnx")
        import onnxruntime as ort

        body = request_body(ort.InferenceSession(str(model)), np.ones((1, 4), np.float32))
        runs = measure(args, stacks, model, body)
    report(runs, stacks)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
