"""``schema`` gate: the columns the model and the gates need are present."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlops.config import Param
from pytest_mlops.gates import GateContext, GateKind, register
from pytest_mlops.results import CheckResult

DATASET_CHOICES = ("current", "reference", "both")


def datasets_for(ctx: GateContext, which: str) -> list[str]:
    """The configured datasets a gate runs on: ``both`` means each one that is configured."""
    if which != "both":
        return [which]
    names = [n for n in ("reference", "current") if getattr(ctx.settings, n) is not None]
    return names or ["current"]


def run_schema(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    from pytest_mlops.data.validation import check_columns

    required = list(params["required"] or ())
    if not required:
        signature = ctx.model.signature
        names = [n for n in (signature.names if signature else ()) if n not in ("X", "input")]
        required = names or list(ctx.dataset(datasets_for(ctx, params["dataset"])[0]).feature_names)
        if ctx.settings.target and ctx.settings.target not in required:
            required.append(ctx.settings.target)
    results = [
        check_columns(ctx.dataset(which), required, name=params["name"])
        for which in datasets_for(ctx, params["dataset"])
    ]
    failed = [r for r in results if r.failed]
    first = (failed or results)[0]
    return CheckResult(
        name=first.name,
        kind="schema",
        status=first.status,
        message="; ".join(r.message for r in (failed or results)),
        metric=first.metric,
        value=max(r.value or 0.0 for r in results),
        op=first.op,
        bound=first.bound,
        metrics=first.metrics,
        context={
            "n": sum(int(r.context["n"] or 0) for r in results),
            "split": "+".join(str(r.context["split"]) for r in results),
        },
        tables={
            "columns": [
                dict(row, split=r.context["split"]) for r in results for row in r.tables["columns"]
            ]
        },
    )


register(
    GateKind(
        name="schema",
        marker="data",
        help="the required columns are present in the reference and current data",
        params=(
            Param(
                "required",
                "list[str]",
                "columns that must be present (default: the model's inputs and the target)",
            ),
            Param("dataset", "str", "which data to check", default="both", choices=DATASET_CHOICES),
        ),
        run=run_schema,
    )
)
