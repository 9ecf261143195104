"""``schema`` gate: the columns the model needs are present, or the data conforms to a schema file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext

DATASET_CHOICES = ("current", "reference", "both")


def datasets_for(ctx: GateContext, which: str) -> list[str]:
    """The configured datasets a gate runs on: ``both`` means each one that is configured."""
    if which != "both":
        return [which]
    names = [n for n in ("reference", "current") if getattr(ctx.settings, n) is not None]
    return names or ["current"]


def run_schema(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a schema gate: a schema file, or the required columns, on each dataset."""
    from pytest_mlops.data.validation import check_columns

    which = datasets_for(ctx, params["dataset"])
    if params["path"] is not None:
        return _run_schema_file(ctx, params, which)
    required = list(params["required"] or ())
    if not required:
        signature = ctx.model.signature
        names = [n for n in (signature.names if signature else ()) if n not in ("X", "input")]
        required = names or list(ctx.dataset(which[0]).feature_names)
        if ctx.settings.target and ctx.settings.target not in required:
            required.append(ctx.settings.target)
    results = [check_columns(ctx.dataset(w), required, name=params["name"]) for w in which]
    return combine(results, "columns")


def _run_schema_file(ctx: GateContext, params: Mapping[str, Any], which: list[str]) -> CheckResult:
    from pytest_mlops.data.schema import check_schema, load_schema
    from pytest_mlops.data.validation import check_columns

    schema = load_schema(ctx.config.resolve_path(params["path"]))
    results = []
    for w in which:
        data = ctx.dataset(w)
        result = check_schema(data, schema, mostly=params["mostly"], name=params["name"])
        if params["required"]:
            extra = check_columns(data, list(params["required"]), name=params["name"])
            if extra.failed:
                result = combine([extra, result], "violations")
        results.append(result)
    return combine(results, "violations")


def combine(results: Sequence[CheckResult], table: str) -> CheckResult:
    """One result for a gate run on several datasets: failed if any failed, tables merged."""
    failed = [r for r in results if r.failed]
    first = (failed or results)[0]
    rows = [
        dict(row, split=r.context.get("split"))
        for r in results
        for name, table_rows in r.tables.items()
        for row in table_rows
        if name == table or len(r.tables) == 1
    ]
    return CheckResult(
        name=first.name,
        kind=first.kind,
        status=first.status,
        message="; ".join(r.message for r in (failed or results)),
        metric=first.metric,
        value=(min if first.op in (">=", ">") else max)(
            r.value or 0.0 for r in results if r.metric == first.metric
        ),
        op=first.op,
        bound=first.bound,
        details="\n".join(r.details for r in results if r.details),
        metrics=first.metrics,
        context={
            **first.context,
            "n": sum(int(r.context.get("n") or 0) for r in results),
            "split": "+".join(str(r.context.get("split")) for r in results),
        },
        tables={table: rows},
    )


SCHEMA = GateKind(
    name="schema",
    marker="data",
    help="the required columns are present; with 'path', the data conforms to a schema file",
    params=(
        Param(
            "required",
            "list[str]",
            "columns that must be present (default: the model's inputs and the target)",
        ),
        Param("dataset", "str", "which data to check", default="both", choices=DATASET_CHOICES),
        Param(
            "path",
            "str",
            "a schema file (JSON, from 'pytest-mlops schema infer') to validate the data "
            "against, relative to the config file",
        ),
        Param(
            "mostly",
            "number",
            "share of rows each tolerant rule must hold for (overrides the file's tolerance)",
            minimum=0.0,
            maximum=1.0,
        ),
    ),
    run=run_schema,
)

KINDS = (SCHEMA,)
