"""Structural checks on datasets."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_mlops.data.dataset import Dataset
from pytest_mlops.errors import did_you_mean
from pytest_mlops.results import CheckResult

__all__ = ["check_columns"]


def check_columns(data: Dataset, required: Sequence[str], *, name: str = "schema") -> CheckResult:
    """Every column in *required* is present in *data*.

    The result lists all missing columns (with the closest existing name), not only the first.
    """
    columns = [str(c) for c in data.frame.columns]
    missing = [c for c in required if c not in columns]
    context: dict[str, str | int | float | bool | None] = {
        "n": data.n_rows,
        "split": data.name,
        "columns": len(columns),
    }
    rows = [
        {"column": c, "present": c in columns, "hint": did_you_mean(c, columns).strip(" -")}
        for c in required
    ]
    if missing:
        listed = ", ".join(f"{c!r}{did_you_mean(c, columns)}" for c in missing)
        message = f"{len(missing)} of {len(required)} required columns missing in {data.describe()}: {listed}"
    else:
        message = f"all {len(required)} required columns present in {data.describe()}"
    return CheckResult(
        name=name,
        kind="schema",
        status="failed" if missing else "passed",
        message=message,
        metric="missing_columns",
        value=float(len(missing)),
        op="<=",
        bound=0.0,
        metrics={"missing_columns": float(len(missing)), "required_columns": float(len(required))},
        context=context,
        tables={"columns": rows},
    )
