"""Latency: percentiles per batch size on CPU and GPU, gated by bounds and by a baseline.

:func:`measure_latency` returns a :class:`LatencyReport` (one :class:`LatencyStats` per batch
size, with the machine's :class:`Fingerprint`); :func:`check_latency` turns one into a
:class:`~pytest_mlops.results.CheckResult`.
"""

from __future__ import annotations

from pytest_mlops.checks.latency._fingerprint import Fingerprint
from pytest_mlops.checks.latency.check import CompareRule, check_latency, parse_compare_fail
from pytest_mlops.checks.latency.measure import (
    LatencyReport,
    LatencyStats,
    Scenario,
    measure_latency,
)

__all__ = [
    "CompareRule",
    "Fingerprint",
    "LatencyReport",
    "LatencyStats",
    "Scenario",
    "check_latency",
    "measure_latency",
    "parse_compare_fail",
]
