"""``latency`` gate: inference latency percentiles, throughput floors and a stored baseline.

A gate with ``device = "cuda"`` is a GPU test: it carries the ``gpu`` marker, so it is skipped
where no CUDA device is present (failed with ``--mlops-require-gpu``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext

_BOUNDS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "mean_ms", "min_throughput")


def run_latency(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a latency gate: measure the model's latency at the gate's batch sizes."""
    from pytest_mlops.checks.latency import check_latency

    name = params["name"]
    if params["batch_sizes"] is not None:
        sizes = [int(b) for b in params["batch_sizes"]]
        if any(b != s or b < 1 for b, s in zip(sizes, params["batch_sizes"], strict=True)):
            raise ConfigError(
                f"gate {name!r}: 'batch_sizes' must be positive whole numbers, "
                f"got {list(params['batch_sizes'])}"
            )
    else:
        sizes = [params["batch_size"]]
    if params["scenario"] == "server" and params["target_qps"] is None:
        raise ConfigError(f"gate {name!r}: scenario 'server' needs 'target_qps'")
    baseline = params["baseline"]
    save = params["save_baseline"]
    return check_latency(
        ctx.model,
        ctx.dataset(params["dataset"]).X,
        **{key: params[key] for key in _BOUNDS},
        baseline=None if baseline is None else ctx.config.resolve_path(baseline),
        save_baseline=None if save is None else ctx.config.resolve_path(save),
        compare_fail=params["compare_fail"],
        allow_other_machine=params["allow_other_machine"],
        name=name,
        device=params["device"],
        batch_sizes=sizes,
        scenario=params["scenario"],
        target_qps=params["target_qps"],
        warmup=params["warmup"],
        min_runs=params["min_runs"],
        min_duration_s=params["min_duration_s"],
        max_duration_s=params["max_duration_s"],
        confidence=params["confidence"],
        threads=params["threads"],
        cuda_graphs=params["cuda_graphs"],
        seed=ctx.seed,
    )


LATENCY = GateKind(
    name="latency",
    marker="latency",
    help="inference latency percentiles and throughput, on CPU or CUDA, against bounds "
    "and a stored baseline",
    params=(
        Param("device", "str", "where the model runs", default="cpu", choices=("cpu", "cuda")),
        Param("batch_size", "int", "the batch size measured", default=1, minimum=1),
        Param("batch_sizes", "list[number]", "several batch sizes (instead of batch_size)"),
        Param(
            "scenario",
            "str",
            "how queries are issued",
            default="single_stream",
            choices=("single_stream", "server", "offline"),
        ),
        Param(
            "target_qps",
            "number",
            "mean Poisson arrival rate of the server scenario",
            minimum=0,
        ),
        Param("p50_ms", "number", "upper bound on the median latency (ms)", minimum=0),
        Param("p90_ms", "number", "upper bound on the 90th percentile (ms)", minimum=0),
        Param("p95_ms", "number", "upper bound on the 95th percentile (ms)", minimum=0),
        Param("p99_ms", "number", "upper bound on the 99th percentile (ms)", minimum=0),
        Param("p999_ms", "number", "upper bound on the 99.9th percentile (ms)", minimum=0),
        Param("mean_ms", "number", "upper bound on the mean latency (ms)", minimum=0),
        Param("min_throughput", "number", "floor on samples per second", minimum=0),
        Param("baseline", "str", "a latency report saved by an earlier run (JSON)"),
        Param(
            "compare_fail",
            "str|list[str]",
            "how much worse than the baseline fails: 'p50:10%', 'p99:0.5ms', 'throughput:5%'",
            default=("p50:10%",),
        ),
        Param(
            "allow_other_machine",
            "bool",
            "compare with a baseline from another machine or device",
            default=False,
        ),
        Param("save_baseline", "str", "write this run's latency report here (JSON)"),
        Param("warmup", "int", "untimed runs first", default=10, minimum=0),
        Param("min_runs", "int", "at least this many timed runs", default=100, minimum=1),
        Param("min_duration_s", "number", "time at least this long", default=1.0, minimum=0),
        Param("max_duration_s", "number", "time at most this long", default=10.0, minimum=0),
        Param(
            "confidence",
            "number",
            "confidence of the tail percentiles' upper bounds",
            default=0.95,
            minimum=0.5,
            maximum=0.999,
        ),
        Param("threads", "int", "pin intra-op threads", minimum=1),
        Param("cuda_graphs", "bool", "replay a CUDA graph (PyTorch on CUDA)", default=False),
        Param(
            "dataset",
            "str",
            "where the sample rows come from",
            default="current",
            choices=("current", "reference"),
        ),
    ),
    run=run_latency,
)

KINDS = (LATENCY,)
