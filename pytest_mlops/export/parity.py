"""Decision-level parity: whether the ONNX model decides like the model it was exported from.

:func:`check_parity` runs the native model once on the data and the ONNX model at several batch
sizes (1, an odd size, a large one) on every execution provider it is asked for, and compares

- each output elementwise (``|onnx - native| <= atol + rtol * |native|``, numpy's ``isclose``),
  reporting the largest absolute and relative difference and the share of rows out of tolerance;
- the decisions: the share of rows whose label flips;
- the quality: a metric (ROC AUC for binary classifiers, accuracy otherwise, R² for regressors)
  on native and ONNX outputs, and their difference.

Default tolerances depend on what was exported and in which float type (:func:`default_tolerances`):

============================  ========  ======  ===================  =====================
profile                       rtol      atol    rows out of tol.     label agreement
============================  ========  ======  ===================  =====================
network (PyTorch, ONNX)       1e-3      1e-5    0                    >= 99.9%
scikit-learn, float32         1e-5      1e-5    0                    >= 99.9%
scikit-learn, float64         1e-9      1e-7    0                    >= 99.9%
tree ensembles, float32       1e-5      1e-5    <= 0.1% of rows      >= 99.9%
tree ensembles, float64       1e-9      1e-7    <= 0.1% of rows      >= 99.9%
============================  ========  ======  ===================  =====================

(scikit-learn's ``atol`` is numpy's ``decimal=5`` / ``decimal=7`` on probabilities, its ``rtol``
a few hundred float ulps for regression outputs of any scale; trees are held to decisions
because a float32 cast moves a value across a split threshold now and then, which changes that
row's leaf and so its probability by far more than any tolerance.)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis.reporting import with_reporter

from pytest_mlops.checks.metrics import get_metric, score
from pytest_mlops.data.dataset import Dataset
from pytest_mlops.errors import CheckError, DataError, ModelError, choices_text
from pytest_mlops.export.random_rows import frames_from
from pytest_mlops.export.sklearn import walk
from pytest_mlops.models.base import Model, n_rows
from pytest_mlops.models.load import load_model
from pytest_mlops.models.onnx import OnnxModel
from pytest_mlops.results import CheckResult, format_value

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "PROVIDERS",
    "Tolerances",
    "available_providers",
    "check_parity",
    "default_tolerances",
]

Profile = Literal["network", "sklearn", "trees"]
PROFILES: tuple[Profile, ...] = ("network", "sklearn", "trees")
DEFAULT_BATCH_SIZES = (1, 37, 1024)
# Execution providers parity is checked on by default, where onnxruntime has them.
PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider")
# Small batches run one session call per batch: cap the calls so batch size 1 stays fast.
MAX_CALLS_PER_BATCH_SIZE = 256
# Relative differences are measured where the native value is at least this large.
REL_FLOOR = 1e-6
_TREE_WORDS = ("Tree", "Forest", "Boosting", "XGB", "LGBM", "CatBoost")


@dataclass(frozen=True)
class Tolerances:
    """How close the ONNX model must come to the native one.

    Parameters
    ----------
    rtol, atol:
        Elementwise tolerance on every float output, as in ``numpy.isclose``.
    max_mismatch_share:
        Share of rows allowed to have an output out of tolerance (0 for smooth models).
    min_label_agreement:
        Share of rows whose label must agree (1 - the label flip rate).
    max_metric_delta:
        Largest allowed ``|metric(onnx) - metric(native)|``; ``None`` reports it only.
    """

    rtol: float
    atol: float
    max_mismatch_share: float = 0.0
    min_label_agreement: float = 0.999
    max_metric_delta: float | None = None


def default_tolerances(profile: Profile, dtype: str = "float32") -> Tolerances:
    """The documented defaults for a model *profile* exported in *dtype* (see the module doc)."""
    if profile not in PROFILES:
        raise CheckError(f"parity profile must be {choices_text(PROFILES)}, got {profile!r}")
    if profile == "network":
        return Tolerances(rtol=1e-3, atol=1e-5)
    # atol: numpy's decimal=5 / decimal=7 on probabilities; rtol: a few hundred ulps, for
    # regression outputs whose scale makes any absolute tolerance meaningless
    atol, rtol = (1e-5, 1e-5) if dtype != "float64" else (1e-7, 1e-9)
    share = 0.001 if profile == "trees" else 0.0
    return Tolerances(rtol=rtol, atol=atol, max_mismatch_share=share)


def available_providers() -> list[str]:
    """The providers of :data:`PROVIDERS` this onnxruntime build has, CPU first."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [p for p in PROVIDERS if p in have]


def check_parity(
    native: Any,
    onnx_model: Any,
    data: Any,
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    providers: Sequence[str] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_mismatch_share: float | None = None,
    min_label_agreement: float | None = None,
    max_metric_delta: float | None = None,
    metric: str = "auto",
    profile: Profile | None = None,
    random_rows: int = 0,
    schema: Any = None,
    seed: int = 0,
    name: str = "parity",
    progress: Callable[[str], None] | None = None,
) -> CheckResult:
    """Compare an ONNX model's outputs and decisions with the native model's.

    Parameters
    ----------
    native, onnx_model:
        The model that was exported (anything :func:`~pytest_mlops.load_model` adapts), and the
        exported one: an ``.onnx`` path, an ``OnnxExport`` or an ``OnnxModel``.
    data:
        A :class:`~pytest_mlops.Dataset` (its target gives the metric delta) or the input rows.
    batch_sizes:
        Batch sizes the ONNX model runs at; small ones on the first ``256 * size`` rows only.
    providers:
        Execution providers to check (default: those of :data:`PROVIDERS` onnxruntime has). One
        it lacks is an error; a session that falls back to another provider fails the check.
    rtol, atol, max_mismatch_share, min_label_agreement, max_metric_delta:
        Override the defaults of the model's profile (see :func:`default_tolerances`).
    metric, profile:
        The metric compared (``"auto"``: ROC AUC, accuracy or R²; ``"none"`` skips it) and the
        tolerance profile (``"network"``, ``"sklearn"``, ``"trees"``; default: detected).
    random_rows, schema, seed:
        Also run a Hypothesis property on this many random batches of valid rows (satisfying
        *schema*, default inferred; drawn from *seed*); 0 skips it. See ``docs/export.md``.

    Returns
    -------
    CheckResult
        ``kind="parity"``; the worst figures in ``metrics``, one row per provider, batch size
        and output in ``tables["parity"]``.
    """
    setup = _setup(native, onnx_model, data, batch_sizes, providers, profile, metric)
    given = (rtol, atol, max_mismatch_share, min_label_agreement, max_metric_delta)
    tol = _tolerances(setup.profile, setup.dtype, *given)
    rows, problems = _measure(setup, onnx_model, tol, progress)
    tables: dict[str, list[dict[str, Any]]] = {"parity": rows}
    if random_rows > 0 and not problems:
        if progress:
            progress(f"parity: {random_rows} random batches of rows")
        found = _random_rows_parity(setup, tol, RandomRows(random_rows, seed, schema), tables)
        problems.extend([found] if found is not None else [])
    return _verdict(ParityRun(name, tables, problems, tol, setup))


@dataclass(frozen=True)
class ParitySetup:
    """The native model's outputs on the data and how the ONNX model is run against them."""

    native: Model
    first: OnnxModel
    frame: Any
    n: int
    sizes: list[int]
    providers: list[str]
    profile: Profile
    dtype: str
    reference: Outputs
    scorer: Callable[..., float] | None
    native_score: float | None


def _setup(
    native: Any,
    onnx_model: Any,
    data: Any,
    batch_sizes: Sequence[int],
    providers: Sequence[str] | None,
    profile: Profile | None,
    metric: str,
) -> ParitySetup:
    """Load both models, read the rows, run the native model once and pick the scorer."""
    native_model = load_model(native)
    frame, y, n = _rows(data)
    sizes = _batch_sizes(batch_sizes, n)
    wanted = _providers(providers)
    first = _open(onnx_model, wanted[0])
    chosen = profile or detect_profile(native, first)
    dtype = first.session.get_modelmeta().custom_metadata_map.get("pytest_mlops.dtype", "float32")
    reference = _native_outputs(native_model, frame)
    regression = reference.proba is None and reference.labels.dtype.kind == "f"
    scorer = _scorer(metric, native_model, y, regression)
    native_score = scorer(reference) if scorer else None
    return ParitySetup(
        native_model, first, frame, n, sizes, wanted, chosen, dtype, reference, scorer, native_score
    )


def _measure(
    setup: ParitySetup,
    onnx_model: Any,
    tol: Tolerances,
    progress: Callable[[str], None] | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per provider, batch size and output; a provider fallback is a problem."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for provider in setup.providers:
        model = setup.first if provider == setup.providers[0] else _open(onnx_model, provider)
        actual = model.providers[0] if model.providers else "none"
        if actual != provider:
            problems.append(f"onnxruntime ran {actual} when asked for {provider}")
            continue
        feeds = model.feeds(setup.frame)
        for size in setup.sizes:
            if progress:
                progress(f"parity: {provider} batch size {size}")
            rows.extend(_measure_size(setup, model, feeds, size, tol))
    return rows, problems


def _measure_size(
    setup: ParitySetup, model: OnnxModel, feeds: Mapping[str, Any], size: int, tol: Tolerances
) -> list[dict[str, Any]]:
    """The ONNX model run at one batch size, compared with the native outputs."""
    n = setup.n
    count = n if size == setup.sizes[-1] else min(n, size * MAX_CALLS_PER_BATCH_SIZE)
    outputs = _run_batched(model, feeds, size, count)
    measured = _compare(setup.reference, outputs, count, tol)
    scorer = setup.scorer
    onnx_score = scorer(outputs, count) if scorer and count == n else None
    provider = model.providers[0]
    for row in measured:
        row.update(provider=provider, batch_size=size, n=count)
    if setup.native_score is not None:  # on the decisions' row: labels, or values
        measured[-1].update(metric_native=setup.native_score, metric_onnx=onnx_score)
    return measured


@dataclass(frozen=True)
class RandomRows:
    """The random-row property's settings: how many batches, the seed, the schema."""

    examples: int
    seed: int
    schema: Any = None


def _random_rows_parity(
    setup: ParitySetup, tol: Tolerances, settings: RandomRows, tables: dict[str, Any]
) -> str | None:
    """Run the random-row property; the smallest disagreeing row, described, or None.

    Its summary (batches, rows, seed, the failing rows) goes to ``tables["random_rows"]``.
    """
    frame = setup.frame
    as_array = not isinstance(frame, pd.DataFrame)
    if as_array:  # rows are drawn as frames; the models get arrays, as in the data
        array = np.asarray(frame)
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    failing: list[tuple[Any, str]] = []
    drawn = {"examples": 0, "rows": 0}

    def check(rows: Any) -> None:
        drawn["examples"] += 1
        drawn["rows"] += len(rows)
        problem = _disagreement(setup, tol, rows.to_numpy() if as_array else rows)
        if problem is not None:
            failing.append((rows, problem))
            raise AssertionError(problem)

    _run_property(check, frames_from(frame, schema=settings.schema), settings)
    seed = settings.seed
    summary: dict[str, Any] = {"examples": drawn["examples"], "rows": drawn["rows"], "seed": seed}
    tables["random_rows"] = [summary]
    if not failing:
        return None
    rows, problem = failing[-1]
    shown = _show_rows(rows)
    summary.update(failing=str(shown), problem=problem)
    return f"on random valid rows (seed={seed}) {problem}; smallest example: {shown}"


def _run_property(check: Callable[[Any], None], rows: Any, settings: RandomRows) -> None:
    """Hypothesis runs *check* on batches drawn from *rows*, shrinking the first failure."""

    @hypothesis_seed(settings.seed)
    @hypothesis_settings(
        max_examples=settings.examples,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(rows)
    def prop(batch: Any) -> None:
        check(batch)

    with with_reporter(lambda _text: None), contextlib.suppress(AssertionError):
        prop()


def _disagreement(setup: ParitySetup, tol: Tolerances, rows: Any) -> str | None:
    """What differs between the two models on *rows*, or None."""
    onnx_model = setup.first
    reference = _native_outputs(setup.native, rows)
    actual = _run_batched(onnx_model, onnx_model.feeds(rows), len(rows), len(rows))
    flipped = _decisive_flips(reference, actual, tol)
    if flipped:
        return f"labels differ ({flipped} of {len(rows)} rows)"
    for row in _compare(reference, actual, len(rows), tol):
        if setup.profile != "trees" and row.get("mismatch_share", 0.0) > 0:
            return f"{row['output']} differ by up to {format_value(row['max_abs_diff'])}"
    return None


def _show_rows(rows: Any) -> Any:
    """Up to three rows as records, and how many more there are."""
    records = [{str(k): _plain(v) for k, v in row.items()} for _, row in rows.head(3).iterrows()]
    shown: Any = records[0] if len(records) == 1 else records
    if len(rows) > len(records):
        shown = f"{records} and {len(rows) - len(records)} more rows"
    return shown


def _decisive_flips(reference: Outputs, actual: Outputs, tol: Tolerances) -> int:
    """Rows whose label differs where the native decision is not a tie within tolerance.

    An exact 50/50 vote of a forest (or two logits equal to 1e-7) may go either way once sums
    are reordered; a random-row property would trip on such ties, which the label agreement
    over the data already accounts for.
    """
    if reference.labels.dtype.kind == "f" and reference.proba is None:
        return 0  # regression: values are compared instead
    flips = np.asarray(actual.labels.astype(str) != reference.labels.astype(str))
    if reference.proba is not None and reference.proba.shape[1] >= 2:
        top = np.sort(reference.proba, axis=1)
        flips &= (top[:, -1] - top[:, -2]) > 2 * tol.atol + tol.rtol
    return int(flips.sum())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass(frozen=True)
class Outputs:
    """Decisions of one model on some rows: labels (or values) and probabilities."""

    labels: np.ndarray
    proba: np.ndarray | None
    logits: np.ndarray | None = None


def detect_profile(native: Any, onnx_model: Any = None) -> Profile:
    """``trees`` for tree ensembles, ``sklearn`` for other estimators, ``network`` otherwise."""
    obj = getattr(native, "estimator", None) or getattr(native, "module", None) or native
    mro = [f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__]
    if "torch.nn.modules.module.Module" in mro:
        return "network"
    if any(m.startswith("sklearn.") for m in mro) or hasattr(obj, "fit"):
        names = [type(est).__name__ for _, est in walk(obj)]
        return "trees" if any(w in n for n in names for w in _TREE_WORDS) else "sklearn"
    meta = onnx_model.session.get_modelmeta().custom_metadata_map if onnx_model else {}
    source = meta.get("pytest_mlops.source", "")
    return "sklearn" if source.startswith("scikit-learn") else "network"


def _tolerances(
    profile: Profile,
    dtype: str,
    rtol: float | None,
    atol: float | None,
    share: float | None,
    agreement: float | None,
    metric_delta: float | None = None,
) -> Tolerances:
    tol = default_tolerances(profile, dtype)
    if metric_delta is not None:
        tol = replace(tol, max_metric_delta=float(metric_delta))
    given = {
        "rtol": rtol,
        "atol": atol,
        "max_mismatch_share": share,
        "min_label_agreement": agreement,
    }
    for key, value in given.items():
        if value is None:
            continue
        if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
            raise CheckError(f"check_parity: {key} must be a number >= 0, got {value!r}")
        if key in ("max_mismatch_share", "min_label_agreement") and value > 1:
            raise CheckError(f"check_parity: {key} is a share of rows in [0, 1], got {value!r}")
        tol = replace(tol, **{key: float(value)})
    return tol


def _rows(data: Any) -> tuple[Any, Any, int]:
    """Input rows, the target (or None) and the row count."""
    if isinstance(data, Dataset):
        return data.X.reset_index(drop=True), (data.y if data.has_target else None), data.n_rows
    n = n_rows(data)
    if n == 0:
        raise DataError("check_parity: the data has no rows")
    return data, None, n


def _batch_sizes(batch_sizes: Sequence[int], n: int) -> list[int]:
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or any(b < 1 for b in sizes):
        raise CheckError(f"check_parity: batch_sizes must be whole numbers >= 1, got {batch_sizes}")
    return sizes


def _providers(providers: Sequence[str] | None) -> list[str]:
    import onnxruntime as ort

    if providers is None:
        return available_providers()
    have = ort.get_available_providers()
    wanted = [str(p) for p in providers]
    missing = [p for p in wanted if p not in have]
    if missing or not wanted:
        raise CheckError(
            f"check_parity: this onnxruntime has no {missing or 'provider'}; it has {have} "
            "(CUDA needs the onnxruntime-gpu package in place of onnxruntime)"
        )
    return wanted


def _open(onnx_model: Any, provider: str) -> OnnxModel:
    """The ONNX model in a session on *provider*."""
    source = getattr(onnx_model, "path", None) if not isinstance(onnx_model, str | Path) else None
    if isinstance(onnx_model, OnnxModel):
        if onnx_model.path is None:
            if provider not in onnx_model.providers:
                raise CheckError(
                    f"check_parity: the ONNX model was loaded from memory on "
                    f"{onnx_model.providers}; pass its path to check it on {provider}"
                )
            return onnx_model
        source = onnx_model.path
    elif source is None:
        source = onnx_model
    return OnnxModel(source, providers=[provider])


def _native_outputs(model: Model, frame: Any) -> Outputs:

    labels = np.asarray(model.predict(frame))
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64) if model.has_proba else None
    raw = getattr(model, "raw", None)  # a network's own outputs (TorchModel)
    logits = np.asarray(raw(frame), dtype=np.float64) if raw and model.has_proba else None
    return Outputs(labels, proba, logits)


def _run_batched(model: OnnxModel, feeds: Mapping[str, Any], size: int, count: int) -> Outputs:

    labels: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    raws: list[np.ndarray] = []
    single = len(model.session.get_outputs()) == 1
    for start in range(0, count, size):
        chunk = {k: v[start : min(start + size, count)] for k, v in feeds.items()}
        outputs = model.run_feeds(chunk, size)
        lab, proba = model.interpret(outputs)
        labels.append(np.asarray(lab).reshape(len(lab), *np.asarray(lab).shape[1:]))
        if proba is not None:
            probas.append(np.asarray(proba, dtype=np.float64))
        if single and model.output == "logits":
            raws.append(np.asarray(outputs[0], dtype=np.float64))
    return Outputs(
        np.concatenate(labels),
        np.concatenate(probas) if probas else None,
        np.concatenate(raws) if raws else None,
    )


def _compare(
    reference: Outputs, actual: Outputs, count: int, tol: Tolerances
) -> list[dict[str, Any]]:
    """One row per output: differences, rows out of tolerance, label flips."""
    rows: list[dict[str, Any]] = []
    native_labels = reference.labels[:count]
    numeric = native_labels.dtype.kind == "f"
    pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
    if reference.proba is not None and actual.proba is not None:
        pairs.append(("probabilities", reference.proba[:count], actual.proba))
    if reference.logits is not None and actual.logits is not None:
        pairs.append(("logits", reference.logits[:count], actual.logits))
    if numeric:
        pairs.append(("values", native_labels.astype(np.float64), actual.labels.astype(np.float64)))
    for output, want, got in pairs:
        if want.shape != got.shape:
            raise ModelError(
                f"check_parity: the ONNX model's {output} have shape {got.shape}, the native "
                f"model's {want.shape}"
            )
        diff = np.abs(got - want)
        big = np.abs(want) >= REL_FLOOR  # relative differences of near-zero values mean nothing
        rel = diff[big] / np.abs(want[big])
        bad = ~np.isclose(got, want, rtol=tol.rtol, atol=tol.atol, equal_nan=True)
        bad_rows = bad.reshape(count, -1).any(axis=1)
        rows.append(
            {
                "output": output,
                "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
                "max_rel_diff": float(np.nanmax(rel)) if rel.size else 0.0,
                "mismatch_share": float(bad_rows.mean()),
            }
        )
    if not numeric:
        flips = np.asarray(actual.labels.astype(str) != native_labels.astype(str))
        rows.append(
            {
                "output": "labels",
                "label_flip_rate": float(flips.mean()),
                "label_agreement": 1.0 - float(flips.mean()),
                "flipped": int(flips.sum()),
            }
        )
    return rows


def _scorer(metric: str, model: Model, y: Any, regression: bool) -> Callable[..., float] | None:

    if metric == "none" or y is None:
        return None
    if metric == "auto":
        classes = model.classes
        if regression or model.task == "regression":
            metric = "r2"
        elif model.has_proba and (classes is None or len(classes) == 2):
            metric = "roc_auc"
        else:
            metric = "accuracy"
    chosen = get_metric(metric)

    y_all = np.asarray(y)

    def compute(outputs: Outputs, count: int | None = None) -> float:
        k = len(y_all) if count is None else count
        if chosen.needs == "proba":
            if outputs.proba is None:
                raise CheckError(f"check_parity: {chosen.name} needs probabilities")
            return score(chosen, y_all[:k], outputs.proba[:k], model.classes)
        return score(chosen, y_all[:k], outputs.labels[:k])

    compute.metric_name = chosen.name  # type: ignore[attr-defined]
    return compute


@dataclass(frozen=True)
class ParityRun:
    """What the verdict of a parity check is made from."""

    name: str
    tables: dict[str, list[dict[str, Any]]]
    problems: list[str]
    tol: Tolerances
    setup: ParitySetup

    @property
    def metric_name(self) -> str | None:
        """The name of the quality metric compared, if any."""
        name: str | None = getattr(self.setup.scorer, "metric_name", None)
        return name


# (priority, text, (metric, value, op, bound)): decisions first, then quality, then numbers
Finding = tuple[int, str, tuple[str, float, str, float]]


def _verdict(run: ParityRun) -> CheckResult:
    rows = run.tables["parity"]
    metrics, deltas = _summary_metrics(rows, run.metric_name, run.setup.native_score)
    found = _findings(run, rows, deltas)
    context: dict[str, Any] = {
        "n": run.setup.n,
        "model": getattr(run.setup.native, "name", "model"),
        "profile": run.setup.profile,
        "providers": ",".join(sorted({str(r["provider"]) for r in rows})) or "none",
        "batch_sizes": ",".join(str(s) for s in sorted({int(r["batch_size"]) for r in rows})),
        "rtol": run.tol.rtol,
        "atol": run.tol.atol,
    }
    if found:
        return _failed(run, found, metrics, context)
    return _passed(run, metrics, context)


def _summary_metrics(
    rows: list[dict[str, Any]], metric_name: str | None, native: float | None
) -> tuple[dict[str, float], list[float]]:
    """The worst differences and rates over all rows, the metric on both sides, its deltas."""
    metrics: dict[str, float] = {}
    for row in rows:
        out = row["output"]
        for key in ("max_abs_diff", "max_rel_diff"):
            if key in row:
                metrics[f"{key}_{out}"] = max(metrics.get(f"{key}_{out}", 0.0), row[key])
        for key in ("mismatch_share", "label_flip_rate"):
            if key in row:
                metrics[key] = max(metrics.get(key, 0.0), row[key])
    if "label_flip_rate" in metrics:
        metrics["label_agreement"] = 1.0 - metrics["label_flip_rate"]
    scored = [r for r in rows if r.get("metric_onnx") is not None]
    deltas = [abs(r["metric_onnx"] - r["metric_native"]) for r in scored]
    if native is not None and metric_name:
        metrics[f"{metric_name}_native"] = native
        if scored:
            metrics[f"{metric_name}_onnx"] = scored[-1]["metric_onnx"]
        if deltas:
            metrics["metric_delta"] = max(deltas)
    return metrics, deltas


def _findings(run: ParityRun, rows: list[dict[str, Any]], deltas: list[float]) -> list[Finding]:
    """Every failed condition, most important first."""
    tol = run.tol
    found: list[Finding] = []
    for problem in run.problems:
        if problem.startswith("onnxruntime ran"):
            found.append((-1, problem, ("provider_fallbacks", 1.0, "<=", 0.0)))
        else:
            found.append((3, problem, ("random_row_disagreements", 1.0, "<=", 0.0)))
    for row in rows:
        found += _row_findings(row, tol)
    if tol.max_metric_delta is not None and deltas and max(deltas) > tol.max_metric_delta:
        text = (
            f"{run.metric_name} delta must be <= {format_value(tol.max_metric_delta)}: measured "
            f"{format_value(max(deltas))}"
        )
        found.append((1, text, ("metric_delta", max(deltas), "<=", tol.max_metric_delta)))
    found.sort(key=lambda item: item[0])
    return found


def _row_findings(row: dict[str, Any], tol: Tolerances) -> list[Finding]:
    """The label agreement and the outputs out of tolerance of one measured row."""
    where = f"provider={row['provider']}, batch_size={row['batch_size']}, n={row['n']}"
    found: list[Finding] = []
    if "label_agreement" in row and row["label_agreement"] < tol.min_label_agreement:
        agreement = row["label_agreement"]
        text = (
            f"label agreement must be >= {format_value(tol.min_label_agreement)}: measured "
            f"{format_value(agreement)}, {row['flipped']} labels flipped ({where})"
        )
        found.append((0, text, ("label_agreement", agreement, ">=", tol.min_label_agreement)))
    if "mismatch_share" in row and row["mismatch_share"] > tol.max_mismatch_share:
        share = row["mismatch_share"]
        text = (
            f"{row['output']} out of tolerance (rtol={format_value(tol.rtol)}, "
            f"atol={format_value(tol.atol)}) on {share:.2%} of rows, "
            f"allowed {tol.max_mismatch_share:.2%}; max |diff| "
            f"{format_value(row['max_abs_diff'])} ({where})"
        )
        found.append((2, text, ("mismatch_share", share, "<=", tol.max_mismatch_share)))
    return found


def _failed(
    run: ParityRun, found: list[Finding], metrics: dict[str, float], context: dict[str, Any]
) -> CheckResult:
    failures = [text for _, text, _ in found]
    metric, value, op, bound = found[0][2]
    return CheckResult(
        name=run.name,
        kind="parity",
        status="failed",
        message=f"ONNX parity fails: {failures[0]}"
        + (f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""),
        metric=metric,
        value=value,
        op=op,  # type: ignore[arg-type]
        bound=bound,
        details="\n".join(failures),
        metrics=metrics,
        context=context,
        tables=run.tables,
    )


def _passed(run: ParityRun, metrics: dict[str, float], context: dict[str, Any]) -> CheckResult:
    summary = ", ".join(
        f"max |diff| {out} {format_value(metrics[f'max_abs_diff_{out}'])}"
        for out in ("logits", "probabilities", "values")
        if f"max_abs_diff_{out}" in metrics
    )
    if "label_agreement" in metrics:
        summary += f", label agreement {format_value(metrics['label_agreement'])}"
    if "metric_delta" in metrics:
        summary += f", {run.metric_name} delta {format_value(metrics['metric_delta'])}"
    key = "label_agreement" if "label_agreement" in metrics else "mismatch_share"
    tol = run.tol
    return CheckResult(
        name=run.name,
        kind="parity",
        status="passed",
        message=(
            f"ONNX parity holds: {summary.lstrip(', ')} (n={run.setup.n}, "
            f"providers={context['providers']}, batch_sizes={context['batch_sizes']}, "
            f"profile={run.setup.profile})"
        ),
        metric=key,
        value=metrics.get(key, 0.0),
        op=">=" if key == "label_agreement" else "<=",
        bound=tol.min_label_agreement if key == "label_agreement" else tol.max_mismatch_share,
        metrics=metrics,
        context=context,
        tables=run.tables,
    )
