"""GPU latency of a PyTorch MLP: CUDA events vs wall clock, a batch sweep, and our harness.

For a machine with PyTorch built for CUDA (onnxruntime-gpu is not needed). On a machine without
CUDA it prints why and exits with status 0 (``--require-gpu`` makes that status 2).

For each batch size it prints the median (p50) latency of one forward pass timed five ways:

``events``      CUDA events recorded around the call on the current stream (GPU timeline)
``wall+sync``   ``perf_counter_ns`` around the call and ``torch.cuda.synchronize()``
``wall-nosync`` ``perf_counter_ns`` around the call alone - the classic mistake: it times the
                kernel launches, not the work
``harness``     :func:`pytest_mlops.measure_latency` with ``device="cuda"`` (CUDA events)
``graphs``      the same with ``cuda_graphs=True``

plus the harness's p99 and its offline-scenario throughput. One call on a GPU machine:

    PYTHONPATH=. python3 benchmarks/gpu_latency.py --json "$OUT/gpu_latency.json"
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any


def _cuda_or_exit(require: bool) -> Any:
    try:
        import torch
    except ImportError:
        print("gpu_latency: PyTorch is not installed; nothing to measure")
        sys.exit(2 if require else 0)
    if not torch.cuda.is_available():
        print(
            f"gpu_latency: no CUDA device (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none: a CPU-only build'}); nothing to measure"
        )
        sys.exit(2 if require else 0)
    return torch


WARMUP_S = 1.0


def mlp(torch: Any, n_in: int, hidden: int, layers: int, n_out: int) -> Any:
    blocks: list[Any] = []
    width = n_in
    for _ in range(layers):
        blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    blocks.append(torch.nn.Linear(width, n_out))
    torch.manual_seed(0)
    return torch.nn.Sequential(*blocks)


def by_events(torch: Any, fn: Any, runs: int) -> list[float]:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for start, end in zip(starts, ends, strict=True):
        start.record()
        fn()
        end.record()
        end.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]


def by_wall(torch: Any, fn: Any, runs: int, sync: bool) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(runs):
        start = clock()
        fn()
        if sync:
            torch.cuda.synchronize()
        out.append((clock() - start) / 1e6)
    if not sync:
        torch.cuda.synchronize()
    return out


def raw_timings(torch: Any, net: Any, rows: Any, device: Any, runs: int) -> tuple[float, ...]:
    """p50 (ms) by CUDA events, by wall clock with synchronize, and by wall clock without it."""
    net_gpu = net.to(device).eval()
    x = torch.from_numpy(rows).to(device)
    with torch.no_grad():

        def fn() -> Any:
            return net_gpu(x)

        warm_until = time.perf_counter() + WARMUP_S  # an idle GPU clocks down: ramp it up first
        while time.perf_counter() < warm_until:
            fn()
            torch.cuda.synchronize()
        return (
            statistics.median(by_events(torch, fn, runs)),
            statistics.median(by_wall(torch, fn, runs, sync=True)),
            statistics.median(by_wall(torch, fn, runs, sync=False)),
        )


def conclusions(rows: list[dict[str, Any]]) -> list[str]:
    """What the table shows, read off the figures rather than asserted ahead of them."""
    ratios = [row["harness_over_events"] for row in rows]
    lines = [
        f"harness/events p50 ratio: {min(ratios):.3f} to {max(ratios):.3f} "
        "(1.0: the harness adds nothing to the GPU timeline)"
    ]
    for row in rows:
        share = row["wall_nosync_p50_ms"] / row["events_p50_ms"]
        if share < 0.5:
            lines.append(
                f"batch {row['batch_size']}: wall clock without synchronising gives "
                f"{share:.0%} of the GPU time - it measures kernel launches, not the work"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,64,512,4096")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=300, help="timed runs per method")
    parser.add_argument("--seconds", type=float, default=0.5, help="harness min duration")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args()
    torch = _cuda_or_exit(args.require_gpu)

    import numpy as np

    from pytest_mlops import measure_latency

    device = torch.device("cuda:0")
    props = torch.cuda.get_device_properties(device)
    print(
        f"device: {props.name}, {props.multi_processor_count} SMs, "
        f"{props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}; python {platform.python_version()}"
    )
    net = mlp(torch, args.features, args.hidden, args.layers, 10)
    print(f"model: MLP {args.features} -> {args.layers} x {args.hidden} -> 10, float32, eval\n")
    sizes = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    sample = rng.normal(size=(max(sizes), args.features)).astype(np.float32)
    quick = {
        "warmup": 20,
        "min_runs": args.runs,
        "min_duration_s": args.seconds,
        "max_duration_s": 10 * args.seconds + 5,
        "stop_percentile": 50.0,
    }

    header = (
        f"{'batch':>6} {'events':>9} {'wall+sync':>10} {'wall-nosync':>12} "
        f"{'harness':>9} {'graphs':>9} {'h.p99':>9} {'h/events':>9} {'offline/s':>12}"
    )
    print("p50 latency in ms (offline: samples/s)")
    print(header)
    rows = []
    for size in sizes:
        events, wall_sync, wall_nosync = raw_timings(torch, net, sample[:size], device, args.runs)
        net.to("cpu")
        harness = measure_latency(net, sample, device="cuda", batch_sizes=[size], **quick)[size]
        graphs = measure_latency(
            net, sample, device="cuda", batch_sizes=[size], cuda_graphs=True, **quick
        )[size]
        offline = measure_latency(
            net, sample, device="cuda", batch_sizes=[size], scenario="offline", **quick
        )[size]
        row = {
            "batch_size": size,
            "events_p50_ms": events,
            "wall_sync_p50_ms": wall_sync,
            "wall_nosync_p50_ms": wall_nosync,
            "harness_p50_ms": harness.p50_ms,
            "harness_p99_ms": harness.p99_ms,
            "graphs_p50_ms": graphs.p50_ms,
            "harness_over_events": harness.p50_ms / events,
            "offline_throughput": offline.throughput,
            "harness_n": harness.n,
        }
        rows.append(row)
        print(
            f"{size:>6} {events:>9.4f} {wall_sync:>10.4f} {wall_nosync:>12.4f} "
            f"{harness.p50_ms:>9.4f} {graphs.p50_ms:>9.4f} {harness.p99_ms:>9.4f} "
            f"{harness.p50_ms / events:>9.3f} {offline.throughput:>12.0f}"
        )
    print()
    for line in conclusions(rows):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"device": props.name, "torch": torch.__version__, "rows": rows}, handle, indent=2
            )


if __name__ == "__main__":
    main()
