"""Accuracy gates: a metric held to a bound, with a seeded bootstrap interval, overall and per slice.

The point estimate is scikit-learn's function on the model's outputs. The interval is a percentile
bootstrap over rows (:func:`~pytest_mlops.checks.stats.bootstrap_vectorized`), computed for every
gated metric; ``on`` says which number the bound applies to:

``"estimate"``  the point estimate (the interval is reported, not gated)
``"lower"``     the lower end of the interval (pass only if even the pessimistic score is enough)
``"upper"``     the upper end (for losses held to a ``max``)
``"interval"``  the whole interval: passed inside, failed outside, INCONCLUSIVE when it straddles
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pytest_mlops.checks.metrics import Metric, get_metric, model_outputs, resampled, score
from pytest_mlops.errors import CheckError, DataError, choices_text
from pytest_mlops.results import CheckResult, Op, Status, format_value

if TYPE_CHECKING:
    import numpy as np

    from pytest_mlops.checks.stats import Interval
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = [
    "GATE_ON",
    "Measured",
    "check_accuracy",
    "measure",
    "require_both_classes",
    "require_labels",
]

GateOn = Literal["estimate", "lower", "upper", "interval"]
GATE_ON: tuple[str, ...] = get_args(GateOn)
_NEEDS_BOTH_CLASSES = ("roc_auc", "pr_auc")
_END = {"lower": "low", "upper": "high"}


@dataclass(frozen=True)
class Measured:
    """A metric on some rows: the estimate and, where resampled, its interval."""

    label: str
    n: int
    estimate: float
    interval: Interval | None = None
    note: str = ""

    def judged(self, on: GateOn) -> float:
        """The number the bound applies to."""
        if self.interval is None or on in ("estimate", "interval"):
            return self.estimate
        return self.interval.low if on == "lower" else self.interval.high

    def text(self) -> str:
        if self.interval is None:
            return format_value(self.estimate)
        i = self.interval
        return (
            f"{format_value(self.estimate)} [{i.confidence:.0%} CI "
            f"{format_value(i.low)}, {format_value(i.high)}]"
        )

    def row(self, metric: str, status: str) -> dict[str, Any]:
        i = self.interval
        return {
            "slice": self.label,
            "n": self.n,
            "metric": metric,
            "estimate": self.estimate,
            "ci_low": None if i is None else i.low,
            "ci_high": None if i is None else i.high,
            "status": status,
            "note": self.note,
        }


def measure(
    metric: Metric,
    y: np.ndarray,
    outputs: np.ndarray,
    classes: Any,
    *,
    label: str = "all",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Measured:
    """The sklearn value of *metric* and (``n_resamples > 0``) its seeded bootstrap interval."""
    from pytest_mlops.checks.stats import bootstrap_vectorized

    estimate = score(metric, y, outputs, classes)
    interval = None
    if n_resamples > 0:
        interval = bootstrap_vectorized(
            resampled(metric, y, outputs, classes),
            len(y),
            estimate=estimate,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    return Measured(label, len(y), estimate, interval)


def _verdict(m: Measured, lo: float | None, hi: float | None, on: GateOn) -> Status:
    from pytest_mlops.checks.stats import interval_verdict

    if m.interval is None:
        inside = (lo is None or m.estimate >= lo) and (hi is None or m.estimate <= hi)
        return "passed" if inside else "failed"
    return interval_verdict(m.interval, min=lo, max=hi, on=on)


def _check_inputs(
    data: Dataset,
    *,
    spec: Metric | None = None,
    min: float | None,
    max: float | None,
    on: str,
    n_resamples: int,
    confidence: float,
    name: str,
) -> None:
    if min is not None and max is not None and min > max:
        raise CheckError(f"gate {name!r}: min ({min}) is greater than max ({max})")
    if spec is not None:
        low, high = spec.bounds
        if (min is not None and min > high) or (max is not None and max < low):
            bound = f"min = {min:g}" if min is not None and min > high else f"max = {max:g}"
            raise CheckError(
                f"gate {name!r}: {spec.name} lies in [{low:g}, {high:g}], so {bound} can never "
                "hold; check the bound (a percentage written as 85 instead of 0.85?)"
            )
    if on not in GATE_ON:
        raise CheckError(f"gate {name!r}: 'on' must be {choices_text(GATE_ON)}, got {on!r}")
    if on != "estimate" and n_resamples < 1:
        raise CheckError(
            f"gate {name!r}: on = {on!r} needs a confidence interval; set n_resamples >= 1"
        )
    if not 0 < confidence < 1:
        raise CheckError(f"gate {name!r}: confidence must be between 0 and 1, got {confidence}")
    if n_resamples > 0 and data.n_rows < 2:
        raise DataError(
            f"gate {name!r}: {data.describe()} has {data.n_rows} row; a confidence interval "
            "needs at least 2 (set n_resamples = 0 to gate the estimate alone)"
        )


def require_labels(spec: Metric, y: np.ndarray, model: Model, data: Dataset, name: str) -> None:
    """A DataError when labels are missing, or are not among the classifier's classes.

    Such labels are ``'yes'`` against ``1``, or the text ``'1'`` against the number ``1``:
    otherwise every resample of the metric comes out undefined or zero, and the message would
    blame the data's size.
    """
    import pandas as pd

    column = f"the target column {data.target!r} of {data.describe()}"
    missing = pd.isna(y)
    if missing.any():
        rows = data.frame.index[missing][:5].tolist()
        raise DataError(
            f"gate {name!r}: {column} has {int(missing.sum())} missing label(s), e.g. at rows "
            f"{rows}: fill or drop them (a row cut short in a CSV file also reads as missing)"
        )
    classes = model.classes if spec.needs != "values" else None
    if classes is None:
        return
    known = {_plain_label(c) for c in classes}
    unknown = [v for v in pd.unique(y) if _plain_label(v) not in known]
    if unknown:
        hint = ""
        if all(isinstance(v, str) for v in unknown) and not any(isinstance(c, str) for c in known):
            hint = "; the labels are text and the classes are not: map or convert the column"
        raise DataError(
            f"gate {name!r}: {column} holds labels {_listed(unknown)} that the model's classes "
            f"({_listed(known)}) do not include{hint}"
        )


def _listed(values: Any, shown: int = 8) -> str:
    items = sorted(repr(_plain_label(v)) for v in values)
    return ", ".join(items[:shown]) + (
        f" and {len(items) - shown} more" if len(items) > shown else ""
    )


def _plain_label(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def require_both_classes(spec: Metric, y: np.ndarray, data: Dataset, name: str) -> None:
    """A DataError when *spec* ranks scores (ROC/PR AUC) and the target has a single class."""
    import numpy as np

    if spec.name in _NEEDS_BOTH_CLASSES and len(np.unique(y)) < 2:
        raise DataError(
            f"gate {name!r}: {spec.name} needs both classes in the target, but the column "
            f"{data.target!r} of {data.describe()} holds only {np.unique(y).tolist()!r}"
        )


def check_accuracy(
    model: Model,
    data: Dataset,
    *,
    metric: str = "accuracy",
    min: float | None = None,
    max: float | None = None,
    on: GateOn = "estimate",
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    slice_by: str | Sequence[str] | None = None,
    slices: Sequence[str] = (),
    min_slice_size: int = 100,
    name: str = "accuracy",
) -> CheckResult:
    """Compute *metric* of *model* on *data* with a bootstrap interval and hold it to bounds.

    Parameters
    ----------
    model, data:
        Any adapter from :func:`~pytest_mlops.load_model`; a :class:`~pytest_mlops.Dataset`.
    metric:
        A name from :func:`~pytest_mlops.list_metrics` (``"roc_auc"``, ``"f1"``, ``"ece"``,
        ``"rmse"``...). Point estimates equal scikit-learn's functions on the same predictions.
    min, max:
        Bounds on the metric; give the one that matters (``min`` for scores, ``max`` for losses).
    on:
        What the bound applies to: ``"estimate"``, ``"lower"``/``"upper"`` (an end of the
        interval) or ``"interval"`` (INCONCLUSIVE when the interval straddles a bound).
    confidence, n_resamples, seed:
        The percentile bootstrap: two-sided level, number of resamples (0: no interval) and seed.
    slice_by, slices, min_slice_size:
        Also hold each slice to the bounds: one per value of the ``slice_by`` column(s), one per
        expression such as ``"age >= 60"`` (:mod:`pytest_mlops.checks.slices`); those of fewer
        than ``min_slice_size`` rows are reported in ``tables["slices"]`` but not gated.

    Returns
    -------
    CheckResult
        e.g. ``roc_auc must be >= 0.88: measured 0.905 [95% CI 0.9, 0.91] (n=16281, ...)``;
        ``metrics`` holds the estimate, the interval and each slice's estimate.
    """
    from pytest_mlops.models.load import load_model  # lazily: this module is on the plugin's path

    model, spec = load_model(model), get_metric(metric)  # model: an estimator, a module...
    _check_inputs(
        data,
        spec=spec,
        min=min,
        max=max,
        on=on,
        n_resamples=n_resamples,
        confidence=confidence,
        name=name,
    )
    slicing = _Slicing(slice_by, slices, min_slice_size, n_resamples, confidence, seed)
    verdicts, rows = _measure_all(model, data, spec, name, (min, max), on, slicing)
    context = {"n": data.n_rows, "split": data.name, "model": model.name, "seed": seed, "on": on}
    return _result(name, spec, verdicts, rows, (min, max), on, context, bool(slice_by or slices))


@dataclass(frozen=True)
class _Slicing:
    """Which slices are held to the bounds too, and the bootstrap every estimate gets.

    Also the size below which a slice is not gated.
    """

    slice_by: str | Sequence[str] | None
    slices: Sequence[str]
    min_slice_size: int
    n_resamples: int
    confidence: float
    seed: int


def _measure_all(
    model: Model,
    data: Dataset,
    spec: Metric,
    name: str,
    bounds: tuple[float | None, float | None],
    on: GateOn,
    slicing: _Slicing,
) -> tuple[list[tuple[Measured, Status]], list[dict[str, Any]]]:
    """The metric on all rows and on each slice, with each one's verdict and table row."""
    options: dict[str, Any] = {
        "n_resamples": slicing.n_resamples,
        "confidence": slicing.confidence,
        "seed": slicing.seed,
    }
    y = data.y.to_numpy()
    require_labels(spec, y, model, data, name)
    require_both_classes(spec, y, data, name)
    outputs = model_outputs(model, data, spec.needs)
    classes = model.classes
    overall = measure(spec, y, outputs, classes, **options)
    verdicts: list[tuple[Measured, Status]] = [(overall, _verdict(overall, *bounds, on))]
    rows = [overall.row(spec.name, verdicts[0][1])]
    for part in _slices(data, slicing.slice_by, slicing.slices):
        m, status = _measure_slice(spec, y, outputs, classes, part, slicing.min_slice_size, options)
        if status == "measured":
            status = _verdict(m, *bounds, on)
            verdicts.append((m, status))
        rows.append(m.row(spec.name, status))
    return verdicts, rows


def _slices(data: Dataset, slice_by: str | Sequence[str] | None, slices: Sequence[str]) -> Any:
    if not slice_by and not slices:
        return []
    from pytest_mlops.checks.slices import slice_rows

    return slice_rows(data, slice_by=slice_by, slices=slices)


def _measure_slice(
    spec: Metric,
    y: np.ndarray,
    outputs: np.ndarray,
    classes: Any,
    part: Any,
    min_slice_size: int,
    options: dict[str, Any],
) -> tuple[Measured, str]:
    """A slice's measurement and its status: a verdict, or why it is not gated."""
    import math

    import numpy as np

    mask = part.mask
    if part.n == 0:
        return Measured(part.label, 0, math.nan, note="no rows"), "empty"
    small = part.n < min_slice_size
    if spec.name in _NEEDS_BOTH_CLASSES and len(np.unique(y[mask])) < 2:
        return Measured(part.label, part.n, math.nan, note="one class only"), "undefined"
    try:
        m = measure(
            spec,
            y[mask],
            outputs[mask],
            classes,
            label=part.label,
            **{**options, "n_resamples": 0 if small or part.n < 2 else options["n_resamples"]},
        )
    except CheckError as exc:
        return Measured(part.label, part.n, math.nan, note=str(exc)), "undefined"
    if small:
        return Measured(part.label, part.n, m.estimate, note=f"< {min_slice_size} rows"), "small"
    return m, "measured"


def _result(
    name: str,
    spec: Metric,
    verdicts: list[tuple[Measured, Status]],
    rows: list[dict[str, Any]],
    bounds: tuple[float | None, float | None],
    on: GateOn,
    context: dict[str, Any],
    sliced: bool,
) -> CheckResult:
    """One verdict over the whole data and the gated slices: the worst one, named."""
    overall = verdicts[0][0]
    rank = {"failed": 0, "inconclusive": 1, "passed": 2}
    worst_m, worst = sorted(verdicts, key=lambda v: rank[v[1]])[0]
    op, bound = _bound(*bounds, worst_m, on)
    subject = _subject(spec.name, on, overall)
    suffix = f" ({', '.join(f'{k}={v}' for k, v in context.items())})"
    if op is None:
        message = f"{subject} measured {overall.text()}{suffix}"
    else:
        where = " overall and in every slice" if sliced else ""
        message = f"{subject} must be {op} {format_value(bound)}{where}: measured "
        if worst_m is not overall:
            message += f"{worst_m.text()} in slice {worst_m.label!r} (n={worst_m.n}); overall "
        message += overall.text()
        if worst == "inconclusive":
            message += ": the interval straddles the bound"
        message += suffix
    return CheckResult(
        name=name,
        kind="accuracy",
        status=worst,
        message=message,
        metric=spec.name if on in ("estimate", "interval") else f"{spec.name}.ci_{_END[on]}",
        value=worst_m.judged(on),
        op=op,
        bound=bound,
        metrics=_metrics(spec.name, overall, rows[1:]),
        context=context,
        tables={"slices": rows},
    )


def _metrics(name: str, overall: Measured, slice_rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {name: overall.estimate}
    if overall.interval is not None:
        out[f"{name}_ci_low"] = overall.interval.low
        out[f"{name}_ci_high"] = overall.interval.high
    for row in slice_rows:
        out[f"{name}[{row['slice']}]"] = row["estimate"]
    return out


def _bound(
    min: float | None, max: float | None, m: Measured, on: GateOn
) -> tuple[Op | None, float | None]:
    if min is None and max is None:
        return None, None
    if max is None:
        return ">=", min
    if min is None:
        return "<=", max
    return (">=", min) if m.judged(on) < min or on == "lower" else ("<=", max)


def _subject(metric: str, on: GateOn, overall: Measured) -> str:
    if on in ("lower", "upper") and overall.interval is not None:
        level = f"{overall.interval.confidence:.0%}"
        return f"the {on} end of the {level} CI of {metric}"
    if on == "interval" and overall.interval is not None:
        return f"the {overall.interval.confidence:.0%} CI of {metric}"
    return metric
