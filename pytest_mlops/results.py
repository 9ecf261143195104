"""Results as data: every check returns a :class:`CheckResult`.

The terminal summary, the JUnit properties and the JSON report (and the Markdown and HTML reports)
are renderings of the same frozen objects, so they can never disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

__all__ = ["CheckResult", "Op", "Status", "format_value"]

Status = Literal["passed", "failed", "inconclusive"]
Op = Literal[">=", "<=", ">", "<", "=="]

STATUSES: tuple[Status, ...] = get_args(Status)
OPS: tuple[Op, ...] = get_args(Op)

JSONScalar = str | int | float | bool | None
Row = Mapping[str, Any]


def format_value(value: float | None) -> str:
    """Format a measured number the way messages show it (4 significant digits)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _satisfies(value: float, op: Op, bound: float) -> bool:
    if math.isnan(value):
        return False
    return {
        ">=": value >= bound,
        "<=": value <= bound,
        ">": value > bound,
        "<": value < bound,
        "==": value == bound,
    }[op]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Parameters
    ----------
    name:
        The gate or check name, e.g. ``"accuracy"`` or ``"fairness_sex"``.
    kind:
        The family: ``"schema"``, ``"accuracy"``, ``"fairness"``, ``"drift"``, ``"latency"``...
    status:
        ``"passed"``, ``"failed"`` or ``"inconclusive"`` (the data cannot decide).
    message:
        One line that states the verdict with the bound, the measured value and the context, e.g.
        ``roc_auc must be >= 0.88: measured 0.861 (n=16281, split=current)``.
    metric, value, op, bound:
        The gated quantity, its measured value and the bound it was held to.
    details:
        Free text shown under the message (e.g. the list of violations).
    metrics:
        Every number the check measured, by name (gated or not).
    context:
        Where the numbers come from: ``n``, ``split``, ``model``, ``seed``...
    tables:
        Named tables of rows (per group, per column, per batch size) for the reports.
    """

    name: str
    kind: str
    status: Status
    message: str
    metric: str | None = None
    value: float | None = None
    op: Op | None = None
    bound: float | None = None
    details: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    context: Mapping[str, JSONScalar] = field(default_factory=dict)
    tables: Mapping[str, Sequence[Row]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}: got {self.status!r}")
        if self.op is not None and self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}: got {self.op!r}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"

    @property
    def bound_text(self) -> str:
        """The bound as shown in tables: ``">= 0.88"`` or ``""``."""
        if self.op is None or self.bound is None:
            return ""
        return f"{self.op} {format_value(self.bound)}"

    @property
    def value_text(self) -> str:
        """The measured value as shown in tables: ``"roc_auc=0.905"`` or ``""``."""
        if self.value is None:
            return ""
        label = f"{self.metric}=" if self.metric else ""
        return f"{label}{format_value(self.value)}"

    @classmethod
    def threshold(
        cls,
        *,
        name: str,
        kind: str,
        metric: str,
        value: float,
        min: float | None = None,
        max: float | None = None,
        context: Mapping[str, JSONScalar] | None = None,
        metrics: Mapping[str, float] | None = None,
        details: str = "",
        tables: Mapping[str, Sequence[Row]] | None = None,
    ) -> CheckResult:
        """Hold *value* to ``min <= value <= max`` and state the verdict in one line.

        With both bounds the failing one is reported; with neither the result passes and only
        records the measurement.
        """
        value = float(value)
        op: Op | None = None
        bound: float | None = None
        ok = True
        for candidate_op, candidate in ((">=", min), ("<=", max)):
            if candidate is None:
                continue
            holds = _satisfies(value, cast(Op, candidate_op), float(candidate))
            if op is None or not holds:
                op, bound = cast(Op, candidate_op), float(candidate)
            if not holds:
                ok = False
                break
        ctx = dict(context or {})
        suffix = f" ({', '.join(f'{k}={v}' for k, v in ctx.items())})" if ctx else ""
        if op is None:
            message = f"{metric} measured {format_value(value)}{suffix}"
        else:
            message = f"{metric} must be {op} {format_value(bound)}: measured {format_value(value)}{suffix}"
        return cls(
            name=name,
            kind=kind,
            status="passed" if ok else "failed",
            message=message,
            metric=metric,
            value=value,
            op=op,
            bound=bound,
            details=details,
            metrics=dict(metrics or {metric: value}),
            context=ctx,
            tables=dict(tables or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "message": self.message,
            "metric": self.metric,
            "value": _json_float(self.value),
            "op": self.op,
            "bound": _json_float(self.bound),
            "details": self.details,
            "metrics": {k: _json_float(v) for k, v in self.metrics.items()},
            "context": dict(self.context),
            "tables": {k: [_json_row(r) for r in rows] for k, rows in self.tables.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. read from a JSON report)."""
        try:
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                status=data["status"],
                message=str(data["message"]),
                metric=data.get("metric"),
                value=_from_json_float(data.get("value")),
                op=data.get("op"),
                bound=_from_json_float(data.get("bound")),
                details=str(data.get("details", "")),
                metrics={k: _from_json_float(v) for k, v in dict(data.get("metrics", {})).items()},
                context=dict(data.get("context", {})),
                tables={k: [dict(r) for r in v] for k, v in dict(data.get("tables", {})).items()},
            )
        except KeyError as exc:
            raise ValueError(f"a check result needs the key {exc.args[0]!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> CheckResult:
        return cls.from_dict(json.loads(text))


def _json_float(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as strings so nothing is lost."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _from_json_float(value: Any) -> Any:
    if isinstance(value, str) and value in {"nan", "inf", "-inf"}:
        return float(value)
    return value


def _json_row(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):  # numpy scalars
            value = value.item()
        out[str(key)] = _json_float(value)
    return out
