"""Model-quality metrics by name, computed by scikit-learn so the numbers are sklearn's own."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_mlops.errors import CheckError, choices_text, did_you_mean

if TYPE_CHECKING:
    import numpy as np

    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = [
    "ALIASES",
    "METRICS",
    "Metric",
    "get_metric",
    "list_metrics",
    "model_outputs",
    "resampled",
    "score",
]

Needs = Literal["labels", "proba", "values"]


@dataclass(frozen=True)
class Metric:
    """A metric: what it needs from the model and which way is better."""

    name: str
    needs: Needs
    greater_is_better: bool
    compute: Callable[[Any, Any, Any], float]
    help: str
    bounds: tuple[float, float] = (0.0, 1.0)  # the values the metric can take


def _sk(name: str) -> Any:
    import sklearn.metrics

    return getattr(sklearn.metrics, name)


def _pos_label(classes: Any) -> Any:
    return None if classes is None or len(classes) != 2 else classes[1]


def _average_kwargs(classes: Any) -> dict[str, Any]:
    pos = _pos_label(classes)
    if classes is not None and len(classes) > 2:
        return {"average": "macro"}
    return {"pos_label": pos} if pos is not None else {}


def _proba_metric(fn: str) -> Callable[[Any, Any, Any], float]:
    def compute(y: Any, proba: Any, classes: Any) -> float:
        if fn in ("roc_auc_score",) and proba.shape[1] > 2:
            return float(_sk(fn)(y, proba, multi_class="ovr", labels=classes))
        if fn == "log_loss_":
            return float(_sk("log_loss")(y, proba, labels=classes))
        if proba.shape[1] != 2:
            raise CheckError(
                f"{fn} needs a binary classifier, the model has {proba.shape[1]} classes"
            )
        if fn == "brier_score_loss":
            return float(_sk(fn)(y, proba[:, 1], pos_label=classes[1]))
        if fn == "average_precision_score":
            return float(_sk(fn)(y, proba[:, 1], pos_label=classes[1]))
        return float(_sk(fn)(y, proba[:, 1]))

    return compute


def _label_metric(fn: str, averaged: bool) -> Callable[[Any, Any, Any], float]:
    def compute(y: Any, pred: Any, classes: Any) -> float:
        kwargs = _average_kwargs(classes) if averaged else {}
        return float(_sk(fn)(y, pred, **kwargs))

    return compute


def _ece(y: Any, proba: Any, classes: Any) -> float:
    import numpy as np

    from pytest_mlops.checks.weighted import prepare

    return float(prepare("ece", y, proba, classes)(np.ones((1, len(proba))))[0])


def _value_metric(fn: str, root: bool = False) -> Callable[[Any, Any, Any], float]:
    def compute(y: Any, pred: Any, classes: Any) -> float:
        value = float(_sk(fn)(y, pred))
        return value**0.5 if root else value

    return compute


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "accuracy",
            "labels",
            True,
            _label_metric("accuracy_score", False),
            "share of correct labels",
        ),
        Metric(
            "balanced_accuracy",
            "labels",
            True,
            _label_metric("balanced_accuracy_score", False),
            "mean recall over classes",
        ),
        Metric(
            "precision",
            "labels",
            True,
            _label_metric("precision_score", True),
            "precision (binary: of the positive class; multiclass: macro)",
        ),
        Metric(
            "recall",
            "labels",
            True,
            _label_metric("recall_score", True),
            "recall (binary: of the positive class; multiclass: macro)",
        ),
        Metric("f1", "labels", True, _label_metric("f1_score", True), "F1 (binary or macro)"),
        Metric(
            "roc_auc", "proba", True, _proba_metric("roc_auc_score"), "area under the ROC curve"
        ),
        Metric(
            "pr_auc",
            "proba",
            True,
            _proba_metric("average_precision_score"),
            "average precision (area under the precision-recall curve)",
        ),
        Metric(
            "log_loss", "proba", False, _proba_metric("log_loss_"), "cross-entropy", (0.0, math.inf)
        ),
        Metric("brier", "proba", False, _proba_metric("brier_score_loss"), "Brier score (binary)"),
        Metric(
            "ece",
            "proba",
            False,
            _ece,
            "expected calibration error: 10 equal-width bins of P(positive) (binary) or of the "
            "top-class probability (multiclass)",
        ),
        Metric(
            "mae",
            "values",
            False,
            _value_metric("mean_absolute_error"),
            "mean absolute error",
            (0.0, math.inf),
        ),
        Metric(
            "mse",
            "values",
            False,
            _value_metric("mean_squared_error"),
            "mean squared error",
            (0.0, math.inf),
        ),
        Metric(
            "rmse",
            "values",
            False,
            _value_metric("mean_squared_error", root=True),
            "root mean squared error",
            (0.0, math.inf),
        ),
        Metric(
            "r2",
            "values",
            True,
            _value_metric("r2_score"),
            "coefficient of determination",
            (-math.inf, 1.0),
        ),
    )
}
ALIASES = {
    "auc": "roc_auc",
    "average_precision": "pr_auc",
    "brier_score": "brier",
    "expected_calibration_error": "ece",
}


def get_metric(name: str) -> Metric:
    """The metric called *name*; a CheckError listing the valid names otherwise."""
    key = ALIASES.get(name, name)
    if key not in METRICS:
        raise CheckError(
            f"unknown metric {name!r}{did_you_mean(name, [*METRICS, *ALIASES])}; valid metrics are "
            f"{choices_text(METRICS)}"
        )
    return METRICS[key]


def model_outputs(model: Model, data: Dataset, needs: Needs) -> np.ndarray:
    """What *metric* needs from the model on *data*: labels, probabilities or values."""
    if needs == "proba":
        if not model.has_proba:
            raise CheckError(
                f"{getattr(model, 'name', 'the model')!r} has no probabilities, which this metric needs; "
                "use a label metric such as 'accuracy' or 'f1'"
            )
        return model.predict_proba(data.X)
    return model.predict(data.X)


def score(metric: Metric, y_true: Any, outputs: Any, classes: Any = None) -> float:
    """Compute *metric*; sklearn's errors become CheckErrors that name the metric."""
    import numpy as np

    if metric.needs == "proba" and classes is None:
        classes = np.unique(y_true)
    if metric.needs == "labels" and classes is None:
        classes = np.unique(np.concatenate([np.asarray(y_true), np.asarray(outputs)]))
    try:
        return metric.compute(y_true, outputs, classes)
    except CheckError:
        raise
    except (ValueError, TypeError) as exc:
        raise CheckError(f"cannot compute {metric.name}: {exc}") from None


def list_metrics(task: str | None = None) -> list[str]:
    """The metric names, optionally of one task (``"classification"`` or ``"regression"``)."""
    if task is None:
        return list(METRICS)
    wanted = {"classification": ("labels", "proba"), "regression": ("values",)}.get(task)
    if wanted is None:
        raise CheckError(f"task must be 'classification' or 'regression', got {task!r}")
    return [name for name, m in METRICS.items() if m.needs in wanted]


def resampled(metric: Metric, y_true: Any, outputs: Any, classes: Any = None) -> Any:
    """*metric* over blocks of bootstrap counts (see :mod:`pytest_mlops.checks.weighted`).

    Uses the same default classes as :func:`score`, so on the full data the two agree.
    """
    import numpy as np

    from pytest_mlops.checks.weighted import prepare

    if metric.needs == "proba" and classes is None:
        classes = np.unique(y_true)
    if metric.needs == "labels" and classes is None:
        classes = np.unique(np.concatenate([np.asarray(y_true), np.asarray(outputs)]))
    return prepare(metric.name, y_true, outputs, classes)
