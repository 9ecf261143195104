"""Fairness checks: group disparities of a binary classifier, with bootstrap intervals.

Vocabulary
----------
group
    The rows sharing a value of a sensitive feature (``sex="Female"``), or, with
    ``intersectional=True``, a combination of values of several (``"Female & Black"``).
group statistic
    A number per group: ``selection_rate`` (share predicted positive), ``tpr`` (true positive
    rate), ``fpr`` (false positive rate), ``accuracy``, or any classification metric of
    :data:`~pytest_mlops.checks.metrics.METRICS` by name.
disparity
    How far apart the groups are: a ``difference`` (largest minus smallest group value, 0 is
    fair) or a ``ratio`` (smallest over largest, 1 is fair), as fairlearn defines them.

The point values come from fairlearn's ``MetricFrame`` and equal fairlearn's own functions
(``demographic_parity_difference`` ...) on the rows of the judged groups, with one deliberate
exception: a group with no positives (or no negatives) has an *undefined* TPR (FPR), listed as such
and left out of the disparity, where fairlearn reports 0. Groups under ``min_group_size`` rows (and
TPRs/FPRs on fewer positives/negatives) are listed and left out as well.

Intervals come from a seeded bootstrap over the rows: simultaneous intervals of every pairwise group
gap for :func:`check_fairness` (a percentile interval of the largest gap would be biased upwards and
fail fair models), a paired percentile interval of the change for :func:`compare_fairness`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pytest_mlops.checks.fairness_stats import (
    RATES,
    Disparity,
    Estimate,
    Grouping,
    Outcomes,
    Resampler,
    group_intervals,
    masked,
    percentile_interval,
    simultaneous_interval,
    thin_groups,
)
from pytest_mlops.checks.metrics import METRICS, get_metric
from pytest_mlops.checks.stats import GateOn, Interval, interval_verdict
from pytest_mlops.errors import CheckError, DataError, choices_text, did_you_mean
from pytest_mlops.results import CheckResult, Status, format_value

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = [
    "DISPARITIES",
    "STANDARD_DISPARITIES",
    "Disparity",
    "check_fairness",
    "compare_fairness",
    "get_disparity",
]

ON_CHOICES: tuple[GateOn, ...] = ("estimate", "lower", "upper", "interval")
_RATE_NAMES = {"selection_rate": "selection_rate", "true_positive_rate": "tpr"}
_RATE_NAMES |= {"false_positive_rate": "fpr"}


def _standard() -> dict[str, Disparity]:
    pairs = (
        ("demographic_parity", ("selection_rate",), "selection rates"),
        ("equalized_odds", ("tpr", "fpr"), "true and false positive rates (the worse of the two)"),
        ("equal_opportunity", ("tpr",), "true positive rates"),
    )
    out: dict[str, Disparity] = {}
    for prefix, stats, what in pairs:
        out[f"{prefix}_difference"] = Disparity(
            f"{prefix}_difference", stats, "difference", f"largest minus smallest group {what}"
        )
        out[f"{prefix}_ratio"] = Disparity(
            f"{prefix}_ratio", stats, "ratio", f"smallest over largest group {what}"
        )
    return out


def _generic() -> dict[str, Disparity]:
    names = {**_RATE_NAMES}
    names |= {m: m for m, spec in METRICS.items() if spec.needs != "values"}
    out: dict[str, Disparity] = {}
    for public, stat in names.items():
        out[f"{public}_difference"] = Disparity(
            f"{public}_difference", (stat,), "difference", f"largest minus smallest group {public}"
        )
        out[f"{public}_ratio"] = Disparity(
            f"{public}_ratio", (stat,), "ratio", f"smallest over largest group {public}"
        )
    return out


STANDARD_DISPARITIES: dict[str, Disparity] = _standard()
DISPARITIES: dict[str, Disparity] = {
    **STANDARD_DISPARITIES,
    "four_fifths": Disparity(
        "four_fifths",
        ("selection_rate",),
        "ratio",
        "the four-fifths rule: smallest over largest group selection rate, at least 0.8",
        default_min=0.8,
    ),
    **_generic(),
}


def get_disparity(name: str) -> Disparity:
    """The disparity called *name*; a CheckError listing the main choices otherwise."""
    if name not in DISPARITIES:
        raise CheckError(
            f"unknown fairness metric {name!r}{did_you_mean(name, DISPARITIES)}; valid metrics are "
            f"{choices_text([*STANDARD_DISPARITIES, 'four_fifths'])} or '<metric>_difference' / "
            "'<metric>_ratio' for selection_rate, true_positive_rate, false_positive_rate or a "
            "classification metric (accuracy, f1, roc_auc...)"
        )
    return DISPARITIES[name]


# --- inputs ----------------------------------------------------------------------------------


def _outcomes(
    model: Model, data: Dataset, metric: str, threshold: float | None, needs_proba: bool
) -> Outcomes:

    from pytest_mlops.models.base import Model as ModelProtocol

    if not isinstance(model, ModelProtocol):
        from pytest_mlops.models.load import load_model

        model = load_model(model)  # a fitted estimator, a torch module, a callable...

    X = data.X
    proba = None
    if threshold is not None or needs_proba:
        if not model.has_proba:
            raise CheckError(
                f"{metric}: model {model.name!r} has no probabilities, which "
                + ("'threshold' needs" if threshold is not None else "this metric needs")
            )
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != 2:
            raise CheckError(
                f"{metric} needs a binary classifier: model {model.name!r} returns "
                f"{proba.shape[1] if proba.ndim == 2 else 1} probability columns"
            )
    if threshold is not None:
        assert proba is not None  # noqa: S101 - a type the caller guarantees
        classes = model.classes if model.classes is not None else np.array([0, 1])
        raw_pred = np.where(proba[:, 1] >= threshold, classes[-1], classes[0])
    else:
        raw_pred = np.asarray(model.predict(X))
    raw_y = data.y.to_numpy()
    positive = _positive_label(model, data, raw_y, raw_pred, metric)
    y = (raw_y == positive).astype(np.int64)
    pred = (raw_pred.ravel() == positive).astype(np.int64)
    if proba is not None and model.classes is not None and model.classes[-1] != positive:
        proba = proba[:, ::-1]
    return Outcomes(model.name, y, pred, proba)


def _positive_label(model: Model, data: Dataset, y: Any, pred: Any, metric: str) -> Any:

    if pd.isna(y).any():
        raise DataError(
            f"the target column {data.target!r} of {data.describe()} has "
            f"{int(pd.isna(y).sum())} missing values; fairness metrics need a label on every row"
        )
    pred = np.asarray(pred)
    if pred.ndim > 1 and pred.shape[1] != 1:
        raise CheckError(
            f"{metric} needs one binary decision per row: model {model.name!r} returned an array "
            f"of shape {pred.shape}"
        )
    labels = pd.unique(np.concatenate([np.asarray(y, dtype=object), pred.ravel().astype(object)]))
    classes = model.classes
    if classes is not None and len(classes) == 2 and set(labels) <= set(classes.tolist()):
        return classes[1]
    if set(labels) <= {0, 1}:
        return 1
    if len(labels) == 2:
        return sorted(labels, key=str)[1]
    shown = ", ".join(repr(v) for v in sorted(pd.unique(pred.ravel()).tolist(), key=str)[:8])
    raise CheckError(
        f"{metric} needs binary labels and predictions: model {model.name!r} predicted "
        f"{len(pd.unique(pred.ravel()))} distinct values ({shown}{', ...' if len(labels) > 8 else ''})"
        f" and the target {data.target!r} of {data.describe()} has {len(pd.unique(y))}; "
        "fairness gates compare yes/no decisions (set 'threshold' to cut probabilities)"
    )


def _sensitive_columns(data: Dataset, sensitive: str | Sequence[str] | None) -> tuple[str, ...]:
    columns = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive or data.sensitive)
    if not columns:
        raise CheckError(
            f"no sensitive feature for the fairness check on {data.describe()}: pass "
            "sensitive='column' (or a list), or set 'sensitive' in the config"
        )
    present = [str(c) for c in data.frame.columns]
    for column in columns:
        if column not in present:
            raise DataError(
                f"{data.describe()} has no sensitive column {column!r}"
                f"{did_you_mean(column, present)}; its columns are {present[:30]}"
            )
    return columns


def _groupings(data: Dataset, columns: tuple[str, ...], intersectional: bool) -> list[Grouping]:

    for column in columns:
        missing = data.frame[column].isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)[:5].tolist()
            raise DataError(
                f"the sensitive column {column!r} of {data.describe()} has {int(missing.sum())} "
                f"missing values (rows {rows}{'...' if missing.sum() > 5 else ''}); fill them with "
                "an explicit group such as 'unknown', or drop those rows"
            )
    sets = [columns] if intersectional and len(columns) > 1 else [(c,) for c in columns]
    out = []
    for cols in sets:
        grouped = data.frame[list(cols)].groupby(list(cols), sort=True, observed=True)
        codes = grouped.ngroup().to_numpy().astype(np.int64)
        keys = grouped.size().index
        names = tuple(
            " & ".join(str(v) for v in (k if isinstance(k, tuple) else (k,))) for k in keys
        )
        label = " & ".join(cols)
        if len(names) < 2:
            raise CheckError(
                f"the sensitive column {label!r} of {data.describe()} has a single group "
                f"({names[0]!r}): a disparity needs at least 2 groups"
            )
        out.append(Grouping(label, codes, names))
    return out


# --- point values (fairlearn) ------------------------------------------------------------------


def _frame_stats(out: Outcomes, grouping: Grouping, extra: str | None) -> dict[str, np.ndarray]:
    """Per-group values by fairlearn's MetricFrame; TPR/FPR undefined without positives/negatives.

    The rates depend on the rows only through the (group, label, decision) cells, so the frame
    runs on those cells weighted by their counts: the same values as on the rows (integer sums,
    one division), without fairlearn's per-row overhead. A metric by name runs on the rows.
    """
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    groups = len(grouping.names)
    counts = np.bincount(grouping.codes * 4 + out.y * 2 + out.pred, minlength=4 * groups)
    cells = np.flatnonzero(counts)
    rates = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "accuracy": accuracy_score,
    }
    weights = counts[cells].astype(np.float64)
    stats = _metric_frame(
        rates,
        (cells // 2) % 2,
        cells % 2,
        cells // 4,
        groups,
        {name: {"sample_weight": weights} for name in rates},
    )
    if extra is not None:
        params = {}
        if get_metric(extra).needs == "proba":
            assert out.proba is not None  # noqa: S101 - a type the caller guarantees
            params = {extra: {"scores": out.proba[:, 1]}}
        named = {extra: _safe_metric(extra)}
        stats |= _metric_frame(named, out.y, out.pred, grouping.codes, groups, params)
    positives = np.bincount(grouping.codes, weights=out.y, minlength=groups)
    stats["tpr"][positives == 0] = np.nan
    stats["fpr"][positives == grouping.sizes] = np.nan
    stats["positives"] = positives
    return stats


def _metric_frame(
    metrics: Mapping[str, Callable[..., float]],
    y: np.ndarray,
    pred: np.ndarray,
    codes: np.ndarray,
    groups: int,
    params: Mapping[str, Mapping[str, Any]],
) -> dict[str, np.ndarray]:
    from fairlearn.metrics import MetricFrame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=dict(metrics),
            y_true=y,
            y_pred=pred,
            sensitive_features=pd.Series(codes, name="group"),
            sample_params={k: dict(v) for k, v in params.items()} or None,
        )
    by_group = frame.by_group.reindex(range(groups))
    return {name: np.array(by_group[name], dtype=np.float64) for name in metrics}


def _safe_metric(name: str) -> Callable[..., float]:

    from pytest_mlops.checks.metrics import score

    spec = get_metric(name)

    def compute(y_true: Any, y_pred: Any, scores: Any = None) -> float:
        outputs = y_pred if scores is None else np.column_stack([1 - scores, scores])
        try:
            return score(spec, np.asarray(y_true), np.asarray(outputs), np.array([0, 1]))
        except CheckError:
            return float("nan")

    return compute


# --- one grouping, assessed -------------------------------------------------------------------


@dataclass
class _Assessment:
    grouping: Grouping
    included: np.ndarray
    stats: dict[str, np.ndarray]
    estimates: dict[str, Estimate] = field(default_factory=dict)
    status: Status = "passed"
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_ci: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def positives(self) -> np.ndarray:
        return self.stats["positives"]


def _included(grouping: Grouping, min_group_size: int) -> np.ndarray:

    return np.asarray(grouping.sizes >= min_group_size)


def _group_samples(
    out: Outcomes,
    grouping: Grouping,
    included: np.ndarray,
    extra: str | None,
    names: Sequence[str],
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap samples (``resamples x included groups``) of the statistics *names* compare."""
    needed = sorted({*RATES, *(stat for key in names for stat in DISPARITIES[key].stats)})
    resampler = Resampler([out], grouping, included, extra)
    return resampler.run(lambda stats: {k: stats[0][k] for k in needed}, n_resamples, seed)


def _disparities_of(
    names: Sequence[str],
) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    specs = [DISPARITIES[n] for n in names]
    return lambda stats: {d.name: d.of(stats) for d in specs}


def _wanted(spec: Disparity) -> list[str]:
    return [*STANDARD_DISPARITIES, *([spec.name] if spec.name not in STANDARD_DISPARITIES else [])]


def _extra_stat(spec: Disparity) -> str | None:
    return next((s for s in spec.stats if s not in RATES), None)


@dataclass(frozen=True)
class _Options:
    min_group_size: int
    n_resamples: int
    confidence: float
    seed: int


def _too_few(assessment: _Assessment, names: Sequence[str], min_group_size: int) -> _Assessment:
    reason = f"fewer than 2 groups have at least {min_group_size} rows"
    assessment.estimates = {key: Estimate(float("nan"), None, reason) for key in names}
    return assessment


def _assess(
    out: Outcomes, grouping: Grouping, extra: str | None, names: Sequence[str], opts: _Options
) -> _Assessment:
    """Every disparity in *names* on one grouping, with its simultaneous interval."""
    included = _included(grouping, opts.min_group_size)
    stats = _frame_stats(out, grouping, extra)
    assessment = _Assessment(grouping, included, stats)
    if included.sum() < 2:
        return _too_few(assessment, names, opts.min_group_size)
    thin = thin_groups(grouping, included, stats["positives"], opts.min_group_size)
    gated = masked({k: v[included] for k, v in stats.items()}, thin)
    point = _disparities_of(names)(gated)
    raw = _group_samples(out, grouping, included, extra, names, opts.n_resamples, opts.seed)
    assessment.group_ci = group_intervals(raw, included, opts.confidence)
    samples = masked(raw, thin)
    for key in names:
        assessment.estimates[key] = simultaneous_interval(
            DISPARITIES[key],
            float(point[key]),
            gated,
            samples,
            opts.confidence,
            opts.n_resamples,
            opts.seed,
        )
    return assessment


def _assess_paired(
    first: Outcomes,
    second: Outcomes,
    grouping: Grouping,
    extra: str | None,
    spec: Disparity,
    opts: _Options,
) -> tuple[_Assessment, _Assessment]:
    """Each disparity's worsening from *second* (baseline) to *first*, with a paired interval."""
    names = _wanted(spec)
    included = _included(grouping, opts.min_group_size)
    stats_a = _frame_stats(first, grouping, extra)
    stats_b = _frame_stats(second, grouping, extra)
    assessment = _Assessment(grouping, included, stats_a)
    baseline_view = _Assessment(grouping, included, stats_b)
    if included.sum() < 2:
        return _too_few(assessment, names, opts.min_group_size), baseline_view
    thin = thin_groups(grouping, included, stats_a["positives"], opts.min_group_size)
    point_a = _disparities_of(names)(masked({k: v[included] for k, v in stats_a.items()}, thin))
    point_b = _disparities_of(names)(masked({k: v[included] for k, v in stats_b.items()}, thin))
    samples = _sample(first, second, grouping, included, extra, names, opts, thin)
    for key in names:
        change = float(_worsening(DISPARITIES[key], point_a[key], point_b[key]))
        assessment.estimates[key] = percentile_interval(
            change, samples[key], opts.confidence, opts.n_resamples, opts.seed
        )
        assessment.columns[key] = {
            "candidate": _num(float(point_a[key])),
            "baseline": _num(float(point_b[key])),
        }
    return assessment, baseline_view


# --- check_fairness ---------------------------------------------------------------------------


def check_fairness(
    model: Model,
    data: Dataset,
    *,
    sensitive: str | Sequence[str] | None = None,
    metric: str = "demographic_parity_difference",
    min: float | None = None,
    max: float | None = None,
    intersectional: bool = False,
    min_group_size: int = 30,
    on: GateOn = "interval",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    threshold: float | None = None,
    seed: int = 0,
    name: str = "fairness",
) -> CheckResult:
    """Hold a group disparity of *model*'s decisions on *data* to ``min``/``max``.

    Parameters
    ----------
    model, data:
        A binary classifier adapted by :func:`~pytest_mlops.load_model`; a
        :class:`~pytest_mlops.Dataset` with a target and the sensitive columns.
    sensitive, intersectional:
        A column or several (default: the dataset's ``sensitive`` columns), judged one by one (the
        worst decides) or by their combinations (``sex x race``) if *intersectional*.
    metric:
        A name of :data:`DISPARITIES`: ``demographic_parity_difference`` / ``_ratio``,
        ``equalized_odds_difference`` / ``_ratio``, ``equal_opportunity_difference`` / ``_ratio``,
        ``four_fifths`` (selection-rate ratio, ``min`` 0.8 by default), or
        ``<statistic>_difference`` / ``_ratio`` for ``selection_rate``, ``true_positive_rate``,
        ``false_positive_rate`` or a classification metric (``accuracy``, ``f1``, ``roc_auc``...).
    min, max:
        Bounds (``max`` for differences, ``min`` for ratios); with neither it passes, measuring.
    min_group_size:
        Smaller groups are listed (message, details, ``groups`` table), left out of disparities.
    on:
        What is held to the bound: the ``estimate``, the ``lower`` or ``upper`` end of the
        interval, or the whole ``interval`` (INCONCLUSIVE when it straddles the bound).
    n_resamples, confidence, seed:
        The seeded bootstrap over the rows; each disparity's interval is built from simultaneous
        intervals of all pairwise group gaps (see the module docstring).
    threshold, name:
        Cut the positive-class probability here instead of using ``predict``; the gate's name.

    Returns
    -------
    CheckResult
        Tables ``groups`` (per group: n, selection rate, TPR, FPR, accuracy, excluded) and
        ``disparities`` (per disparity: value, interval, bound, status).
    """
    spec = get_disparity(metric)
    gate = _Gate(spec, spec.name, *_bounds(spec, min, max, name), on)
    options = _Options(min_group_size, n_resamples, confidence, seed)
    groups, extra, proba = _setup(data, spec, sensitive, intersectional, on, threshold, options)
    out = _outcomes(model, data, spec.name, threshold, proba)
    assessments, rows = _assess_all(out, groups, extra, gate, options)
    context = _context(data, out.model, on, seed, min_group_size)
    return _result(name, gate, assessments, context, rows)


@dataclass(frozen=True)
class _Gate:
    """What a result holds to its bound: the disparity, its label, the bounds and ``on``."""

    spec: Disparity
    metric_label: str
    min: float | None
    max: float | None
    on: GateOn
    prefix: str = ""


def _setup(
    data: Dataset,
    spec: Disparity,
    sensitive: str | Sequence[str] | None,
    intersectional: bool,
    on: GateOn,
    threshold: float | None,
    opts: _Options,
) -> tuple[list[Grouping], str | None, bool]:
    """Check the settings; return the groupings, the extra statistic and whether it needs proba."""
    _check_options(on, opts.n_resamples, opts.confidence, opts.min_group_size, threshold)
    columns = _sensitive_columns(data, sensitive)
    groupings = _groupings(data, columns, intersectional)
    extra = _extra_stat(spec)
    needs_proba = extra is not None and get_metric(extra).needs == "proba"
    return groupings, extra, needs_proba


def _assess_all(
    out: Outcomes, groupings: Sequence[Grouping], extra: str | None, gate: _Gate, opts: _Options
) -> tuple[list[_Assessment], list[dict[str, Any]]]:
    """Each grouping's assessment with its verdict, and the ``groups`` table's rows."""
    spec = gate.spec
    assessments = [_assess(out, g, extra, _wanted(spec), opts) for g in groupings]
    for assessment in assessments:
        assessment.status = _verdict(assessment.estimates[spec.name], gate.min, gate.max, gate.on)
    rows = [row for a in assessments for row in _group_rows(a, extra, opts.min_group_size)]
    return assessments, rows


def _sample(
    out: Outcomes,
    baseline: Outcomes,
    grouping: Grouping,
    included: np.ndarray,
    extra: str | None,
    names: Sequence[str],
    opts: _Options,
    thin: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Paired bootstrap samples of each disparity's worsening (candidate versus baseline)."""
    disparities = _disparities_of(names)
    resampler = Resampler([out, baseline], grouping, included, extra)

    def combine(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        a, b = disparities(masked(stats[0], thin)), disparities(masked(stats[1], thin))
        return {k: _worsening(DISPARITIES[k], a[k], b[k]) for k in names}

    return resampler.run(combine, opts.n_resamples, opts.seed)


def _worsening(spec: Disparity, candidate: Any, baseline: Any) -> Any:
    """How much less fair the candidate is (positive = worse), in the disparity's units."""
    return baseline - candidate if spec.higher_is_fairer else candidate - baseline


def _bounds(
    spec: Disparity, min: float | None, max: float | None, name: str
) -> tuple[float | None, float | None]:
    if min is None and max is None and spec.default_min is not None:
        return spec.default_min, None
    if min is not None and max is not None and min > max:
        raise CheckError(f"gate {name!r}: min ({min}) is greater than max ({max})")
    return min, max


def _check_options(
    on: str, n_resamples: int, confidence: float, min_group_size: int, threshold: float | None
) -> None:
    if on not in ON_CHOICES:
        raise CheckError(
            f"'on' must be {choices_text(ON_CHOICES)}, got {on!r}{did_you_mean(on, ON_CHOICES)}"
        )
    if n_resamples < 10:
        raise CheckError(f"n_resamples must be at least 10, got {n_resamples}")
    if not 0 < confidence < 1:
        raise CheckError(f"confidence must be between 0 and 1, got {confidence}")
    if min_group_size < 1:
        raise CheckError(f"min_group_size must be at least 1, got {min_group_size}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise CheckError(f"threshold must be between 0 and 1, got {threshold}")


def _verdict(estimate: Estimate, min: float | None, max: float | None, on: GateOn) -> Status:
    if min is None and max is None:
        return "passed"
    if not math.isfinite(estimate.value):
        return "inconclusive"
    interval = estimate.interval
    if interval is None:
        if on != "estimate":
            return "inconclusive"
        interval = Interval(estimate.value, estimate.value, estimate.value, 0.0, 0, 0)
    return interval_verdict(interval, min=min, max=max, on=on)


def _context(data: Dataset, model: str, on: str, seed: int, min_group_size: int) -> dict[str, Any]:
    return {
        "n": data.n_rows,
        "split": data.name,
        "model": model,
        "on": on,
        "seed": seed,
        "min_group_size": min_group_size,
    }


# --- rendering --------------------------------------------------------------------------------


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _group_rows(a: _Assessment, extra: str | None, min_group_size: int) -> list[dict[str, Any]]:

    g = a.grouping
    sizes = g.sizes
    rows = []
    for i, group in enumerate(g.names):
        notes = []
        if not a.included[i]:
            notes.append(f"excluded: n={int(g.sizes[i])} < min_group_size={min_group_size}")
        for stat, why in (("tpr", "no positives"), ("fpr", "no negatives")):
            if not math.isfinite(a.stats[stat][i]):
                notes.append(f"{stat} undefined ({why})")
        notes += [
            f"{text} < min_group_size={min_group_size}"
            for text in _thin_notes(a, i, min_group_size)
        ]
        row: dict[str, Any] = {
            "sensitive": g.label,
            "group": group,
            "n": int(sizes[i]),
            "positives": int(a.positives[i]),
        }
        for stat in (*RATES, *([extra] if extra else [])):
            row[stat] = _num(float(a.stats[stat][i]))
            if stat in a.group_ci:
                row[f"{stat}_ci_low"] = _num(float(a.group_ci[stat][0][i]))
                row[f"{stat}_ci_high"] = _num(float(a.group_ci[stat][1][i]))
        row["excluded"] = not bool(a.included[i])
        row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


def _disparity_rows(a: _Assessment, gated: str, op_bound: str) -> list[dict[str, Any]]:
    rows = []
    for key, est in a.estimates.items():
        status: str = "measured"
        if key == gated and op_bound:
            status = a.status
        if not math.isfinite(est.value):
            status = "undefined" if key != gated or not op_bound else a.status
        rows.append(
            {
                "sensitive": a.grouping.label,
                "metric": key,
                "value": _num(est.value),
                "ci_low": est.interval.low if est.interval else None,
                "ci_high": est.interval.high if est.interval else None,
                "bound": op_bound if key == gated else "",
                "status": status,
                "note": est.reason,
                **a.columns.get(key, {}),
            }
        )
    return rows


def _op_bound(
    value: float, min: float | None, max: float | None
) -> tuple[Literal[">=", "<="] | None, float | None]:
    if min is not None and (max is None or (math.isfinite(value) and value < min)):
        return ">=", min
    if max is not None:
        return "<=", max
    return None, None


def _deciding(assessments: Sequence[_Assessment], spec: Disparity, key: str) -> _Assessment:
    rank = {"failed": 0, "inconclusive": 1, "passed": 2}
    worst = min(rank[a.status] for a in assessments)
    pool = [a for a in assessments if rank[a.status] == worst]

    def badness(a: _Assessment) -> float:
        value = a.estimates[key].value
        if not math.isfinite(value):
            return math.inf
        return -value if spec.higher_is_fairer else value

    return max(pool, key=badness)


def _estimate_text(est: Estimate) -> str:
    if est.interval is None:
        return format_value(est.value)
    i = est.interval
    return f"{format_value(est.value)} [{i.confidence:.0%} CI {format_value(i.low)}, {format_value(i.high)}]"


def _thin_notes(a: _Assessment, i: int, min_group_size: int) -> list[str]:
    """``"tpr left out (5 positives)"`` for an included group whose rate rests on too few rows."""
    if not a.included[i]:
        return []
    positives = int(a.positives[i])
    negatives = int(a.grouping.sizes[i]) - positives
    notes = []
    if 0 < positives < min_group_size:
        notes.append(f"tpr left out ({positives} positives)")
    if 0 < negatives < min_group_size:
        notes.append(f"fpr left out ({negatives} negatives)")
    return notes


def _excluded_text(
    assessments: Sequence[_Assessment], min_group_size: int, stats: Sequence[str]
) -> str:
    parts = [
        f"{a.grouping.label}={name!r} (n={int(a.grouping.sizes[i])})"
        for a in assessments
        for i, name in enumerate(a.grouping.names)
        if not a.included[i]
    ]
    text = (
        f"; excluded groups with fewer than {min_group_size} rows: {', '.join(parts)}"
        if parts
        else ""
    )
    thin = [
        f"{a.grouping.label}={name!r} {note}"
        for a in assessments
        for i, name in enumerate(a.grouping.names)
        for note in _thin_notes(a, i, min_group_size)
        if note.split()[0] in stats
    ]
    if thin:
        text += f"; rates on fewer than {min_group_size} rows left out: {', '.join(thin)}"
    return text


def _message(gate: _Gate, est: Estimate, status: Status, where: str, suffix: str) -> str:
    """The result's first line: the measured disparity against its bound (if any)."""
    prefix, label = gate.prefix, gate.metric_label
    op, bound = _op_bound(est.value, gate.min, gate.max)
    if not math.isfinite(est.value):
        return f"{prefix}{label} is undefined{where}: {est.reason}{suffix}"
    if op is None:
        return f"{prefix}{label} measured {_estimate_text(est)}{where}{suffix}"
    straddle = ", the interval straddles the bound" if status == "inconclusive" else ""
    if status == "inconclusive" and est.interval is None:
        straddle = f", no interval: {est.reason}"
    return (
        f"{prefix}{label} must be {op} {format_value(bound)}: measured {_estimate_text(est)}"
        f"{where}{straddle}{suffix}"
    )


def _metrics(label: str, est: Estimate, assessments: Sequence[_Assessment]) -> dict[str, float]:
    metrics: dict[str, float] = {label: est.value}
    if est.interval is not None:
        metrics[f"{label}.ci_low"] = est.interval.low
        metrics[f"{label}.ci_high"] = est.interval.high
    for a in assessments:
        for key, e in a.estimates.items():
            metrics[f"{a.grouping.label}.{key}"] = e.value
    return metrics


def _result(
    name: str,
    gate: _Gate,
    assessments: Sequence[_Assessment],
    context: Mapping[str, Any],
    group_rows: list[dict[str, Any]],
) -> CheckResult:

    spec = gate.spec
    decider = _deciding(assessments, spec, spec.name)
    est = decider.estimates[spec.name]
    op, bound = _op_bound(est.value, gate.min, gate.max)
    op_bound = f"{op} {format_value(bound)}" if op is not None else ""
    ctx = {**context, "groups": int(sum(int(np.sum(a.included)) for a in assessments))}
    suffix = f" ({', '.join(f'{k}={v}' for k, v in ctx.items())})"
    message = _message(gate, est, decider.status, f" on {decider.grouping.label}", suffix)
    min_size = int(context.get("min_group_size", 1))
    message += _excluded_text(assessments, min_size, spec.stats)
    return CheckResult(
        name=name,
        kind="fairness",
        status=decider.status,
        message=message,
        metric=gate.metric_label,
        value=est.value,
        op=op,
        bound=bound,
        details="\n".join(_detail_lines(assessments, spec.name, op_bound)),
        metrics=_metrics(gate.metric_label, est, assessments),
        context=ctx,
        tables={
            "groups": group_rows,
            "disparities": [
                row for a in assessments for row in _disparity_rows(a, spec.name, op_bound)
            ],
        },
    )


def _detail_lines(assessments: Sequence[_Assessment], key: str, op_bound: str) -> list[str]:
    lines = []
    for a in assessments:
        est = a.estimates[key]
        verdict = a.status.upper() if op_bound else "MEASURED"
        text = _estimate_text(est) if math.isfinite(est.value) else f"undefined ({est.reason})"
        lines.append(f"{a.grouping.label}: {key} {text} {op_bound} {verdict}".replace("  ", " "))
        for i, group in enumerate(a.grouping.names):
            for stat, why in (("tpr", "no positives"), ("fpr", "no negatives")):
                if a.included[i] and not math.isfinite(a.stats[stat][i]):
                    lines.append(f"  {a.grouping.label}={group!r}: {stat} undefined ({why})")
    return lines


# --- compare_fairness -------------------------------------------------------------------------


def compare_fairness(
    candidate: Model,
    baseline: Model,
    data: Dataset,
    *,
    sensitive: str | Sequence[str] | None = None,
    metric: str = "demographic_parity_difference",
    margin: float = 0.01,
    intersectional: bool = False,
    min_group_size: int = 30,
    on: GateOn = "interval",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    threshold: float | None = None,
    seed: int = 0,
    name: str = "fairness_regression",
) -> CheckResult:
    """No fairness regression: *candidate* may be less fair than *baseline* by at most *margin*.

    The gated value is the worsening of the disparity, ``candidate - baseline`` for differences
    and ``baseline - candidate`` for ratios (positive = the candidate is less fair), with a paired
    bootstrap interval: both models are scored on the same resampled rows. The settings are those
    of :func:`check_fairness`; ``on="interval"`` passes when the whole interval is at most
    *margin*, fails when all of it is above, and is INCONCLUSIVE otherwise.

    Returns
    -------
    CheckResult
        ``metric`` is ``<disparity>_worsening``; the ``disparities`` table carries the candidate's
        and the baseline's values, the ``groups`` table one row per group and model.
    """
    spec = get_disparity(metric)
    if margin < 0:
        raise CheckError(f"gate {name!r}: margin must be >= 0, got {margin}")
    options = _Options(min_group_size, n_resamples, confidence, seed)
    groups, extra, proba = _setup(data, spec, sensitive, intersectional, on, threshold, options)
    first = _outcomes(candidate, data, spec.name, threshold, proba)
    second = _outcomes(baseline, data, spec.name, threshold, proba)
    assessments, group_rows = [], []
    for grouping in groups:
        assessment, baseline_view = _assess_paired(first, second, grouping, extra, spec, options)
        assessment.status = _verdict(assessment.estimates[spec.name], None, margin, on)
        assessments.append(assessment)
        for view, role in ((assessment, "candidate"), (baseline_view, "baseline")):
            group_rows += [dict(r, model=role) for r in _group_rows(view, extra, min_group_size)]
    context = _context(data, first.model, on, seed, min_group_size)
    context["baseline"] = second.model
    worsening = Disparity(spec.name, spec.stats, "difference", spec.help)
    gate = _Gate(worsening, f"{spec.name}_worsening", None, margin, on)
    return _result(name, gate, assessments, context, group_rows)
