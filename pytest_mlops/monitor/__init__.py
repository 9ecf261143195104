"""Drift monitoring that closes the loop: compare production with the reference, retrain on drift.

``pytest-mlops monitor`` (or :func:`run_monitor`) reads production data or the serving app's
prediction log, compares it with a stored :class:`~pytest_mlops.checks.drift.DriftProfile`, writes
a report and, on drift, runs a command or calls a webhook (a CI workflow dispatch). A trigger that
cannot be delivered is kept pending and delivered first by the next run. Exit codes for schedulers:
0 no drift, 1 drift (action ran), 2 bad input, 3 action failed (pending), 4 inconclusive.
"""

from __future__ import annotations

from pytest_mlops.monitor.current import read_current, read_prediction_log
from pytest_mlops.monitor.run import (
    EXIT_ACTION_FAILED,
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_INCONCLUSIVE,
    EXIT_NO_DRIFT,
    MonitorOptions,
    MonitorOutcome,
    options_from_config,
    run_monitor,
)
from pytest_mlops.monitor.triggers import PendingStore, Trigger, TriggerError, post_json

__all__ = [
    "EXIT_ACTION_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_DRIFT",
    "EXIT_INCONCLUSIVE",
    "EXIT_NO_DRIFT",
    "MonitorOptions",
    "MonitorOutcome",
    "PendingStore",
    "Trigger",
    "TriggerError",
    "options_from_config",
    "post_json",
    "read_current",
    "read_prediction_log",
    "run_monitor",
]
