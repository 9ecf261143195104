"""Champion/challenger: whether a candidate model is not worse than the baseline on the same rows.

Both models score the same rows; the uncertainty of the metric difference comes from a paired
bootstrap (each resample scores both models on the same rows), so what the rows have in common
cancels. The verdict is a non-inferiority test with a margin ``m`` on the difference
``d = candidate - baseline`` (for losses, where lower is better, the signs flip):

* PASSED       the whole interval is at or above ``-m``: not worse by more than ``m``
* FAILED       the whole interval is below ``-m``: the candidate is worse by more than ``m``
* INCONCLUSIVE the interval straddles ``-m``: these rows cannot decide

Between two equally good models FAILED happens with probability at most ``(1 - confidence) / 2``
(2.5% at the default 95%). For classifiers McNemar's exact test on the discordant predicted labels
is reported as well (a two-sided test of equal accuracy; it does not decide the verdict).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.metrics import Metric, get_metric, model_outputs, resampled, score
from pytest_mlops.errors import CheckError, DataError, ModelError
from pytest_mlops.results import CheckResult, Op, Status, format_value

if TYPE_CHECKING:
    import numpy as np

    from pytest_mlops.checks.stats import Interval
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model, Signature

__all__ = ["McNemar", "check_comparable", "compare_models", "mcnemar", "non_inferiority"]


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs of two classifiers on the same rows and the exact test's p-value."""

    only_candidate: int
    only_baseline: int
    p_value: float


def mcnemar(y: Any, candidate_pred: Any, baseline_pred: Any) -> McNemar:
    """McNemar's exact test: rows only the candidate gets right vs rows only the baseline does."""
    import numpy as np

    from pytest_mlops.checks.stats import mcnemar_exact

    y = np.asarray(y)
    right_c = np.asarray(candidate_pred) == y
    right_b = np.asarray(baseline_pred) == y
    only_c = int(np.sum(right_c & ~right_b))
    only_b = int(np.sum(~right_c & right_b))
    return McNemar(only_c, only_b, mcnemar_exact(only_c, only_b))


def non_inferiority(interval: Interval, margin: float, *, greater_is_better: bool = True) -> Status:
    """The verdict on a ``candidate - baseline`` interval with a non-inferiority *margin*."""
    if greater_is_better:
        if interval.low >= -margin:
            return "passed"
        return "failed" if interval.high < -margin else "inconclusive"
    if interval.high <= margin:
        return "passed"
    return "failed" if interval.low > margin else "inconclusive"


def _width(signature: Signature) -> int | None:
    """A single-tensor model's feature count; ``None`` for a model of named inputs."""
    inputs = signature.inputs
    if len(inputs) == 1 and len(inputs[0].shape) >= 2:
        width = inputs[0].shape[1]
        return width if isinstance(width, int) else None
    return None


def check_comparable(candidate: Model, baseline: Model) -> None:
    """Raise a ModelError when the two models cannot score the same rows.

    Models of named inputs (one per column) each take their own columns from the data, so a
    candidate with other features than the model in production compares with it on the same
    rows (a column the data lacks is an error naming it when the model scores). Single-tensor
    models take the data's features in order, so they must take as many; and both models must
    predict the same classes.
    """
    if candidate.signature is None or baseline.signature is None:
        return
    width_c, width_b = _width(candidate.signature), _width(baseline.signature)
    where = f"the baseline {baseline.name!r} and the candidate {candidate.name!r}"
    if width_c is not None and width_b is not None and width_c != width_b:
        raise ModelError(
            f"{where} take different inputs: {width_b} features for the baseline, {width_c} for "
            "the candidate; single-tensor models are compared on the same features"
        )
    classes_c, classes_b = candidate.classes, baseline.classes
    if (
        classes_c is not None
        and classes_b is not None
        and [str(c) for c in classes_c] != [str(c) for c in classes_b]
    ):
        raise ModelError(
            f"{where} predict different classes: {list(classes_b)} vs {list(classes_c)}"
        )


def _outputs(model: Model, role: str, data: Dataset, needs: Any) -> np.ndarray:
    try:
        return model_outputs(model, data, needs)
    except (DataError, ModelError) as exc:
        raise ModelError(
            f"the {role} model {model.name!r} cannot score {data.describe()}: {exc}"
        ) from None


def compare_models(
    candidate: Any,
    baseline: Any,
    data: Dataset,
    *,
    metric: str = "accuracy",
    margin: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    name: str = "champion",
) -> CheckResult:
    """Champion/challenger: hold ``metric(candidate) - metric(baseline)`` to ``>= -margin``.

    Parameters
    ----------
    candidate, baseline:
        Models (or anything :func:`~pytest_mlops.load_model` takes). Models of named inputs
        may take different columns of *data*; single-tensor models must take as many features.
    data:
        The rows both models score, with a target.
    metric:
        A metric name (see :func:`~pytest_mlops.list_metrics`); for losses the difference must
        stay below ``+margin`` instead.
    margin:
        The non-inferiority margin, in the metric's units (``0.005`` = half a point of AUC).
    confidence, n_resamples, seed:
        The paired percentile bootstrap of the difference.

    Returns
    -------
    CheckResult
        PASSED / FAILED / INCONCLUSIVE (see the module docstring), with ``metrics`` ``candidate``,
        ``baseline``, ``difference``, ``ci_low``, ``ci_high`` and, for classifiers,
        ``p_value`` (McNemar's exact test); ``tables["comparison"]`` has one row for the Markdown report.
    """
    from pytest_mlops.checks.accuracy import require_both_classes
    from pytest_mlops.models.load import load_model

    candidate, baseline = load_model(candidate), load_model(baseline)
    spec = get_metric(metric)
    _check_settings(margin, confidence, n_resamples, data, name)
    check_comparable(candidate, baseline)
    y = data.y.to_numpy()
    require_both_classes(spec, y, data, name)
    out_c = _outputs(candidate, "candidate", data, spec.needs)
    out_b = _outputs(baseline, "baseline", data, spec.needs)
    classes = candidate.classes if candidate.classes is not None else baseline.classes
    values, interval = _paired_bootstrap(
        spec, y, (out_c, out_b), classes, n_resamples, confidence, seed
    )
    status = non_inferiority(interval, margin, greater_is_better=spec.greater_is_better)
    test = _mcnemar(spec, candidate, baseline, data, y, out_c, out_b)
    context = _context(data, candidate, baseline, seed)
    return _result(name, spec, status, interval, margin, values, test, context)


def _context(data: Dataset, candidate: Model, baseline: Model, seed: int) -> dict[str, Any]:
    return {
        "n": data.n_rows,
        "split": data.name,
        "candidate": candidate.name,
        "baseline": baseline.name,
        "seed": seed,
    }


def _paired_bootstrap(
    spec: Metric,
    y: np.ndarray,
    outputs: tuple[np.ndarray, np.ndarray],
    classes: Any,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[tuple[float, float], Interval]:
    """Both models' scores and the paired bootstrap interval of their difference."""
    from pytest_mlops.checks.stats import bootstrap_vectorized

    out_c, out_b = outputs
    value_c, value_b = score(spec, y, out_c, classes), score(spec, y, out_b, classes)
    stat_c, stat_b = resampled(spec, y, out_c, classes), resampled(spec, y, out_b, classes)
    interval = bootstrap_vectorized(
        lambda W: stat_c(W) - stat_b(W),
        len(y),
        estimate=value_c - value_b,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    return (value_c, value_b), interval


def _check_settings(
    margin: float, confidence: float, n_resamples: int, data: Dataset, name: str
) -> None:
    if margin < 0:
        raise CheckError(f"gate {name!r}: the margin must be >= 0, got {margin}")
    if not 0 < confidence < 1:
        raise CheckError(f"gate {name!r}: confidence must be between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise CheckError(f"gate {name!r}: n_resamples must be at least 1, got {n_resamples}")
    if data.n_rows < 2:
        raise DataError(
            f"gate {name!r}: {data.describe()} has {data.n_rows} row; comparing two models "
            "needs at least 2 (and a few hundred to decide anything)"
        )


def _mcnemar(
    spec: Metric,
    candidate: Model,
    baseline: Model,
    data: Dataset,
    y: np.ndarray,
    out_c: np.ndarray,
    out_b: np.ndarray,
) -> McNemar | None:
    if spec.needs == "values" or candidate.task != "classification":
        return None
    if spec.needs == "labels":
        return mcnemar(y, out_c, out_b)
    pred_c = _outputs(candidate, "candidate", data, "labels")
    pred_b = _outputs(baseline, "baseline", data, "labels")
    return mcnemar(y, pred_c, pred_b)


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + format_value(value)


def _add_mcnemar(
    test: McNemar | None, metrics: dict[str, Any], tables: dict[str, list[dict[str, Any]]]
) -> str:
    """Add McNemar's test to *metrics* and *tables*; return its line for ``details``."""
    if test is None:
        return ""
    metrics.update(
        p_value=test.p_value,
        only_candidate_right=test.only_candidate,
        only_baseline_right=test.only_baseline,
    )
    tables["mcnemar"] = [
        {
            "only_candidate_right": test.only_candidate,
            "only_baseline_right": test.only_baseline,
            "p_value": test.p_value,
        }
    ]
    return (
        f"McNemar's exact test on the predicted labels: {test.only_candidate} rows only the "
        f"candidate gets right, {test.only_baseline} only the baseline, p = "
        f"{format_value(test.p_value)}"
    )


def _result(
    name: str,
    spec: Metric,
    status: Status,
    interval: Interval,
    margin: float,
    values: tuple[float, float],
    test: McNemar | None,
    context: dict[str, Any],
) -> CheckResult:
    op: Op = ">=" if spec.greater_is_better else "<="
    bound = -margin if spec.greater_is_better else margin
    verdict = {
        "passed": "the candidate is not worse",
        "failed": "the candidate is worse",
        "inconclusive": f"the interval straddles {_signed(bound)}, these rows cannot decide",
    }[status]
    message = (
        f"{spec.name} difference (candidate - baseline) must be {op} {_signed(bound)} "
        f"(non-inferiority margin {format_value(margin)}): measured {_signed(interval.estimate)} "
        f"[{interval.confidence:.0%} CI {_signed(interval.low)}, {_signed(interval.high)}]; "
        f"candidate {format_value(values[0])}, baseline {format_value(values[1])}: {verdict}"
        f" ({', '.join(f'{k}={v}' for k, v in context.items())})"
    )
    metrics = {
        "candidate": values[0],
        "baseline": values[1],
        "difference": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "margin": margin,
    }
    tables: dict[str, list[dict[str, Any]]] = {
        "comparison": [
            {
                "metric": spec.name,
                "candidate": values[0],
                "baseline": values[1],
                "difference": interval.estimate,
                "ci_low": interval.low,
                "ci_high": interval.high,
            }
        ]
    }
    details = _add_mcnemar(test, metrics, tables)
    return CheckResult(
        name=name,
        kind="champion",
        status=status,
        message=message,
        metric=f"{spec.name}_difference",
        value=interval.estimate,
        op=op,
        bound=bound,
        details=details,
        metrics=metrics,
        context=context,
        tables=tables,
    )
