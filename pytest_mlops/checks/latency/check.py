"""``check_latency``: bounds on percentiles, throughput floors, and comparison with a baseline."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlops.checks.latency._stats import PERCENTILES, min_runs_for_bound
from pytest_mlops.checks.latency.measure import LatencyReport, LatencyStats, measure_latency
from pytest_mlops.errors import CheckError, ReportError, choices_text, did_you_mean
from pytest_mlops.results import CheckResult, Op, Status, format_value

__all__ = ["CompareRule", "check_latency", "parse_compare_fail"]

STATS = (*PERCENTILES, "mean", "throughput")
_RULE = re.compile(r"^\s*([a-z0-9]+)\s*:\s*([0-9]*\.?[0-9]+)\s*(%|ms)\s*$")


@dataclass(frozen=True)
class CompareRule:
    """``p50:10%`` (relative) or ``p50:0.5ms`` (absolute): how much worse than the baseline fails."""

    stat: str
    amount: float
    relative: bool

    def limit(self, base: float) -> float:
        """The worst acceptable value given the baseline's *base*."""
        if self.stat == "throughput":
            return base * (1 - self.amount / 100) if self.relative else base - self.amount
        return base * (1 + self.amount / 100) if self.relative else base + self.amount

    def __str__(self) -> str:
        return f"{self.stat}:{self.amount:g}{'%' if self.relative else 'ms'}"


def parse_compare_fail(rules: str | Sequence[str]) -> tuple[CompareRule, ...]:
    """Parse ``"p50:10%"``, ``"p99:2ms"`` or a list of them (``throughput`` takes ``%`` only)."""
    items = [rules] if isinstance(rules, str) else list(rules)
    out = []
    for item in items:
        for part in str(item).split(","):
            match = _RULE.match(part.lower())
            if match is None:
                raise CheckError(
                    f"compare_fail {part.strip()!r}: expected STAT:AMOUNT% or STAT:AMOUNTms, "
                    "e.g. 'p50:10%' or 'p99:0.5ms'"
                )
            stat, amount, unit = match.groups()
            if stat not in STATS:
                raise CheckError(
                    f"compare_fail {part.strip()!r}: unknown statistic {stat!r}"
                    f"{did_you_mean(stat, STATS)}; valid ones are {choices_text(STATS)}"
                )
            if stat == "throughput" and unit != "%":
                raise CheckError(f"compare_fail {part.strip()!r}: throughput takes a percentage")
            out.append(CompareRule(stat, float(amount), unit == "%"))
    return tuple(out)


@dataclass(frozen=True)
class _Verdict:
    """One bound held against one batch size."""

    batch_size: int
    metric: str
    op: Op
    bound: float
    value: float
    status: Status
    note: str = ""

    def line(self) -> str:
        mark = {"passed": "ok", "failed": "FAILED", "inconclusive": "INCONCLUSIVE"}[self.status]
        text = (
            f"[{mark}] batch_size={self.batch_size}: {self.metric} {format_value(self.value)} "
            f"{self.op} {format_value(self.bound)}"
        )
        return f"{text} ({self.note})" if self.note else text

    def row(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "metric": self.metric,
            "value": self.value,
            "op": self.op,
            "bound": self.bound,
            "status": self.status,
        }


def check_latency(
    model: Any = None,
    sample: Any = None,
    *,
    report: LatencyReport | None = None,
    p50_ms: float | None = None,
    p90_ms: float | None = None,
    p95_ms: float | None = None,
    p99_ms: float | None = None,
    p999_ms: float | None = None,
    mean_ms: float | None = None,
    min_throughput: float | None = None,
    baseline: str | Path | LatencyReport | None = None,
    compare_fail: str | Sequence[str] = "p50:10%",
    allow_other_machine: bool = False,
    save_baseline: str | Path | None = None,
    name: str = "latency",
    **measure: Any,
) -> CheckResult:
    """Measure latency (or take a *report*) and hold it to bounds and to a baseline.

    Parameters
    ----------
    model, sample:
        What to measure, as for :func:`measure_latency` (ignored when *report* is given).
    report:
        A :class:`LatencyReport` measured earlier, judged as is.
    p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, mean_ms:
        Upper bounds in milliseconds, held at every batch size. A tail bound (p90 and up) is
        INCONCLUSIVE while there are too few runs for its upper confidence bound (e.g. 299 for p99
        at 95%); measuring stops once the highest bound asked for has settled.
    min_throughput:
        A floor in samples per second, at every batch size.
    baseline, compare_fail, allow_other_machine:
        A report saved by an earlier run (a path or a :class:`LatencyReport`) and how much worse
        fails: ``"p50:10%"`` (default: the median only), ``"p99:0.5ms"``, ``"throughput:5%"``
        or a list. A baseline from another machine, device or runtime is refused unless
        ``allow_other_machine=True``.
    save_baseline:
        Write this run's report here (after the comparison), for later runs to compare with.
    **measure:
        Passed to :func:`measure_latency` (``device``, ``batch_sizes``, ``scenario``, ...).

    Returns
    -------
    CheckResult
        Kind ``latency``; tables ``batches``, ``histogram`` and ``checks``.
    """
    given = _given_bounds(name, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, mean_ms)
    rules = parse_compare_fail(compare_fail) if baseline is not None else ()
    base = _load_baseline(baseline)
    if report is None:
        report = _measured(name, model, sample, given, rules, measure)
    verdicts = [v for stats in report for v in _bound_verdicts(stats, given, min_throughput)]
    notes: list[str] = []
    if base is not None:
        verdicts += _compare(report, base, rules, allow_other_machine, notes)
    if save_baseline is not None:
        notes.append(f"baseline written to {report.save(save_baseline)}")
    return _result(name, report, verdicts, notes)


def _given_bounds(
    name: str,
    p50_ms: float | None,
    p90_ms: float | None,
    p95_ms: float | None,
    p99_ms: float | None,
    p999_ms: float | None,
    mean_ms: float | None,
) -> dict[str, float]:
    """The bounds given (statistic -> milliseconds), each checked to be > 0."""
    bounds = {
        "p50": p50_ms,
        "p90": p90_ms,
        "p95": p95_ms,
        "p99": p99_ms,
        "p999": p999_ms,
        "mean": mean_ms,
    }
    given = {k: float(v) for k, v in bounds.items() if v is not None}
    for key, value in given.items():
        if value <= 0:
            raise CheckError(f"gate {name!r}: {key}_ms must be > 0, got {value:g}")
    return given


def _measured(
    name: str,
    model: Any,
    sample: Any,
    given: Mapping[str, float],
    rules: Sequence[CompareRule],
    measure: dict[str, Any],
) -> LatencyReport:
    """Measure *model*, until the highest bound asked for has settled unless told otherwise."""
    if model is None or sample is None:
        raise CheckError(f"gate {name!r}: give a model and a sample, or a measured report")
    measure.setdefault("stop_percentile", _stop_percentile(given, rules))
    return measure_latency(model, sample, **measure)


def _stop_percentile(given: Mapping[str, float], rules: Sequence[CompareRule]) -> float:
    """Measure until the highest percentile that is gated has settled (the median by default)."""
    asked = [PERCENTILES[k] for k in given if k in PERCENTILES]
    asked += [PERCENTILES[r.stat] for r in rules if r.stat in PERCENTILES]
    return max(asked, default=50.0)


def _load_baseline(baseline: str | Path | LatencyReport | None) -> LatencyReport | None:
    if baseline is None or isinstance(baseline, LatencyReport):
        return baseline
    path = Path(baseline)
    if not path.exists():
        raise ReportError(
            f"the latency baseline {str(path)!r} does not exist: write one with "
            f"save_baseline={str(path)!r} (or --mlops-set gates.<gate>.save_baseline=...)"
        )
    return LatencyReport.load(path)


def _bound_verdicts(
    stats: LatencyStats, given: Mapping[str, float], min_throughput: float | None
) -> list[_Verdict]:
    out = []
    for key, bound in given.items():
        value = stats.percentile(key)
        status: Status = "passed" if value <= bound else "failed"
        note = ""
        if key in PERCENTILES and PERCENTILES[key] > 50 and stats.upper_ms.get(key) is None:
            need = min_runs_for_bound(PERCENTILES[key], stats.confidence)
            status = "inconclusive"
            note = (
                f"{stats.n} runs are too few for the {stats.confidence:.0%} upper bound of "
                f"{key}: it needs {need}; raise max_duration_s"
            )
        out.append(_Verdict(stats.batch_size, f"{key}_ms", "<=", bound, value, status, note))
    if min_throughput is not None:
        value = stats.throughput
        status = "passed" if value >= min_throughput else "failed"
        out.append(_Verdict(stats.batch_size, "throughput", ">=", min_throughput, value, status))
    return out


def _check_comparable(
    report: LatencyReport, base: LatencyReport, allow_other_machine: bool, notes: list[str]
) -> None:
    """Refuse a baseline from another machine or scenario; note what changed since it."""
    differences = report.fingerprint.differences(base.fingerprint)
    if differences and not allow_other_machine:
        raise CheckError(
            "refusing to compare latencies with a baseline measured elsewhere: "
            + "; ".join(differences)
            + ". Measure a baseline on this machine, or set allow_other_machine = true"
        )
    if differences:
        notes.append(
            "baseline from another machine (allow_other_machine): " + "; ".join(differences)
        )
    if report.scenario != base.scenario:
        raise CheckError(
            f"the baseline was measured in the {base.scenario!r} scenario, this run in "
            f"{report.scenario!r}: they are not comparable"
        )
    changes = report.fingerprint.version_changes(base.fingerprint)
    if changes:
        notes.append("software changed since the baseline: " + ", ".join(changes))


def _rule_verdict(stats: LatencyStats, old: LatencyStats, rule: CompareRule) -> _Verdict:
    """One comparison rule held against one batch size's baseline."""
    before = old.percentile(rule.stat)
    limit = rule.limit(before)
    value = stats.percentile(rule.stat)
    op: Op = ">=" if rule.stat == "throughput" else "<="
    ok = value >= limit if op == ">=" else value <= limit
    metric = "throughput" if rule.stat == "throughput" else f"{rule.stat}_ms"
    note = f"baseline {format_value(before)}, {rule}"
    return _Verdict(
        stats.batch_size,
        f"{metric} vs baseline",
        op,
        limit,
        value,
        "passed" if ok else "failed",
        note,
    )


def _compare(
    report: LatencyReport,
    base: LatencyReport,
    rules: Sequence[CompareRule],
    allow_other_machine: bool,
    notes: list[str],
) -> list[_Verdict]:
    _check_comparable(report, base, allow_other_machine, notes)
    out: list[_Verdict] = []
    for stats in report:
        try:
            old = base[stats.batch_size]
        except KeyError:
            notes.append(f"the baseline has no batch_size={stats.batch_size}; not compared")
            continue
        out.extend(_rule_verdict(stats, old, rule) for rule in rules)
    if not out:
        out.append(
            _Verdict(
                0,
                "baseline",
                "==",
                0.0,
                float("nan"),
                "inconclusive",
                f"no batch size in common with the baseline {base.batch_sizes}",
            )
        )
    return out


def _context(report: LatencyReport) -> dict[str, Any]:
    fp = report.fingerprint
    return {
        "model": report.model,
        "device": fp.device,
        "backend": fp.backend,
        "scenario": report.scenario,
        "timer": report.timer,
        "batch_sizes": ",".join(str(b) for b in report.batch_sizes),
        "cpu": fp.cpu_model,
        "gpu": fp.gpu_name,
        "threads": fp.threads,
    }


def _result(
    name: str, report: LatencyReport, verdicts: Sequence[_Verdict], notes: Sequence[str]
) -> CheckResult:
    failed = [v for v in verdicts if v.status == "failed"]
    unsure = [v for v in verdicts if v.status == "inconclusive"]
    status: Status = "failed" if failed else "inconclusive" if unsure else "passed"
    pool = failed or unsure or list(verdicts)
    head = pool[0] if pool else None
    fp = report.fingerprint
    context = _context(report)
    if head is None:
        first = report.batches[0]
        where = f"batch_size={first.batch_size}, n={first.n}, device={fp.device}"
        message = f"p50_ms measured {format_value(first.p50_ms)} ({where})"
        metric, value, op, bound = "p50_ms", first.p50_ms, None, None
    else:
        stats = report[head.batch_size] if head.batch_size in report.batch_sizes else None
        where = f"batch_size={head.batch_size}, n={stats.n if stats else 0}, device={fp.device}"
        if report.scenario != "single_stream":
            where += f", scenario={report.scenario}"
        message = (
            f"{head.metric} must be {head.op} {format_value(head.bound)}: "
            f"measured {format_value(head.value)} ({where})"
            if head.metric != "baseline"
            else f"nothing to compare: {head.note} (device={fp.device})"
        )
        extra = len(failed or unsure) - 1
        if extra > 0:
            message += f"; {extra} more {'failed' if failed else 'inconclusive'}"
        metric, value, op, bound = head.metric, head.value, head.op, head.bound
    metrics = {
        f"{stat}[b={s.batch_size}]": s.percentile(stat)
        for s in report
        for stat in (*PERCENTILES, "mean", "std", "throughput")
    }
    details = "\n".join([*(v.line() for v in verdicts), *notes])
    return CheckResult(
        name=name,
        kind="latency",
        status=status,
        message=message,
        metric=metric,
        value=value,
        op=op,
        bound=bound,
        details=details,
        metrics=metrics,
        context=context,
        tables={
            "batches": report.rows(),
            "histogram": report.histogram_rows(),
            "checks": [v.row() for v in verdicts],
        },
    )
