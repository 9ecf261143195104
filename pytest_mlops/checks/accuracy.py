"""Accuracy-type gates: a metric held to a bound."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_mlops.checks.metrics import get_metric, model_outputs, score
from pytest_mlops.errors import CheckError
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = ["check_accuracy"]


def check_accuracy(
    model: Model,
    data: Dataset,
    *,
    metric: str = "accuracy",
    min: float | None = None,
    max: float | None = None,
    name: str = "accuracy",
) -> CheckResult:
    """Compute *metric* of *model* on *data* and hold it to ``min``/``max``.

    Parameters
    ----------
    model:
        Any adapter from :func:`~pytest_mlops.load_model`.
    data:
        A :class:`~pytest_mlops.Dataset` with a target.
    metric:
        A name from :data:`~pytest_mlops.checks.metrics.METRICS` (``"roc_auc"``, ``"f1"``,
        ``"rmse"``...). Values equal scikit-learn's functions on the same predictions.
    min, max:
        Bounds on the metric; give the one that matters (``min`` for scores, ``max`` for losses).

    Returns
    -------
    CheckResult
        e.g. ``roc_auc must be >= 0.88: measured 0.861 (n=16281, split=current)``.
    """
    spec = get_metric(metric)
    if min is not None and max is not None and min > max:
        raise CheckError(f"gate {name!r}: min ({min}) is greater than max ({max})")
    outputs = model_outputs(model, data, spec.needs)
    value = score(spec, data.y.to_numpy(), outputs, model.classes)
    return CheckResult.threshold(
        name=name,
        kind="accuracy",
        metric=spec.name,
        value=value,
        min=min,
        max=max,
        context={"n": data.n_rows, "split": data.name, "model": model.name},
    )
