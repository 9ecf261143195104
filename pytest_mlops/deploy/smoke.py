"""The smoke test: a running server answers health checks and reproduces the expected predictions."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from pytest_mlops.deploy.bundle import Bundle
from pytest_mlops.deploy.client import compare_outputs, http_call
from pytest_mlops.errors import DeployError
from pytest_mlops.results import CheckResult

__all__ = ["serve_in_process", "smoke_test", "wait_ready"]


def wait_ready(base_url: str, timeout: float = 30.0) -> None:
    """Poll ``/v2/health/ready`` until it answers 200; a DeployError after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            result = http_call(base_url + "/v2/health/ready", timeout=2.0)
            if result.status == 200:
                return
            last = f"HTTP {result.status}"
        except DeployError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise DeployError(f"the server at {base_url} was not ready within {timeout:g} s ({last})")


def smoke_test(base_url: str, bundle: Bundle, *, stage: str = "staging") -> CheckResult:
    """Check health, metadata and predictions of a running server against the bundle's smoke set.

    Returns a ``deploy`` CheckResult named ``smoke``: passed when liveness, readiness and model
    metadata answer 200 and the predictions on the bundle's rows match those ONNX Runtime gave
    in-process when the bundle was made.
    """
    import json

    smoke = json.loads((bundle.path / "smoke.json").read_bytes())
    name = bundle.name
    problems: list[str] = []
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{name}"):
        status = http_call(base_url + path).status
        if status != 200:
            problems.append(f"GET {path} answered {status}")
    started = time.perf_counter()
    response = http_call(base_url + f"/v2/models/{name}/infer", "POST", smoke["request"])
    seconds = time.perf_counter() - started
    rows = smoke["request"]["inputs"][0]["shape"][0]
    if response.status != 200:
        problems.append(
            f"POST /v2/models/{name}/infer answered {response.status}: {response.body[:200]!r}"
        )
    else:
        problems += compare_outputs(response.json().get("outputs", []), smoke["expected"])
    context = {"stage": stage, "rows": rows, "digest": bundle.digest, "url": base_url}
    if problems:
        message = f"smoke test of {name} at {stage} failed: " + "; ".join(problems)
    else:
        message = f"smoke test of {name} at {stage} passed: health ok, {rows} predictions match"
    return CheckResult(
        name="smoke",
        kind="deploy",
        status="failed" if problems else "passed",
        message=message,
        details="\n".join(problems),
        metrics={"rows": float(rows), "infer_seconds": seconds},
        context=context,
    )


@contextlib.contextmanager
def serve_in_process(
    bundle: Bundle,
    *,
    version: str = "1",
    host: str = "127.0.0.1",
    port: int = 0,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run the bundle's serving app in a child process; yield its base URL; stop it on exit."""
    root = bundle.path.resolve()
    # the serving package (python -m serving); bundles made before it carry serving.py
    server = [str(root / "serving.py")]
    if (root / "serving").is_dir():  # a child stopped here has nothing to drain
        server = ["-m", "serving", "--drain-seconds", "0"]
    command = [
        sys.executable,
        *server,
        "--model",
        str(root / "model.onnx"),
        "--name",
        bundle.name,
        "--model-version",
        version,
        "--host",
        host,
        "--port",
        str(port),
        *extra_args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_SERVE_")}
    process = subprocess.Popen(  # noqa: S603 - an argument list, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root
    )
    try:
        url = _announced_url(process, timeout)
        wait_ready(url, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _announced_url(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None  # noqa: S101 - a type the caller guarantees
        lines.put(process.stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if " on http://" not in line:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise DeployError(f"the serving app did not start: {(err or line).strip()[-500:]}")
    return line.rsplit(" on ", 1)[1].strip()


def smoke_test_in_process(bundle: Bundle, *, version: str, stage: str = "staging") -> CheckResult:
    """Serve *bundle* in a child process (the embedded registry's staging) and smoke-test it."""
    with serve_in_process(bundle, version=version) as url:
        return smoke_test(url, bundle, stage=stage)
