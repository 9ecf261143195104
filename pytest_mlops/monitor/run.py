"""One monitoring run: deliver pending triggers, compare, report, trigger retraining on drift."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_mlops._files import probe_writable
from pytest_mlops.checks.drift import DriftProfile
from pytest_mlops.config import Param, find_config_file, load_config, validate_params
from pytest_mlops.engines.current import compare_on_engine as compare_where_it_lives
from pytest_mlops.engines.current import open_current
from pytest_mlops.engines.spark import parse_conf
from pytest_mlops.errors import ConfigError, DataError, MlopsError
from pytest_mlops.monitor.current import (
    is_prediction_log,
    read_prediction_log,
    split_tensor_column,
)
from pytest_mlops.monitor.triggers import (
    WEBHOOK_FORMATS,
    PendingStore,
    Trigger,
    TriggerError,
    WebhookFormat,
    deliver,
    failed,
    stamped,
)
from pytest_mlops.report.json import ReportEntry, build_report, write_report
from pytest_mlops.results import CheckResult

__all__ = [
    "EXIT_ACTION_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_DRIFT",
    "EXIT_INCONCLUSIVE",
    "EXIT_NO_DRIFT",
    "MONITOR_PARAMS",
    "MonitorOptions",
    "MonitorOutcome",
    "options_from_config",
    "run_monitor",
]

#: Exit codes for schedulers (cron, CI schedules, Airflow...).
EXIT_NO_DRIFT = 0  # no drift: nothing to do
EXIT_DRIFT = 1  # drift detected; the configured action ran (or none is configured)
EXIT_BAD_INPUT = 2  # the profile, the data, a setting or the report path is wrong: nothing
#                     was triggered
EXIT_ACTION_FAILED = 3  # the action failed: kept as pending, delivered first by the next run;
#                         or drift was acted on but the report could not be written
EXIT_INCONCLUSIVE = 4  # the data cannot decide: nothing triggered (unless told to)

#: ``[tool.pytest_mlops.monitor]`` keys (paths relative to the config file).
MONITOR_PARAMS: tuple[Param, ...] = (
    Param("profile", "str", "the reference profile written by DriftProfile.save"),
    Param("current", "str", "production data (CSV/Parquet) or the serving app's prediction log"),
    Param("on_drift_run", "str", "command to run on drift (e.g. the retraining job)"),
    Param("on_drift_webhook", "str", "URL to POST to on drift (e.g. a CI workflow dispatch)"),
    Param("webhook_format", "str", "webhook body", default="generic", choices=WEBHOOK_FORMATS),
    Param("webhook_token_env", "str", "environment variable holding the webhook token"),
    Param("webhook_ref", "str", "git ref the dispatched workflow runs on", default="main"),
    Param(
        "trigger_on_inconclusive", "bool", "also trigger on an inconclusive verdict", default=False
    ),
    Param("report", "str", "write the monitor's JSON report here"),
    Param("state", "str", "directory of pending triggers", default=".pytest-mlops/monitor"),
    Param("retries", "int", "webhook retries after the first attempt", default=4, minimum=0),
    Param("timeout_s", "number", "seconds per webhook attempt", default=10.0, minimum=0.001),
    Param("backoff_s", "number", "first retry delay, doubled each time", default=1.0, minimum=0),
    Param("command_timeout_s", "number", "seconds the on-drift command may run", minimum=0.001),
    Param("drift", "table", "settings passed to DriftProfile.compare", default={}),
    Param("encoding", "str", "text encoding of CSV and log files", default="utf-8"),
    Param(
        "engine",
        "str",
        "where to summarise the current data: native (this process), spark or dask",
        default="native",
        choices=("native", "spark", "dask"),
    ),
    Param("spark_conf", "table", "Spark settings for --engine spark (key = value)", default={}),
    Param("dask_scheduler", "str", "address of a Dask scheduler for --engine dask"),
)
_PATHS = ("profile", "current", "report", "state")


@dataclass(frozen=True)
class MonitorOptions:
    """Resolved monitor settings (see :data:`MONITOR_PARAMS` for their meaning)."""

    profile: str | None = None
    current: str | None = None
    on_drift_run: str | None = None
    on_drift_webhook: str | None = None
    webhook_format: WebhookFormat = "generic"
    webhook_token_env: str | None = None
    webhook_ref: str = "main"
    trigger_on_inconclusive: bool = False
    report: str | None = None
    state: str = ".pytest-mlops/monitor"
    retries: int = 4
    timeout_s: float = 10.0
    backoff_s: float = 1.0
    command_timeout_s: float | None = None
    drift: Mapping[str, Any] = field(default_factory=dict)
    encoding: str = "utf-8"
    engine: str = "native"
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    dask_scheduler: str | None = None


@dataclass(frozen=True)
class MonitorOutcome:
    """What a run found and did; ``exit_code`` is what the CLI returns."""

    exit_code: int
    result: CheckResult | None = None
    triggered: tuple[str, ...] = ()
    pending: int = 0
    errors: tuple[str, ...] = ()


Comparer = Callable[["pd.DataFrame | Path", MonitorOptions], CheckResult]


def options_from_config(
    table: Mapping[str, Any], overrides: Mapping[str, Any], *, base_dir: Path, source: str
) -> MonitorOptions:
    """Validate ``[tool.pytest_mlops.monitor]`` and layer command-line *overrides* on it."""
    values: dict[str, Any] = {}
    for layer, where in ((table, f"{source} [monitor]"), (overrides, "the command line")):
        for key, value in validate_params(
            MONITOR_PARAMS, layer, where, what="monitor setting"
        ).items():
            if key in _PATHS and layer is table:
                value = str(_resolve(base_dir, value))
            values[key] = dict(value) if key in ("drift", "spark_conf") else value
    return MonitorOptions(**values)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def compare_with_profile(current: pd.DataFrame | Path, options: MonitorOptions) -> CheckResult:
    """The default comparer: ``DriftProfile.load(profile).compare(current, **drift)``.

    A data file is compared chunk by chunk (bounded memory). A prediction log is compared on the
    profile's columns that it holds: it also holds outputs, and lacks the target.
    """
    assert options.profile is not None  # noqa: S101 - a type the caller guarantees
    profile = DriftProfile.load(options.profile)
    settings = dict(options.drift)
    if not isinstance(current, Path):
        known = [c for c in profile.columns if c in current.columns]
        if not known:
            current = split_tensor_column(current, list(profile.columns), options.current)
            known = [c for c in profile.columns if c in current.columns]
        if not known:
            raise DataError(
                f"the prediction log {options.current!r} has none of the profile's columns "
                f"({', '.join(list(profile.columns)[:8])}...)"
            )
        current = current[known]
        settings.setdefault("columns", known)  # e.g. the target is not logged
    return profile.compare(current, **settings)


def compare_on_engine(current: pd.DataFrame | Path, options: MonitorOptions) -> CheckResult:
    """The comparer for ``--engine spark|dask``: the current data summarised where it lives."""
    assert options.profile is not None  # noqa: S101 - a type the caller guarantees
    assert options.current is not None  # noqa: S101 - a type the caller guarantees
    profile = DriftProfile.load(options.profile)
    frame = open_current(
        options.engine,
        options.current,
        spark_conf={str(k): str(v) for k, v in options.spark_conf.items()},
        dask_scheduler=options.dask_scheduler,
    )
    result: CheckResult = compare_where_it_lives(profile, frame, options.drift)
    return result


def run_monitor(
    options: MonitorOptions,
    *,
    compare: Comparer | None = None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> MonitorOutcome:
    """Run the monitor once.

    1. Deliver triggers left pending by earlier runs.
    2. Read the current data (a file or a prediction log) and compare it with the profile.
    3. Write the JSON report, if asked.
    4. On drift (or on an inconclusive verdict with ``trigger_on_inconclusive``) run the action;
       what cannot be delivered is kept pending.

    Nothing is triggered when the profile or the data cannot be read: the exit code says
    :data:`EXIT_BAD_INPUT` and the message names the file.
    """
    store = PendingStore(options.state)
    try:
        _inputs(options)  # before the state is touched: a wrong setting changes nothing
        with store.locked():
            return _run_locked(options, store, compare, log, sleep)
    except MlopsError as exc:
        log(f"monitor: error: {exc}")
        return MonitorOutcome(EXIT_BAD_INPUT, errors=(str(exc),))


def _run_locked(
    options: MonitorOptions,
    store: PendingStore,
    compare: Comparer | None,
    log: Callable[[str], None],
    sleep: Callable[[float], None] | None,
) -> MonitorOutcome:
    delivery: dict[str, Any] = {
        "retries": options.retries,
        "timeout_s": options.timeout_s,
        "backoff_s": options.backoff_s,
        "command_timeout_s": options.command_timeout_s,
        "log": log,
        "sleep": sleep or time.sleep,
    }
    delivered_now, still_pending, errors = _deliver_pending(store, delivery, log)
    try:
        if options.report:
            probe_writable(Path(options.report), what="the monitor report (--report)")
        result = _measure(options, compare)
    except MlopsError as exc:
        log(f"monitor: error: {exc}")
        log("monitor: nothing triggered (the data could not be judged)")
        return MonitorOutcome(
            EXIT_BAD_INPUT, pending=len(still_pending), errors=(*errors, str(exc))
        )
    verdict = {"passed": "NO DRIFT", "failed": "DRIFT", "inconclusive": "INCONCLUSIVE"}[
        result.status
    ]
    log(f"monitor: {verdict} - {result.message}")
    reported = _report(options, result, log, errors)
    act = result.failed or (result.inconclusive and options.trigger_on_inconclusive)
    triggered: list[str] = []
    if act:
        told = options if reported else replace(options, report=None)  # the summary's report
        triggered = _act(told, result, store, delivered_now, still_pending, errors, delivery)
    elif result.inconclusive:
        log("monitor: inconclusive: nothing triggered (--trigger-on-inconclusive to act)")
    if act:
        code = EXIT_ACTION_FAILED if still_pending or not reported else EXIT_DRIFT
    else:
        code = EXIT_INCONCLUSIVE if result.inconclusive else EXIT_NO_DRIFT
        if still_pending:
            code = EXIT_ACTION_FAILED
        elif not reported:
            code = EXIT_BAD_INPUT
    return MonitorOutcome(code, result, tuple(triggered), len(still_pending), tuple(errors))


def _act(
    options: MonitorOptions,
    result: CheckResult,
    store: PendingStore,
    delivered_now: list[Trigger],
    still_pending: list[Trigger],
    errors: list[str],
    delivery: Mapping[str, Any],
) -> list[str]:
    """Deliver the configured triggers; what fails is kept pending (the store is saved)."""
    log: Callable[[str], None] = delivery["log"]
    triggers = _triggers(options, result)
    if not triggers:
        log("monitor: no action configured (--on-drift-run or --on-drift-webhook)")
    triggered: list[str] = []
    for trigger in map(stamped, triggers):
        if any(_same_action(trigger, done) for done in delivered_now):
            log(f"monitor: {trigger.describe} already triggered by a pending trigger this run")
            continue
        try:
            deliver(trigger, **delivery)
        except TriggerError as exc:
            errors.append(str(exc))
            still_pending.append(failed(trigger, str(exc)))
            log(f"monitor: error: {exc}")
            log(f"monitor: kept as pending in {store.path}; the next run delivers it first")
            continue
        triggered.append(trigger.describe)
        log(f"monitor: triggered {trigger.describe}")
    store.save(still_pending)
    return triggered


def _report(
    options: MonitorOptions, result: CheckResult, log: Callable[[str], None], errors: list[str]
) -> bool:
    """Write the report before acting (the action may read it).

    A report that cannot be written is an error of the run, but never stops the action: a
    detected drift's trigger is not lost.
    """
    if not options.report:
        return True
    try:
        _write_report(options, result)
    except MlopsError as exc:
        errors.append(str(exc))
        log(f"monitor: error: {exc}")
        return False
    log(f"monitor: report written to {options.report}")
    return True


def _deliver_pending(
    store: PendingStore, delivery: Mapping[str, Any], log: Callable[[str], None]
) -> tuple[list[Trigger], list[Trigger], list[str]]:
    pending = store.load()
    done: list[Trigger] = []
    left: list[Trigger] = []
    errors: list[str] = []
    for trigger in map(stamped, pending):
        log(f"monitor: delivering a pending trigger from {trigger.created}: {trigger.describe}")
        try:
            deliver(trigger, **delivery)
        except TriggerError as exc:
            errors.append(str(exc))
            left.append(failed(trigger, str(exc)))
            log(f"monitor: error: {exc} (still pending)")
            continue
        done.append(trigger)
        log(f"monitor: delivered the pending trigger {trigger.id[:8]}")
    if pending:
        store.save(left)
    return done, left, errors


def _same_action(a: Trigger, b: Trigger) -> bool:
    return (a.kind, a.target) == (b.kind, b.target)


def _measure(options: MonitorOptions, compare: Comparer | None) -> CheckResult:
    current = _inputs(options)
    if compare is None:
        compare = compare_with_profile if options.engine == "native" else compare_on_engine
    if not is_prediction_log(current):
        return compare(current, options)
    if options.engine != "native":
        raise ConfigError(
            f"--engine {options.engine}: reads Parquet (or Delta) tables; a prediction log "
            f"({options.current!r}) is read with the native engine"
        )
    return compare(read_prediction_log(current, encoding=options.encoding), options)


def _inputs(options: MonitorOptions) -> Path:
    """The current data's path, once the profile and the data are named and exist."""
    if not options.profile:
        raise ConfigError(
            "no profile: pass --profile or set 'profile' in [tool.pytest_mlops.monitor]"
        )
    if not options.current:
        raise ConfigError(
            "no current data: pass --current or set 'current' in [tool.pytest_mlops.monitor]"
        )
    if not Path(options.profile).exists():
        raise ConfigError(f"--profile: the file {options.profile!r} does not exist")
    current = Path(options.current)
    remote = "://" in options.current  # a lake URI the engine reads (s3a://, abfss://...)
    if not remote and not current.exists():
        raise DataError(f"--current: the file {options.current!r} does not exist")
    return current


def _summary(options: MonitorOptions, result: CheckResult) -> dict[str, Any]:
    drifted = [
        str(row.get("column")) for row in result.tables.get("columns", ()) if row.get("drifted")
    ]
    return {
        "status": result.status,
        "message": result.message,
        "drifted_columns": drifted,
        "metrics": {k: v for k, v in result.metrics.items()},
        "profile": options.profile,
        "current": options.current,
        "report": options.report,
    }


def _triggers(options: MonitorOptions, result: CheckResult) -> list[Trigger]:
    summary = _summary(options, result)
    out = []
    if options.on_drift_run:
        out.append(Trigger("command", options.on_drift_run, summary))
    if options.on_drift_webhook:
        out.append(
            Trigger(
                "webhook",
                options.on_drift_webhook,
                summary,
                webhook_format=options.webhook_format,
                token_env=options.webhook_token_env,
                ref=options.webhook_ref,
            )
        )
    return out


def _write_report(options: MonitorOptions, result: CheckResult) -> None:
    outcome = "passed" if result.passed else "failed"
    report = build_report([ReportEntry("monitor::drift", outcome, result)], exitstatus=None)
    report["project"] = {"profile": options.profile, "current": options.current}
    write_report(Path(options.report or "monitor-report.json"), report)


# --- command line --------------------------------------------------------------------------------


def add_monitor(sub: Any) -> None:
    """Register ``pytest-mlops monitor`` on the CLI's subparsers."""
    parser = sub.add_parser(
        "monitor",
        help="compare production data with the reference profile; trigger retraining on drift",
        description="Exit codes: 0 no drift, 1 drift (action ran), 2 bad input (nothing "
        "triggered), 3 the action failed (kept pending, retried by the next run) or, on drift, the "
        "report could not be written (the action still ran), 4 inconclusive "
        "(nothing triggered unless --trigger-on-inconclusive). Settings may also live in "
        "[tool.pytest_mlops.monitor].",
    )
    parser.add_argument("--config", help="mlops.toml or pyproject.toml (default: found in .)")
    parser.add_argument("--profile", help="the reference profile (DriftProfile.save)")
    parser.add_argument(
        "--current", help="production data: CSV/Parquet, or a prediction log (.jsonl)"
    )
    action = parser.add_argument_group("on drift")
    action.add_argument("--on-drift-run", metavar="CMD", help="run this command (no shell)")
    action.add_argument("--on-drift-webhook", metavar="URL", help="POST JSON to this URL")
    action.add_argument(
        "--webhook-format",
        choices=WEBHOOK_FORMATS,
        help="body: generic (default), github (workflow dispatch), gitlab (pipeline trigger)",
    )
    action.add_argument(
        "--webhook-token-env", metavar="VAR", help="environment variable with the token"
    )
    action.add_argument("--webhook-ref", metavar="REF", help="git ref to dispatch (default main)")
    action.add_argument(
        "--trigger-on-inconclusive",
        action="store_true",
        default=None,
        help="also act on an inconclusive verdict",
    )
    action.add_argument(
        "--retries", type=int, help="webhook retries after the first attempt (default 4)"
    )
    action.add_argument(
        "--timeout", dest="timeout_s", type=float, help="seconds per webhook attempt (default 10)"
    )
    parser.add_argument(
        "--report", help="write the JSON report here (render it with pytest-mlops report)"
    )
    parser.add_argument(
        "--state", help="directory of pending triggers (default .pytest-mlops/monitor)"
    )
    _add_engine_arguments(parser)
    parser.set_defaults(func=_cmd_monitor)


def _add_engine_arguments(parser: Any) -> None:
    """--engine, --spark-conf, --dask-scheduler."""
    engines = parser.add_argument_group("engines (past one machine)")
    engines.add_argument(
        "--engine",
        choices=("native", "spark", "dask"),
        help="summarise the current data in this process (native, default), on Spark or on Dask",
    )
    engines.add_argument(
        "--spark-conf",
        action="append",
        metavar="KEY=VALUE",
        help="a Spark setting (repeatable), e.g. spark.master=yarn",
    )
    engines.add_argument("--dask-scheduler", metavar="ADDRESS", help="a Dask scheduler to use")


def _cmd_monitor(args: argparse.Namespace) -> int:
    here = Path.cwd()
    path = find_config_file(here, args.config)
    project = load_config(path) if path is not None else None
    table = dict(project.settings.monitor) if project is not None else {}
    overrides = {f.name: getattr(args, f.name, None) for f in fields(MonitorOptions)}
    overrides.pop("drift", None)
    overrides.pop("encoding", None)
    if args.spark_conf:
        overrides["spark_conf"] = {**table.get("spark_conf", {}), **parse_conf(args.spark_conf)}
    else:
        overrides.pop("spark_conf", None)
    options = options_from_config(
        table,
        overrides,
        base_dir=project.base_dir if project is not None else here,
        source=project.source if project is not None else "config",
    )
    if project is not None and options.encoding == "utf-8" and project.settings.encoding != "utf-8":
        options = replace(options, encoding=project.settings.encoding)
    outcome = run_monitor(options, log=lambda line: print(line, flush=True))
    return outcome.exit_code
