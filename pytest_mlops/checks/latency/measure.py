"""``measure_latency``: percentiles of inference latency per batch size, LoadGen style.

Each batch size is warmed up, then run until a minimum count *and* a minimum duration are reached
(as MLPerf LoadGen does) and, past those, until the one-sided upper confidence bound of the
``stop_percentile`` is known and within ``tolerance`` of its estimate - or until ``max_duration_s``
or ``max_runs``, whichever comes first.

Scenarios (after MLPerf LoadGen):

``single_stream``
    The next query is issued when the previous one completes; latency is one inference.
``server``
    Queries arrive as a seeded Poisson process at ``target_qps``; one worker serves them in order,
    so latency counts the time a query waited in the queue.
``offline``
    Queries are issued back to back without waiting for each (a device may queue them); the
    figure of merit is throughput at the batch size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from pytest_mlops.checks.latency._backends import Engine, Timed, describe, open_engine
from pytest_mlops.checks.latency._fingerprint import Fingerprint
from pytest_mlops.checks.latency._stats import (
    PERCENTILES,
    histogram,
    tail_settled,
    upper_bound_index,
)
from pytest_mlops.errors import CheckError, DataError, MlopsError, ModelError, ReportError

__all__ = ["LatencyReport", "LatencyStats", "Scenario", "measure_latency"]

Scenario = Literal["single_stream", "server", "offline"]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
FORMAT = "pytest-mlops-latency"
FORMAT_VERSION = 1
_CHUNK_NS = 20_000_000  # timed runs between two looks at the clock: ~20 ms worth


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one batch size (milliseconds; throughput in samples per second)."""

    batch_size: int
    n: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput: float
    scenario: str = "single_stream"
    confidence: float = 0.95
    upper_ms: Mapping[str, float | None] = field(default_factory=dict)
    converged: bool = True
    target_qps: float | None = None
    samples_ms: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_samples(
        cls,
        samples_ms: Sequence[float] | np.ndarray,
        *,
        batch_size: int,
        duration_s: float,
        scenario: str = "single_stream",
        confidence: float = 0.95,
        converged: bool = True,
        target_qps: float | None = None,
    ) -> LatencyStats:
        """Summarise per-run latencies (ms) measured over *duration_s* seconds of wall time."""
        ms = np.sort(np.asarray(samples_ms, dtype=np.float64))
        if ms.size == 0:
            raise CheckError(f"batch_size={batch_size}: no latency was measured")
        values = np.percentile(ms, list(PERCENTILES.values()))
        upper: dict[str, float | None] = {}
        for name, pct in PERCENTILES.items():
            index = upper_bound_index(ms.size, pct, confidence)
            upper[name] = None if index is None else float(ms[index])
        return cls(
            batch_size=batch_size,
            n=int(ms.size),
            duration_s=float(duration_s),
            **{f"{name}_ms": float(v) for name, v in zip(PERCENTILES, values, strict=True)},
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            min_ms=float(ms[0]),
            max_ms=float(ms[-1]),
            throughput=batch_size * ms.size / duration_s if duration_s > 0 else float("nan"),
            scenario=scenario,
            confidence=confidence,
            upper_ms=upper,
            converged=converged,
            target_qps=target_qps,
            samples_ms=ms,
        )

    def percentile(self, name: str) -> float:
        """``"p50"`` ... ``"p999"``, ``"mean"``, ``"std"`` in ms; ``"throughput"`` in samples/s."""
        if name == "throughput":
            return self.throughput
        return float(getattr(self, f"{name}_ms"))

    def row(self) -> dict[str, Any]:
        """The row of the ``batches`` table."""
        return {
            "batch_size": self.batch_size,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "throughput": self.throughput,
            "n": self.n,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.row(),
            "duration_s": self.duration_s,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "scenario": self.scenario,
            "confidence": self.confidence,
            "upper_ms": dict(self.upper_ms),
            "converged": self.converged,
            "target_qps": self.target_qps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["upper_ms"] = dict(fields.get("upper_ms") or {})
        return cls(**fields)


@dataclass(frozen=True)
class LatencyReport:
    """What :func:`measure_latency` returns: one :class:`LatencyStats` per batch size."""

    batches: tuple[LatencyStats, ...]
    fingerprint: Fingerprint
    model: str
    scenario: str
    timer: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, batch_size: int) -> LatencyStats:
        for stats in self.batches:
            if stats.batch_size == batch_size:
                return stats
        raise KeyError(f"no batch_size={batch_size} in this report: {self.batch_sizes}")

    def __iter__(self) -> Iterator[LatencyStats]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def batch_sizes(self) -> list[int]:
        return [b.batch_size for b in self.batches]

    @property
    def device(self) -> str:
        return self.fingerprint.device

    def rows(self) -> list[dict[str, Any]]:
        """The ``batches`` table: one row per batch size."""
        return [b.row() for b in self.batches]

    def histogram_rows(self, bins: int = 12) -> list[dict[str, Any]]:
        """The ``histogram`` table: ``{batch_size, bin_ms, count}`` (lower bin edges)."""
        return [
            {"batch_size": b.batch_size, "bin_ms": edge, "count": count}
            for b in self.batches
            if b.samples_ms is not None
            for edge, count in histogram(b.samples_ms, bins)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": self.model,
            "scenario": self.scenario,
            "timer": self.timer,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fingerprint": self.fingerprint.to_dict(),
            "settings": dict(self.settings),
            "batches": [b.to_dict() for b in self.batches],
        }

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON (a baseline for later runs); returns the path."""
        from pytest_mlops._files import write_atomic

        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        return write_atomic(Path(path), text, what="the latency baseline")

    @classmethod
    def load(cls, path: str | Path) -> LatencyReport:
        """Read a report written by :meth:`save`."""
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportError(f"the latency baseline {str(source)!r} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"cannot read the latency baseline {str(source)!r}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ReportError(f"{str(source)!r} is not a pytest-mlops latency baseline")
        if data.get("version") != FORMAT_VERSION:
            raise ReportError(
                f"{str(source)!r} is a latency baseline of format version {data.get('version')}, "
                f"this pytest-mlops reads version {FORMAT_VERSION}: measure a new one"
            )
        try:
            return cls(
                batches=tuple(LatencyStats.from_dict(b) for b in data["batches"]),
                fingerprint=Fingerprint.from_dict(data["fingerprint"]),
                model=str(data.get("model", "")),
                scenario=str(data.get("scenario", "single_stream")),
                timer=str(data.get("timer", "")),
                settings=dict(data.get("settings", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ReportError(
                f"the latency baseline {str(source)!r} is incomplete: {exc}"
            ) from None


@dataclass(frozen=True)
class _Plan:
    """How long to measure one batch size."""

    warmup: int
    min_runs: int
    min_duration_s: float
    max_duration_s: float
    max_runs: int
    stop_percentile: float | None
    confidence: float
    tolerance: float

    def settings(self) -> dict[str, Any]:
        """The plan as the report's settings (without ``max_runs``)."""
        return {
            "warmup": self.warmup,
            "min_runs": self.min_runs,
            "min_duration_s": self.min_duration_s,
            "max_duration_s": self.max_duration_s,
            "stop_percentile": self.stop_percentile,
            "confidence": self.confidence,
            "tolerance": self.tolerance,
        }


def measure_latency(
    model: Any,
    sample: Any,
    *,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1,),
    scenario: Scenario = "single_stream",
    warmup: int = 10,
    min_runs: int = 100,
    min_duration_s: float = 1.0,
    max_duration_s: float = 10.0,
    max_runs: int = 1_000_000,
    stop_percentile: float | None = 99.0,
    confidence: float = 0.95,
    tolerance: float = 0.1,
    threads: int | None = None,
    target_qps: float | None = None,
    cuda_graphs: bool = False,
    seed: int = 0,
) -> LatencyReport:
    """Measure inference latency of *model* on batches drawn from *sample*.

    Parameters
    ----------
    model, sample:
        Anything :func:`~pytest_mlops.load_model` takes (ONNX runs on pre-built feeds, CUDA with
        IOBinding; PyTorch on CUDA with CUDA events), and the rows to feed (DataFrame, 2-D or
        1-D array); a batch of size ``b`` is the first ``b`` rows, repeated if there are fewer.
    device, batch_sizes, scenario:
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"`` (CUDA not really used is an error); the
        batch sizes; ``"single_stream"``, ``"server"`` (needs ``target_qps``) or ``"offline"``.
    warmup, min_runs, min_duration_s, max_duration_s, max_runs:
        Untimed warm-up runs, then at least ``min_runs`` runs and ``min_duration_s`` seconds, at
        most ``max_duration_s`` seconds or ``max_runs`` runs.
    stop_percentile, confidence, tolerance:
        Past the minimums, measure until the ``confidence`` upper bound of this percentile is
        within ``tolerance`` (relative) of the estimate; ``None`` stops at the minimums.
    threads, target_qps, cuda_graphs, seed:
        Intra-op threads (``None``: the runtime's default); the server scenario's mean arrival
        rate and seed; replay a captured CUDA graph (PyTorch on CUDA). See ``docs/latency.md``.

    Returns
    -------
    LatencyReport
        ``report[b]``: the :class:`LatencyStats` of batch size ``b``; ``report.fingerprint``.
    """
    sizes = _check_arguments(batch_sizes, scenario, target_qps, locals())
    plan = _Plan(
        warmup, min_runs, float(min_duration_s), float(max_duration_s), max_runs,
        stop_percentile, confidence, tolerance,
    )  # fmt: skip
    engine = open_engine(model, device=device, threads=threads, cuda_graphs=cuda_graphs)
    try:
        results, timer = _run_sizes(engine, _rows(sample), sizes, scenario, plan, target_qps, seed)
    finally:
        engine.close()
    runtime = {"threads": threads, "target_qps": target_qps, "cuda_graphs": cuda_graphs}
    settings = {**plan.settings(), **runtime, "seed": seed}
    return _report(engine, results, timer, scenario, settings)


def _report(
    engine: Engine,
    results: list[LatencyStats],
    timer: str,
    scenario: Scenario,
    settings: dict[str, Any],
) -> LatencyReport:
    """The measurements of every batch size with the fingerprint of where they were made."""
    return LatencyReport(
        batches=tuple(results),
        fingerprint=_fingerprint(engine),
        model=engine.model.name,
        scenario=scenario,
        timer=timer,
        settings=settings,
    )


def _run_sizes(
    engine: Engine,
    rows: Any,
    sizes: Sequence[int],
    scenario: Scenario,
    plan: _Plan,
    target_qps: float | None,
    seed: int,
) -> tuple[list[LatencyStats], str]:
    """The statistics of each batch size, and the timer that measured them."""
    results: list[LatencyStats] = []
    timer = ""
    for size in sizes:
        timed = _prepare(engine, rows, size)
        timer = timed.timer
        results.append(_measure(engine, timed, size, scenario, plan, target_qps, seed))
    return results, timer


def _fingerprint(engine: Engine) -> Fingerprint:
    """The machine, device and software *engine* ran on."""
    return Fingerprint(
        device=engine.device,
        backend=engine.backend,
        providers=engine.providers,
        threads=engine.threads,
        gpu_name=engine.gpu_name,
        versions=engine.versions,
    )


def _check_arguments(
    batch_sizes: Sequence[int], scenario: str, target_qps: float | None, args: Mapping[str, Any]
) -> list[int]:
    from pytest_mlops.errors import choices_text, did_you_mean

    if isinstance(batch_sizes, int):
        batch_sizes = [batch_sizes]
    sizes = list(batch_sizes)
    if not sizes:
        raise CheckError("batch_sizes is empty: give at least one batch size, e.g. [1]")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise CheckError(f"batch size must be a positive whole number, got {size!r}")
    if scenario not in SCENARIOS:
        raise CheckError(
            f"unknown scenario {scenario!r}{did_you_mean(str(scenario), SCENARIOS)}; "
            f"valid scenarios are {choices_text(SCENARIOS)}"
        )
    if scenario == "server" and (target_qps is None or target_qps <= 0):
        raise CheckError("the 'server' scenario needs target_qps > 0 (mean queries per second)")
    for name in ("warmup", "min_runs", "max_runs"):
        value = args[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (0 if name == "warmup" else 1)
        ):
            raise CheckError(
                f"{name} must be a whole number >= {0 if name == 'warmup' else 1}, got {value!r}"
            )
    if not 0 <= args["min_duration_s"] <= args["max_duration_s"]:
        raise CheckError(
            f"need 0 <= min_duration_s <= max_duration_s, got {args['min_duration_s']!r} and "
            f"{args['max_duration_s']!r}"
        )
    if not 0 < args["confidence"] < 1:
        raise CheckError(f"confidence must be between 0 and 1, got {args['confidence']!r}")
    stop = args["stop_percentile"]
    if stop is not None and not 0 < stop < 100:
        raise CheckError(f"stop_percentile must be between 0 and 100, got {stop!r}")
    return sizes


def _rows(sample: Any) -> Any:
    """The sample as a DataFrame or a 2-D array of rows."""
    if hasattr(sample, "X") and hasattr(sample, "frame"):  # a Dataset
        sample = sample.X
    if isinstance(sample, pd.Series):
        sample = sample.to_frame().T
    if not isinstance(sample, pd.DataFrame):
        sample = np.asarray(sample)
        if sample.ndim == 0:
            raise DataError("the sample is a single number: pass rows of features")
        if sample.ndim == 1:
            sample = sample.reshape(1, -1)
    if len(sample) == 0:
        raise DataError("the sample has no rows: pass at least one row of features")
    return sample


def _batch(rows: Any, size: int) -> Any:

    index = np.arange(size) % len(rows)
    if isinstance(rows, pd.DataFrame):
        return rows.iloc[index].reset_index(drop=True)
    return np.ascontiguousarray(rows[index])


def _prepare(engine: Engine, rows: Any, size: int) -> Timed:
    try:
        return engine.prepare(_batch(rows, size))
    except MlopsError:
        raise
    except Exception as exc:
        raise DataError(
            f"{describe(engine.model)} cannot take the sample as a batch of {size}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _measure(
    engine: Engine,
    timed: Timed,
    size: int,
    scenario: str,
    plan: _Plan,
    target_qps: float | None,
    seed: int,
) -> LatencyStats:
    try:
        if plan.warmup:
            timed.time_runs(plan.warmup)
        if scenario == "server":
            assert target_qps is not None  # noqa: S101 - a type the caller guarantees
            samples, elapsed = _server_loop(timed, plan, target_qps, seed)
        else:
            samples, elapsed = _stream_loop(timed, plan, sync_each=scenario == "single_stream")
    except MlopsError:
        raise
    except Exception as exc:
        raise ModelError(
            f"{describe(engine.model)} raised {type(exc).__name__} while timing batch_size={size} "
            f"on {engine.device}: {str(exc).strip()[:500]}"
        ) from None

    ms = np.asarray(samples, dtype=np.float64) / 1e6
    converged = _settled(np.sort(ms), plan)
    return LatencyStats.from_samples(
        ms,
        batch_size=size,
        duration_s=elapsed / 1e9,
        scenario=scenario,
        confidence=plan.confidence,
        converged=converged,
        target_qps=target_qps if scenario == "server" else None,
    )


def _settled(sorted_ms: np.ndarray, plan: _Plan) -> bool:
    if plan.stop_percentile is None:
        return True
    return tail_settled(sorted_ms, plan.stop_percentile, plan.confidence, plan.tolerance)


class _Stopper:
    """The stopping rule: minimums first, then the tail bound, within the maximums."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.min_ns = int(plan.min_duration_s * 1e9)
        self.max_ns = int(plan.max_duration_s * 1e9)
        self._checked_at = 0

    def done(self, samples: list[int], elapsed: int) -> bool:

        n = len(samples)
        if n >= self.plan.max_runs or elapsed >= self.max_ns:
            return True
        if n < self.plan.min_runs or elapsed < self.min_ns:
            return False
        if self.plan.stop_percentile is None:
            return True
        if n < self._checked_at * 1.1:  # sorting costs; look again after 10% more runs
            return False
        self._checked_at = n
        return _settled(np.sort(np.asarray(samples, dtype=np.float64)), self.plan)

    def chunk(self, samples: list[int], elapsed: int) -> int:
        n = len(samples)
        per_run = max(elapsed / max(n, 1), 1.0)
        size = min(_CHUNK_NS / per_run, 4096, self.plan.max_runs - n)
        if n < self.plan.min_runs:  # do not overshoot the minimum count
            size = min(size, self.plan.min_runs - n)
        return int(max(1, size))


def _stream_loop(timed: Timed, plan: _Plan, *, sync_each: bool) -> tuple[list[int], int]:
    clock = time.perf_counter_ns
    stopper = _Stopper(plan)
    samples: list[int] = []
    start = clock()
    chunk = 1
    while True:
        samples.extend(timed.time_runs(chunk, sync_each=sync_each))
        elapsed = clock() - start
        if stopper.done(samples, elapsed):
            return samples, elapsed
        chunk = stopper.chunk(samples, elapsed)


def _server_loop(timed: Timed, plan: _Plan, qps: float, seed: int) -> tuple[list[int], int]:
    """One worker serving Poisson arrivals in order; latency = completion - arrival."""
    rng = np.random.default_rng(seed)
    clock = time.perf_counter_ns
    run = timed.run_once
    stopper = _Stopper(plan)
    samples: list[int] = []
    start = clock()
    arrival = start
    while True:
        gaps = rng.exponential(1e9 / qps, size=256).astype(np.int64)
        for gap in gaps.tolist():
            arrival += gap
            _wait_until(arrival, clock)
            run()
            done = clock()
            samples.append(done - arrival)
            if stopper.done(samples, done - start):
                return samples, done - start


def _wait_until(deadline: int, clock: Any) -> None:
    """Sleep most of the way, then spin the last millisecond (sleep overshoots under load)."""
    while True:
        left = deadline - clock()
        if left <= 0:
            return
        if left > 2_000_000:
            time.sleep((left - 1_000_000) / 1e9)
