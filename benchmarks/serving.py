"""Serving throughput and latency: the OIP v2 server against its peers, measured in the same run.

1. Tiny model (logistic regression, 4 features, 1 row per JSON request) vs two no-op peers on the
   same stack (same process type, same HTTP layer, same request body):

   - bare no-op (``/v2/noop`` of a ``--noop`` server): answers a constant without using the body;
     the cost of the HTTP layer alone.
   - JSON no-op (``/v2/noop/json`` of the server that loaded the tiny model): decodes the body with
     the infer path's JSON library (orjson when installed) and encodes a response of the OIP shape
     and size of a real one (the model's outputs, placeholder values); no validation, no model.

   Goal: >= 60 % of the JSON no-op's requests/s; the ratio to the bare no-op is printed too.
2. Compute-bound model (an MLP, 32 -> 2048 -> 2048 -> 2048 -> 1, 8 rows per request) served with
   dynamic batching vs ONNX Runtime called in-process at the same rows per call: the mean rows
   per call the server made in that run (its ``mlops_batch_rows`` histogram), and 64 rows.
   Goal: >= 90 % of the in-process rows/s.
3. Latency: p99 at 50 % and 90 % of the peak requests/s measured above (wrk paced by a Lua
   ``delay()``, calibrated to the target rate; the rate reached is printed with each p99).

Every contender runs on this tree's server and, with ``--legacy PATH``, on another server script
that takes the same flags (an older version's ``serving.py``, say) in the same interleaved rounds.

Load comes from ``wrk`` (Debian's package) if installed, else from a Python asyncio client
(throughput only), on keep-alive connections to 127.0.0.1; every run is bounded by ``--seconds``.

Run: ``.venv/bin/python benchmarks/serving.py [--legacy OTHER/serving.py]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent


def tiny_model(path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    from pytest_mlops.export import export_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    export_onnx(model, X[:5], path)
    return path


def compute_model(path: Path, features: int = 32, width: int = 2048, depth: int = 3) -> Path:
    rng = np.random.default_rng(0)
    sizes = [features] + [width] * depth + [1]
    nodes, inits, current = [], [], "X"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        weight = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"W{i}"))
        nodes.append(helper.make_node("MatMul", [current, f"W{i}"], [f"H{i}"]))
        current = f"H{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [current], [f"R{i}"]))
            current = f"R{i}"
    nodes.append(helper.make_node("Identity", [current], ["score"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def request_body(session: ort.InferenceSession, X: np.ndarray) -> bytes:
    name = session.get_inputs()[0].name
    body = {
        "inputs": [
            {"name": name, "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}
        ]
    }
    return json.dumps(body).encode()


class Server:
    """A server process: this tree's package (``stack='new'``) or a legacy server script."""

    legacy: Path | None = None

    def __init__(self, stack: str, model: Path | None, name: str, *args: str) -> None:
        if stack == "new":
            command = [sys.executable, "-m", "pytest_mlops.deploy.serving", "--drain-seconds", "0"]
        else:
            command = [sys.executable, str(self.legacy)]
        command += ["--name", name, "--port", "0", *args]
        command += ["--model", str(model)] if model else ["--noop"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.url = line.rsplit(" on ", 1)[1].strip()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(30)


def check(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def batch_rows(base: str) -> float:
    """The server's mean rows per ONNX Runtime call so far (its mlops_batch_rows histogram)."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    total = float(re.search(r"mlops_batch_rows_sum\{[^}]*\} ([\d.e+]+)", text).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"mlops_batch_rows_count\{[^}]*\} (\d+)", text).group(1))  # type: ignore[union-attr]
    return total / max(count, 1.0)


# --- load generators ------------------------------------------------------------------------


def _wrk_script(body: bytes, interval_ms: float | None) -> str:
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        f"wrk.body = {json.dumps(body.decode())}",
    ]
    if interval_ms is not None:  # pace each connection: a random whole-ms delay of this mean
        low = int(interval_ms)
        lines += [
            f"local low, frac = {low}, {interval_ms - low:.4f}",
            "function delay() if math.random() < frac then return low + 1 end return low end",
        ]
    return "\n".join(lines) + "\n"


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(
    url: str, body: bytes, seconds: float, connections: int, interval_ms: float | None = None
) -> tuple[float, float]:
    """Requests/s and p99 latency (s) of one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(body, interval_ms))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    done = subprocess.run(
        [*command, "-s", script.name, url], capture_output=True, text=True, check=True
    )
    Path(script.name).unlink()
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise SystemExit(f"errors under load:\n{done.stdout}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"\s99%\s+([\d.]+\w+)", done.stdout).group(1))  # type: ignore[union-attr]
    return rate, p99


async def _client(host: str, port: int, raw: bytes, stop: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < stop:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"error under load: {head[:40]!r}")
        counts[0] += 1
    writer.close()


def python_load(url: str, body: bytes, seconds: float, connections: int) -> tuple[float, float]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    raw = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    counts = [0]

    async def run() -> None:
        stop = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(host, int(port), raw, stop, counts) for _ in range(connections))
        )

    started = time.perf_counter()
    asyncio.run(run())
    return counts[0] / (time.perf_counter() - started), float("nan")


def paced_p99(url: str, body: bytes, target: float, connections: int) -> tuple[float, float]:
    """p99 at about *target* requests/s: wrk paced per connection, calibrated twice."""
    interval = connections / target * 1000  # ms per request and connection, latency aside
    for _ in range(2):
        rate, _ = wrk(url, body, 2, connections, max(interval, 0.0))
        latency = connections / rate * 1000 - max(interval, 0.0)
        interval = connections / target * 1000 - latency
    return wrk(url, body, 4, connections, max(interval, 0.0))


def in_process_rows_per_s(path: Path, X: np.ndarray, seconds: float, threads: int) -> float:
    """ONNX Runtime in this process, with the server's session options."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: X}
    session.run(None, feed)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, feed)
        n += 1
    return n * X.shape[0] / (time.perf_counter() - started)


# --- the run --------------------------------------------------------------------------------


class Bench:
    """The contenders, their runs round by round, and the figures."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.load: Callable[..., tuple[float, float]] = wrk if args.client == "wrk" else python_load
        self.stacks = ["new", "old"] if args.legacy else ["new"]
        self.runs: dict[str, list[float]] = {}
        self.tiny = tiny_model(tmp / "tiny.onnx")
        self.mlp = compute_model(tmp / "mlp.onnx")
        self.tiny_body = request_body(
            ort.InferenceSession(str(self.tiny)), np.ones((1, 4), np.float32)
        )
        self.X = np.random.default_rng(1).normal(size=(args.rows, 32)).astype(np.float32)
        self.mlp_body = request_body(ort.InferenceSession(str(self.mlp)), self.X)

    def record(self, key: str, value: float) -> None:
        self.runs.setdefault(key, []).append(value)

    def contenders(self) -> dict[str, tuple[Path | None, str, bytes, tuple[str, ...]]]:
        tiny, body, infer = self.tiny, self.tiny_body, "/v2/models/tiny/infer"
        return {
            "noop": (None, "/v2/noop", body, ()),
            "noop_json": (tiny, "/v2/noop/json", body, ()),
            "tiny_batched": (tiny, infer, body, ()),
            "tiny_inline": (tiny, infer, body, ("--no-batching",)),
        }

    def round(self) -> None:
        args = self.args
        threads = ("--threads", str(args.threads))
        for stack, (key, (model, path, body, extra)) in itertools.product(
            self.stacks, self.contenders().items()
        ):
            with Server(stack, model, "tiny", *threads, *extra) as server:
                check(server.url + path, body)
                rate, _ = self.load(server.url + path, body, args.seconds, args.connections)
                self.record(f"{stack}:{key}", rate)
        self.record("mlp_in_process_x8", self.in_process(self.X.shape[0] * 8))
        for stack in self.stacks:
            with Server(stack, self.mlp, "mlp", *threads) as server:
                url = server.url + "/v2/models/mlp/infer"
                check(url, self.mlp_body)
                rate, _ = self.load(url, self.mlp_body, args.seconds, min(args.connections, 8))
                rows = batch_rows(server.url)
            self.record(f"{stack}:mlp_served", rate * args.rows)
            self.record(f"{stack}:mlp_rows_per_call", rows)
            self.record(f"{stack}:mlp_in_process_same", self.in_process(round(rows)))

    def in_process(self, rows: int) -> float:
        X = np.resize(self.X, (max(rows, 1), self.X.shape[1]))
        return in_process_rows_per_s(self.mlp, X, self.args.seconds, self.args.threads)

    def latencies(self) -> dict[str, float]:
        """p99 of the tiny model and the MLP at 50 % and 90 % of each stack's median peak."""
        out: dict[str, float] = {}
        threads = ("--threads", str(self.args.threads))
        for stack in self.stacks:
            cases = (
                ("tiny", self.tiny, self.tiny_body, self.args.connections, "tiny_batched", 1),
                ("mlp", self.mlp, self.mlp_body, 8, "mlp_served", self.args.rows),
            )
            for name, model, body, connections, key, rows in cases:
                peak = float(np.median(self.runs[f"{stack}:{key}"])) / rows
                with Server(stack, model, name, *threads) as server:
                    url = f"{server.url}/v2/models/{name}/infer"
                    for share in (0.5, 0.9):
                        rate, p99 = paced_p99(url, body, peak * share, connections)
                        out[f"{stack}:{name}_p99_at_{share:.0%}"] = p99
                        out[f"{stack}:{name}_rate_at_{share:.0%}"] = rate / peak
        return out


def _best_us(call: Callable[[], Any], number: int) -> float:
    import timeit

    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def profile_mlp(bench: Bench) -> None:
    """Where a served MLP request's time goes, the app's own functions timed one by one."""
    from pytest_mlops.deploy.serving import ServingOptions
    from pytest_mlops.deploy.serving.app import App
    from pytest_mlops.deploy.serving.responses import loads

    app = App(ServingOptions(model=str(bench.mlp), name="mlp", threads=bench.args.threads))
    runner, rows = app.runner, bench.args.rows
    assert runner is not None
    request = loads(bench.mlp_body)
    feeds = runner.parse(request)[0]
    merged = {"X": np.resize(bench.X, (rows * 4, bench.X.shape[1]))}
    share = runner.predict(merged, [rows] * 4)[1][0]
    decode = _best_us(lambda: loads(bench.mlp_body), 2000)
    validate = _best_us(lambda: runner.parse(request), 2000)
    encode = _best_us(lambda: app.respond(feeds, share, None, None), 2000)
    call = _best_us(lambda: runner.run(merged), 20)
    loop = 4 * (decode + validate + encode)
    print(
        f"MLP profile: per {rows}-row request JSON decode {decode:.1f} us, validation "
        f"{validate:.1f} us, response encode {encode:.1f} us; a {rows * 4}-row ONNX Runtime "
        f"call {call:.0f} us; event-loop work per such call {loop:.0f} us ({loop / call:.1%})"
    )


def ratio(runs: dict[str, list[float]], a: str, b: str) -> float:
    return float(np.median([x / y for x, y in zip(runs[a], runs[b], strict=True)]))


def rounds(runs: dict[str, list[float]], a: str, b: str) -> str:
    return ", ".join(f"{x / y:.0%}" for x, y in zip(runs[a], runs[b], strict=True))


def report(bench: Bench, latency: dict[str, float]) -> dict[str, Any]:
    runs, rows = bench.runs, bench.args.rows
    med = {k: float(np.median(v)) for k, v in runs.items()}
    summary: dict[str, Any] = {"medians": med, "latency": latency}
    for stack in bench.stacks:
        s = f"{stack}:"
        print(f"\n== {'this tree' if stack == 'new' else 'legacy: ' + str(bench.args.legacy)}")
        print(f"no-op endpoint, bare        {med[s + 'noop']:10.0f} requests/s")
        print(
            f"no-op endpoint, JSON        {med[s + 'noop_json']:10.0f} requests/s  "
            f"{ratio(runs, s + 'noop_json', s + 'noop'):.0%} of bare no-op"
        )
        for key, label in (("tiny_batched", "batching"), ("tiny_inline", "no batching")):
            r = ratio(runs, s + key, s + "noop_json")
            summary[f"{s}{key}_vs_noop_json"] = r
            print(
                f"tiny model, {label:<15} {med[s + key]:10.0f} requests/s  {r:.0%} of JSON no-op "
                f"(rounds: {rounds(runs, s + key, s + 'noop_json')}); "
                f"{ratio(runs, s + key, s + 'noop'):.0%} of bare no-op"
            )
        same = ratio(runs, s + "mlp_served", s + "mlp_in_process_same")
        x8 = ratio(runs, s + "mlp_served", "mlp_in_process_x8")
        summary[f"{s}mlp_vs_in_process_same_rows"], summary[f"{s}mlp_vs_in_process_x8"] = same, x8
        print(
            f"MLP served, {rows}-row requests {med[s + 'mlp_served']:8.0f} rows/s  "
            f"{same:.0%} of in-process at the same rows per call "
            f"(mean {med[s + 'mlp_rows_per_call']:.1f}; rounds: "
            f"{rounds(runs, s + 'mlp_served', s + 'mlp_in_process_same')}); "
            f"{x8:.0%} of in-process at {rows * 8} rows "
            f"(rounds: {rounds(runs, s + 'mlp_served', 'mlp_in_process_x8')})"
        )
        for name in ("tiny", "mlp"):
            for share in ("50%", "90%"):
                p99, rate = (
                    latency.get(f"{s}{name}_p99_at_{share}"),
                    latency.get(f"{s}{name}_rate_at_{share}"),
                )
                if p99 is not None and rate is not None:
                    print(
                        f"{name} p99 at {share} of peak   {p99 * 1000:8.2f} ms  "
                        f"(reached {rate:.0%} of peak)"
                    )
    print(f"MLP in-process, {rows * 8}-row calls {med['mlp_in_process_x8']:8.0f} rows/s")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=8, help="rows per compute-bound request")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--legacy", type=Path, help="another server script, run alongside")
    parser.add_argument("--no-latency", dest="latency", action="store_false")
    parser.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime threads, server and in-process"
    )
    args = parser.parse_args()
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    Server.legacy = args.legacy
    print(
        f"load generator: {args.client}, {args.connections} connections, {args.rounds} "
        f"interleaved rounds of {args.seconds:g} s runs; ONNX Runtime threads: "
        f"{args.threads or 'all'}; load average before: {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args, Path(tmp))
        for _ in range(args.rounds):
            bench.round()
        latency = bench.latencies() if args.latency and args.client == "wrk" else {}
        summary = report(bench, latency)
        profile_mlp(bench)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
