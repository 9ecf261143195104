"""Overhead of the latency harness: its p50 next to a bare ``session.run`` timing loop.

Both time the same tiny ONNX model (MatMul + Relu) in the same ONNX Runtime session, with the same
pinned threads and the same pre-built input, interleaved round by round (the order alternates) so
that machine noise hits both alike. Prints each round's p50s, the median over rounds and the
ratio harness / bare (target: within 5%).

    .venv/bin/python benchmarks/latency_overhead.py [--rounds 15] [--runs 5000] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from pytest_mlops import measure_latency


def tiny_model(n_features: int = 16, n_out: int = 4) -> bytes:
    weights = np.random.default_rng(0).normal(size=(n_features, n_out)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_out])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def bare_p50(session: ort.InferenceSession, feeds: dict[str, np.ndarray], runs: int) -> float:
    """The loop a user would write by hand: perf_counter_ns around session.run."""
    run = session.run
    clock = time.perf_counter_ns
    for _ in range(50):  # same warm-up as the harness gets
        run(None, feeds)
    latencies = []
    for _ in range(runs):
        start = clock()
        run(None, feeds)
        latencies.append(clock() - start)
    return float(np.percentile(latencies, 50)) / 1e6


def harness_p50(session: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    report = measure_latency(
        session,
        x,
        batch_sizes=[len(x)],
        warmup=50,
        min_runs=runs,
        max_runs=runs,
        min_duration_s=0.0,
        max_duration_s=600.0,
        stop_percentile=None,
    )
    return report[len(x)].p50_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=5000, help="timed runs per round and side")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the session")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(tiny_model(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(args.batch, 16)).astype(np.float32)
    feeds = {"x": x}

    print(
        f"onnxruntime {ort.__version__}, {args.threads} intra-op thread(s), batch {args.batch}, "
        f"{args.runs} runs x {args.rounds} rounds per side"
    )
    print(f"{'round':>5}  {'bare p50 ms':>12}  {'harness p50 ms':>14}  {'ratio':>6}")
    bare, harness = [], []
    for i in range(args.rounds):
        if i % 2 == 0:
            b = bare_p50(session, feeds, args.runs)
            h = harness_p50(session, x, args.runs)
        else:
            h = harness_p50(session, x, args.runs)
            b = bare_p50(session, feeds, args.runs)
        bare.append(b)
        harness.append(h)
        print(f"{i:>5}  {b:>12.5f}  {h:>14.5f}  {h / b:>6.3f}")
    mb, mh = statistics.median(bare), statistics.median(harness)
    ratio = mh / mb
    print(
        f"median p50: bare {mb * 1000:.2f} us, harness {mh * 1000:.2f} us, "
        f"ratio harness/bare {ratio:.3f} (median of per-round ratios "
        f"{statistics.median(h / b for h, b in zip(harness, bare, strict=True)):.3f})"
    )
    print("within 5%: " + ("yes" if abs(ratio - 1) <= 0.05 else "NO"))


if __name__ == "__main__":
    main()
