r"""``pytest-mlops latency``: measure (and optionally gate) a model's latency from the shell.

::

    pytest-mlops latency model.onnx data/holdout.csv.gz --target income --batch-sizes 1,64
    pytest-mlops latency credit_model:model holdout.csv --target income --p50-ms 50 \\
        --baseline build/latency.json --compare-fail p50:10%

Exit codes: 0 measured (and every bound holds), 1 a bound or the baseline comparison fails or is
inconclusive, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_mlops.errors import ConfigError

__all__ = ["add_latency"]

EXIT_OK, EXIT_FAILED = 0, 1


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--batch-sizes {text!r}: expected whole numbers, e.g. 1,64") from None
    return sizes


def _cmd_latency(args: argparse.Namespace) -> int:
    from pytest_mlops.checks.latency import check_latency
    from pytest_mlops.data.loaders import load_dataset
    from pytest_mlops.models import load_model

    model = load_model(args.model, base_dir=Path.cwd())
    data = load_dataset(args.data, target=args.target, encoding=args.encoding)
    measure: dict[str, Any] = {
        "device": args.device,
        "batch_sizes": _sizes(args.batch_sizes),
        "scenario": args.scenario,
        "target_qps": args.target_qps,
        "threads": args.threads,
        "min_duration_s": args.min_duration,
        "max_duration_s": max(args.max_duration, args.min_duration),
        "cuda_graphs": args.cuda_graphs,
    }
    result = check_latency(
        model,
        data.X,
        p50_ms=args.p50_ms,
        p99_ms=args.p99_ms,
        min_throughput=args.min_throughput,
        baseline=args.baseline,
        compare_fail=args.compare_fail or "p50:10%",
        allow_other_machine=args.allow_other_machine,
        save_baseline=args.save_baseline,
        **measure,
    )
    print(
        f"{'batch':>6} {'p50 ms':>10} {'p90 ms':>10} {'p99 ms':>10} {'samples/s':>12} {'runs':>8}"
    )
    for row in result.tables["batches"]:
        print(
            f"{row['batch_size']:>6} {row['p50_ms']:>10.4g} {row['p90_ms']:>10.4g} "
            f"{row['p99_ms']:>10.4g} {row['throughput']:>12.4g} {row['n']:>8}"
        )
    context = result.context
    print(
        f"{context['backend']} on {context['device']} ({context['cpu']}), timer {context['timer']}"
    )
    print(f"{result.status.upper()}: {result.message}")
    if result.details:
        print(result.details)
    return EXIT_OK if result.passed else EXIT_FAILED


def add_latency(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``pytest-mlops latency``."""
    parser = sub.add_parser(
        "latency", help="measure a model's latency percentiles per batch size (CPU or CUDA)"
    )
    parser.add_argument("model", help="an .onnx file or 'package.module:factory'")
    parser.add_argument("data", help="rows to feed: CSV (optionally compressed) or Parquet")
    parser.add_argument("--target", help="the label column, left out of the model's input")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of a CSV file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index>")
    parser.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,64")
    parser.add_argument(
        "--scenario", default="single_stream", choices=("single_stream", "server", "offline")
    )
    parser.add_argument("--target-qps", type=float, help="arrival rate of the server scenario")
    parser.add_argument("--threads", type=int, help="pin intra-op threads")
    parser.add_argument("--min-duration", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--max-duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--cuda-graphs", action="store_true", help="PyTorch on CUDA only")
    parser.add_argument("--p50-ms", type=float, help="fail above this median (ms)")
    parser.add_argument("--p99-ms", type=float, help="fail above this 99th percentile (ms)")
    parser.add_argument("--min-throughput", type=float, help="fail below this many samples/s")
    parser.add_argument("--baseline", help="compare with a latency report saved earlier")
    parser.add_argument(
        "--compare-fail", action="append", help="how much worse fails: p50:10%% (repeatable)"
    )
    parser.add_argument("--allow-other-machine", action="store_true")
    parser.add_argument("--save-baseline", help="write this run's latency report here (JSON)")
    parser.set_defaults(func=_cmd_latency)
