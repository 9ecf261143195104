"""Serving throughput: the OIP v2 server against its peers, measured in the same run.

1. Tiny model (logistic regression, 4 features, 1 row per JSON request) vs two no-op peers on the
   same stack (same process type, same HTTP layer, same request body):

   - bare no-op (``/v2/noop`` of a ``--noop`` server): answers a constant without reading the body;
     the cost of the HTTP layer alone.
   - JSON no-op (``/v2/noop/json`` of the server that loaded the tiny model): decodes the body with
     the infer path's JSON library (orjson when installed) and encodes a response of the OIP shape
     and size of a real one (the model's outputs, placeholder values); no validation, no model.

   Goal: >= 60 % of the no-op's requests/s "with JSON", i.e. of the JSON no-op; the ratio to the
   bare no-op is printed too.
2. Compute-bound model (an MLP, 32 -> 2048 -> 2048 -> 2048 -> 1, 8 rows per request) served with
   dynamic batching vs ONNX Runtime called in-process on the same rows (no HTTP, no JSON).
   Goal: >= 90 % of the in-process rows/s.

Load comes from ``wrk`` (Debian's package) if installed, else from a Python asyncio client, on
keep-alive connections to 127.0.0.1; every run is bounded by ``--seconds``.

Run: ``.venv/bin/python benchmarks/serving.py --seconds 5``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SERVING = Path(__file__).resolve().parent.parent / "pytest_mlops" / "deploy" / "serving.py"


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
    script = SERVING

    def __init__(self, model: Path | None, name: str, *args: str) -> None:
        command = [sys.executable, str(self.script), "--name", name, "--port", "0", *args]
        command += ["--model", str(model)] if model else ["--noop"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.url = line.rsplit(" on ", 1)[1].strip()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(10)


def check(url: str, body: bytes) -> None:
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def load_wrk(url: str, body: bytes, seconds: float, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(script.name).unlink()
    if "Non-2xx" in done.stdout:
        raise SystemExit(f"errors under load:\n{done.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]


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


def load_python(url: str, body: bytes, seconds: float, connections: int) -> float:
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
    return counts[0] / (time.perf_counter() - started)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=8, help="rows per compute-bound request")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--serving",
        type=Path,
        default=SERVING,
        help="the serving app to run (default: this tree's)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="ONNX Runtime threads, server and in-process (0: all)",
    )
    args = parser.parse_args()
    Server.script = args.serving
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load = load_wrk if use_wrk else load_python
    print(
        f"load generator: {'wrk' if use_wrk else 'python asyncio'}, {args.connections} "
        f"connections, {args.rounds} interleaved rounds of {args.seconds:g} s runs; "
        f"ONNX Runtime threads: {args.threads or 'all'}"
    )
    runs: dict[str, list[float]] = {}

    def record(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        tiny = tiny_model(Path(tmp) / "tiny.onnx")
        mlp = compute_model(Path(tmp) / "mlp.onnx")
        tiny_body = request_body(ort.InferenceSession(str(tiny)), np.ones((1, 4), np.float32))
        X = np.random.default_rng(1).normal(size=(args.rows, 32)).astype(np.float32)
        mlp_body = request_body(ort.InferenceSession(str(mlp)), X)
        servers = {
            "noop": (None, "tiny", "/v2/noop", tiny_body, ()),
            "noop_json": (tiny, "tiny", "/v2/noop/json", tiny_body, ()),
            "tiny_batched": (tiny, "tiny", "/v2/models/tiny/infer", tiny_body, ()),
            "tiny_inline": (tiny, "tiny", "/v2/models/tiny/infer", tiny_body, ("--no-batching",)),
        }
        # Interleaved rounds: a noisy neighbour hits every contender of a round alike, and the
        # ratios are taken within a round.
        for _ in range(args.rounds):
            for key, (model, name, path, body, extra) in servers.items():
                with Server(model, name, "--threads", str(args.threads), *extra) as server:
                    check(server.url + path, body)
                    record(key, load(server.url + path, body, args.seconds, args.connections))
            record("mlp_in_process", in_process_rows_per_s(mlp, X, args.seconds, args.threads))
            big = np.repeat(X, 8, axis=0)
            record("mlp_in_process_x8", in_process_rows_per_s(mlp, big, args.seconds, args.threads))
            with Server(mlp, "mlp", "--threads", str(args.threads)) as server:
                url = server.url + "/v2/models/mlp/infer"
                check(url, mlp_body)
                rps = load(url, mlp_body, args.seconds, min(args.connections, 8))
                record("mlp_served", rps * args.rows)

    def ratio(a: str, b: str) -> float:
        return float(np.median([x / y for x, y in zip(runs[a], runs[b], strict=True)]))

    med = {k: float(np.median(v)) for k, v in runs.items()}
    rows = args.rows

    def rounds(a: str, b: str) -> str:
        return ", ".join(f"{x / y:.0%}" for x, y in zip(runs[a], runs[b], strict=True))

    print(f"no-op endpoint, bare        {med['noop']:10.0f} requests/s")
    print(
        f"no-op endpoint, JSON        {med['noop_json']:10.0f} requests/s  "
        f"{ratio('noop_json', 'noop'):.0%} of bare no-op"
    )
    for key, label in (("tiny_batched", "batching"), ("tiny_inline", "no batching")):
        print(
            f"tiny model, {label:<15} {med[key]:10.0f} requests/s  "
            f"{ratio(key, 'noop_json'):.0%} of JSON no-op (rounds: {rounds(key, 'noop_json')}); "
            f"{ratio(key, 'noop'):.0%} of bare no-op (rounds: {rounds(key, 'noop')})"
        )
    print(f"MLP in-process, {rows}-row calls  {med['mlp_in_process']:10.0f} rows/s")
    print(f"MLP in-process, {rows * 8}-row calls {med['mlp_in_process_x8']:10.0f} rows/s")
    per_round = ", ".join(
        f"{x / y:.0%}" for x, y in zip(runs["mlp_served"], runs["mlp_in_process_x8"], strict=True)
    )
    print(
        f"MLP served, batching        {med['mlp_served']:10.0f} rows/s  "
        f"{ratio('mlp_served', 'mlp_in_process'):.0%} of in-process at {rows} rows, "
        f"{ratio('mlp_served', 'mlp_in_process_x8'):.0%} at {rows * 8} rows (rounds: {per_round})"
    )
    summary = {
        "medians": med,
        "tiny_batched_vs_noop": ratio("tiny_batched", "noop"),
        "tiny_inline_vs_noop": ratio("tiny_inline", "noop"),
        "tiny_batched_vs_noop_json": ratio("tiny_batched", "noop_json"),
        "tiny_inline_vs_noop_json": ratio("tiny_inline", "noop_json"),
        "noop_json_vs_noop": ratio("noop_json", "noop"),
        "served_vs_in_process": ratio("mlp_served", "mlp_in_process"),
        "served_vs_in_process_x8": ratio("mlp_served", "mlp_in_process_x8"),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
