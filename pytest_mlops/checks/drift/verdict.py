"""From per-column statistics to a verdict: method choice, correction, thresholds, tables.

Both paths of the drift engine (exact, on two in-memory samples; and profile-based, on a stored
reference) produce a :class:`ColumnStats` per type group; this module turns them into the
``columns`` and ``histograms`` tables and the dataset-level :class:`CheckResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from pytest_mlops.checks.drift.univariate import Correction
from pytest_mlops.errors import CheckError, choices_text, did_you_mean
from pytest_mlops.results import CheckResult, Status, format_value

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CategoricalStats",
    "ColumnNote",
    "DriftSettings",
    "NumericStats",
    "judge",
]

Method = Literal["auto", "test", "effect", "both"]
NumericEffect = Literal["wasserstein+ks", "wasserstein", "psi", "ks"]
CategoricalEffect = Literal["jensenshannon", "psi"]

METHODS: tuple[str, ...] = get_args(Method)
CORRECTIONS: tuple[str, ...] = get_args(Correction)
NUMERIC_EFFECTS: tuple[str, ...] = get_args(NumericEffect)
CATEGORICAL_EFFECTS: tuple[str, ...] = get_args(CategoricalEffect)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,
    "jensenshannon": 0.04,
    "psi": 0.2,
    "ks": 0.1,
}
"""Effect sizes at or above which a (significant) column counts as drifted.

``wasserstein`` is the 1-Wasserstein distance divided by the reference standard deviation (a
shift of 0.1 sigma), ``jensenshannon`` the Jensen–Shannon distance (natural log; 0.04 is about
a 6-point swing in a balanced binary column), ``psi`` the
population stability index (0.1-0.25 is commonly read as moderate, above 0.25 as major), ``ks``
the KS statistic D.
"""


@dataclass(frozen=True)
class DriftSettings:
    """How columns are judged; see ``docs/drift.md`` for the reasoning behind the defaults.

    Parameters
    ----------
    method:
        ``"auto"``: a column drifts when its corrected p-value is below *alpha*, and, when both
        samples have more than *small_sample* values, its effect size also reaches its threshold
        (above a few thousand rows every difference is significant). ``"test"``: p-value only.
        ``"effect"``: effect size only (Evidently's rule above 1000 rows). ``"both"``: both, at
        every sample size.
    correction:
        Across columns: ``"bh"`` (Benjamini–Hochberg), ``"bonferroni"`` or ``"none"``.
    alpha:
        Significance level of the corrected p-values.
    numeric_effect, categorical_effect:
        Which effect size is held to its threshold; ``"wasserstein+ks"`` (the default) holds
        both and reports the one furthest past (or closest to) its threshold, so a shift in a
        skewed column that moves little mass far (Wasserstein) or much mass a little (KS) counts.
    thresholds:
        Overrides of :data:`DEFAULT_THRESHOLDS`, by effect name.
    max_drifted_share:
        The dataset drifts when more than this share of the tested columns drifted (0: any).
    max_missing_change:
        A column also drifts when its missing-value rate moves by more than this (absolute);
        ``None`` switches the rule off.
    small_sample:
        The sample size up to which ``"auto"`` relies on the p-value alone.
    """

    method: Method = "auto"
    correction: Correction = "bh"
    alpha: float = 0.05
    numeric_effect: NumericEffect = "wasserstein+ks"
    categorical_effect: CategoricalEffect = "jensenshannon"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_drifted_share: float = 0.0
    max_missing_change: float | None = 0.1
    small_sample: int = 1000

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("method", self.method, METHODS),
            ("correction", self.correction, CORRECTIONS),
            ("numeric_effect", self.numeric_effect, NUMERIC_EFFECTS),
            ("categorical_effect", self.categorical_effect, CATEGORICAL_EFFECTS),
        ):
            if value not in choices:
                raise CheckError(
                    f"drift setting {name!r} must be {choices_text(choices)}, got {value!r}"
                    f"{did_you_mean(str(value), choices)}"
                )
        for key, limit in self.thresholds.items():
            if key not in DEFAULT_THRESHOLDS:
                raise CheckError(
                    f"drift setting 'thresholds': unknown effect {key!r}"
                    f"{did_you_mean(key, DEFAULT_THRESHOLDS)}; "
                    f"valid effects are {choices_text(DEFAULT_THRESHOLDS)}"
                )
            if not isinstance(limit, int | float) or isinstance(limit, bool) or limit < 0:
                raise CheckError(
                    f"drift setting 'thresholds': {key!r} must be a number >= 0, got {limit!r}"
                )
        if not 0 < self.alpha < 1:
            raise CheckError(f"drift setting 'alpha' must be between 0 and 1, got {self.alpha!r}")
        if not 0 <= self.max_drifted_share <= 1:
            raise CheckError(
                "drift setting 'max_drifted_share' must be between 0 and 1, got "
                f"{self.max_drifted_share!r}"
            )

    def threshold(self, effect: str) -> float:
        return float(self.thresholds.get(effect, DEFAULT_THRESHOLDS[effect]))

    @classmethod
    def from_kwargs(cls, settings: Mapping[str, Any]) -> DriftSettings:
        """Build from keyword settings; an unknown name is a CheckError listing the valid ones."""
        valid = tuple(cls.__dataclass_fields__)
        for key in settings:
            if key not in valid:
                raise CheckError(
                    f"unknown drift setting {key!r}{did_you_mean(key, valid)}; "
                    f"valid settings are {choices_text(valid)}"
                )
        values = dict(settings)
        if values.get("thresholds") is None:
            values.pop("thresholds", None)
        return cls(**values)


@dataclass
class ColumnNote:
    """A column that could not be tested as such, with its explicit status."""

    column: str
    type: str
    note: str
    drifted: bool
    missing_ref: float | None = None
    missing_cur: float | None = None


@dataclass
class NumericStats:
    """Per-column arrays for the numeric columns (all ``(k,)`` unless stated)."""

    names: list[str]
    n_ref: np.ndarray
    n_cur: np.ndarray
    missing_ref: np.ndarray  # rates
    missing_cur: np.ndarray
    ks: np.ndarray
    wasserstein: np.ndarray  # in the column's units
    std_ref: np.ndarray
    std_cur: np.ndarray
    psi: np.ndarray
    psi_edges: np.ndarray  # (k, 9)
    ref_bins: np.ndarray  # (k, 10) shares
    cur_bins: np.ndarray
    ks_error: np.ndarray | None = None  # bound on |D - D_exact| (profile path)
    wasserstein_error: np.ndarray | None = None


@dataclass
class CategoricalStats:
    """Per-column counts for the categorical columns."""

    names: list[str]
    categories: list[list[str]]  # per column; the count matrices are padded with zeros
    ref_counts: np.ndarray  # (k, K)
    cur_counts: np.ndarray
    missing_ref: np.ndarray
    missing_cur: np.ndarray
    unseen: np.ndarray  # share of current values whose category the reference lacks


def _numeric_rows(stats: NumericStats, settings: DriftSettings) -> list[dict[str, Any]]:

    from pytest_mlops.checks.drift.univariate import ks_pvalue

    p = ks_pvalue(stats.ks, stats.n_ref, stats.n_cur)
    scale = np.where(
        stats.std_ref > 0, stats.std_ref, np.where(stats.std_cur > 0, stats.std_cur, 1)
    )
    effects = {
        "wasserstein": stats.wasserstein / scale,
        "psi": stats.psi,
        "ks": stats.ks,
    }
    if settings.numeric_effect == "wasserstein+ks":
        ratio_w = effects["wasserstein"] / max(settings.threshold("wasserstein"), 1e-300)
        ratio_k = effects["ks"] / max(settings.threshold("ks"), 1e-300)
        use_ks = ratio_k > ratio_w
        names = np.where(use_ks, "ks", "wasserstein")
        effect = np.where(use_ks, effects["ks"], effects["wasserstein"])
    else:
        names = np.full(len(stats.names), settings.numeric_effect)
        effect = effects[settings.numeric_effect]
    rows = []
    for i, name in enumerate(stats.names):
        note = "constant in reference" if stats.std_ref[i] == 0 else ""
        rows.append(
            {
                "column": name,
                "type": "numeric",
                "test": "ks",
                "statistic": float(stats.ks[i]),
                "p_value": float(p[i]),
                "effect": float(effect[i]),
                "effect_name": str(names[i]),
                "threshold": settings.threshold(str(names[i])),
                "missing_ref": float(stats.missing_ref[i]),
                "missing_cur": float(stats.missing_cur[i]),
                "unseen": 0.0,
                "n_ref": int(stats.n_ref[i]),
                "n_cur": int(stats.n_cur[i]),
                "wasserstein": float(effects["wasserstein"][i]),
                "psi": float(stats.psi[i]),
                "note": note,
            }
        )
        if stats.ks_error is not None and stats.wasserstein_error is not None:
            rows[-1]["ks_error_bound"] = float(stats.ks_error[i])
            rows[-1]["wasserstein_error_bound"] = float(stats.wasserstein_error[i] / scale[i])
    return rows


def _categorical_rows(stats: CategoricalStats, settings: DriftSettings) -> list[dict[str, Any]]:
    from pytest_mlops.checks.drift.univariate import chi2_homogeneity, jensen_shannon, psi

    statistic, p, _ = chi2_homogeneity(stats.ref_counts, stats.cur_counts)
    ref_total = stats.ref_counts.sum(axis=1, keepdims=True)
    cur_total = stats.cur_counts.sum(axis=1, keepdims=True)
    psi_values = psi(stats.ref_counts / ref_total, stats.cur_counts / cur_total)
    js = jensen_shannon(stats.ref_counts, stats.cur_counts)
    effect = js if settings.categorical_effect == "jensenshannon" else psi_values
    rows = []
    for i, name in enumerate(stats.names):
        unseen = float(stats.unseen[i])
        rows.append(
            {
                "column": name,
                "type": "categorical",
                "test": "chi2",
                "statistic": float(statistic[i]),
                "p_value": float(p[i]),
                "effect": float(effect[i]),
                "effect_name": settings.categorical_effect,
                "threshold": settings.threshold(settings.categorical_effect),
                "missing_ref": float(stats.missing_ref[i]),
                "missing_cur": float(stats.missing_cur[i]),
                "unseen": unseen,
                "n_ref": int(ref_total[i, 0]),
                "n_cur": int(cur_total[i, 0]),
                "jensenshannon": float(js[i]),
                "psi": float(psi_values[i]),
                "note": f"{unseen:.2%} of current values in unseen categories" if unseen else "",
            }
        )
    return rows


def _decide(rows: list[dict[str, Any]], settings: DriftSettings) -> None:
    """Fill ``p_adjusted`` and ``drifted`` in place."""
    from pytest_mlops.checks.drift.univariate import adjust_pvalues

    adjusted = adjust_pvalues(np.array([r["p_value"] for r in rows], float), settings.correction)
    for row, p_adj in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = float(p_adj)
        significant = bool(p_adj < settings.alpha)
        large = bool(row["effect"] >= row["threshold"])
        small = min(row["n_ref"], row["n_cur"]) <= settings.small_sample
        drifted = {
            "test": significant,
            "effect": large,
            "both": significant and large,
            "auto": significant and (large or small),
        }[settings.method]
        change = abs(row["missing_cur"] - row["missing_ref"])
        if settings.max_missing_change is not None and change > settings.max_missing_change:
            drifted = True
            row["note"] = _join(
                row["note"],
                f"missing rate {row['missing_ref']:.2%} -> {row['missing_cur']:.2%}",
            )
        row["drifted"] = drifted


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _note_row(note: ColumnNote) -> dict[str, Any]:
    nan = math.nan
    return {
        "column": note.column,
        "type": note.type,
        "test": "",
        "statistic": nan,
        "p_value": nan,
        "p_adjusted": nan,
        "effect": nan,
        "effect_name": "",
        "threshold": nan,
        "drifted": note.drifted,
        "missing_ref": nan if note.missing_ref is None else note.missing_ref,
        "missing_cur": nan if note.missing_cur is None else note.missing_cur,
        "unseen": nan,
        "n_ref": 0,
        "n_cur": 0,
        "note": note.note,
    }


def _numeric_histograms(stats: NumericStats) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(stats.names):
        edges = [float(e) for e in stats.psi_edges[i]]
        for b in range(len(edges) + 1):
            ref, cur = float(stats.ref_bins[i, b]), float(stats.cur_bins[i, b])
            if ref == 0 and cur == 0:
                continue
            left = edges[b - 1] if b > 0 else -math.inf
            right = edges[b] if b < len(edges) else math.inf
            label = (
                f"<= {format_value(right)}"
                if b == 0
                else f"> {format_value(left)}"
                if b == len(edges)
                else f"({format_value(left)}, {format_value(right)}]"
            )
            rows.append(
                {
                    "column": name,
                    "bin": label,
                    "reference": ref,
                    "current": cur,
                    "left": left,
                    "right": right,
                }
            )
    return rows


def _categorical_histograms(stats: CategoricalStats, top: int = 10) -> list[dict[str, Any]]:

    rows: list[dict[str, Any]] = []
    for i, name in enumerate(stats.names):
        k = len(stats.categories[i])
        ref = stats.ref_counts[i, :k] / max(stats.ref_counts[i].sum(), 1)
        cur = stats.cur_counts[i, :k] / max(stats.cur_counts[i].sum(), 1)
        order = np.argsort(-(ref + cur), kind="stable")
        for j in order[:top]:
            rows.append(
                {
                    "column": name,
                    "bin": stats.categories[i][j],
                    "reference": float(ref[j]),
                    "current": float(cur[j]),
                    "left": None,
                    "right": None,
                }
            )
        if k > top:
            rest = order[top:]
            rows.append(
                {
                    "column": name,
                    "bin": "(other)",
                    "reference": float(ref[rest].sum()),
                    "current": float(cur[rest].sum()),
                    "left": None,
                    "right": None,
                }
            )
    return rows


def judge(
    numeric: NumericStats | None,
    categorical: CategoricalStats | None,
    notes: Sequence[ColumnNote],
    settings: DriftSettings,
    *,
    name: str,
    context: Mapping[str, Any],
    kind: str = "drift",
    order: Sequence[str] = (),
    overrides: Mapping[str, tuple[str, float, float]] | None = None,
) -> CheckResult:
    """The dataset verdict from the per-column statistics.

    *overrides* maps a column to ``(test, statistic, p_value)`` computed elsewhere (another
    backend); the effect sizes, correction and verdict rule stay the same.
    """
    rows, histograms = _column_rows(numeric, categorical, settings, overrides)
    rows += [_note_row(n) for n in notes]
    position = {column: i for i, column in enumerate(order)}
    rows.sort(key=lambda r: position.get(r["column"], len(position)))
    counted = [r for r in rows if r["test"] or r["drifted"]]
    drifted = [r for r in counted if r["drifted"]]
    share = len(drifted) / len(counted) if counted else 0.0
    metrics = _judge_metrics(rows, counted, drifted)
    ctx = dict(context)
    details = _details(drifted, [r for r in rows if not r["test"] and not r["drifted"]])
    result = CheckResult.threshold(
        name=name,
        kind=kind,
        metric="drifted_share",
        value=share,
        max=settings.max_drifted_share,
        context=ctx,
        metrics=metrics,
        details=details,
        tables={"columns": rows, "histograms": histograms},
    )
    if not counted:
        message = f"no column could be tested for drift ({_ctx_text(ctx)})"
        return _restated(result, "inconclusive", message)
    if drifted:
        listed = ", ".join(r["column"] for r in drifted[:5])
        more = f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        message = (
            f"{result.message[: -len(_ctx_suffix(ctx))] if ctx else result.message}"
            f" ({len(drifted)} of {len(counted)} columns drifted: {listed}{more}; {_ctx_text(ctx)})"
        )
        return _restated(result, result.status, message)
    return result


def _column_rows(
    numeric: NumericStats | None,
    categorical: CategoricalStats | None,
    settings: DriftSettings,
    overrides: Mapping[str, tuple[str, float, float]] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One decided row per tested column, and the histograms of those columns."""
    rows: list[dict[str, Any]] = []
    histograms: list[dict[str, Any]] = []
    if numeric is not None and numeric.names:
        rows += _numeric_rows(numeric, settings)
        histograms += _numeric_histograms(numeric)
    if categorical is not None and categorical.names:
        rows += _categorical_rows(categorical, settings)
        histograms += _categorical_histograms(categorical)
    for row in rows:
        if overrides and row["column"] in overrides:
            row["test"], row["statistic"], row["p_value"] = overrides[row["column"]]
    _decide(rows, settings)
    return rows, histograms


def _judge_metrics(
    rows: list[dict[str, Any]], counted: list[dict[str, Any]], drifted: list[dict[str, Any]]
) -> dict[str, float]:
    """The dataset's figures: drifted share and count, largest effect, the error bounds."""
    metrics: dict[str, float] = {
        "drifted_share": len(drifted) / len(counted) if counted else 0.0,
        "n_drifted": float(len(drifted)),
        "n_columns": float(len(counted)),
        "max_effect": max((r["effect"] for r in rows if r["test"]), default=0.0),
    }
    bounds = [r["ks_error_bound"] for r in rows if "ks_error_bound" in r]
    if bounds:
        metrics["ks_error_bound"] = max(bounds)
        metrics["wasserstein_error_bound"] = max(
            r["wasserstein_error_bound"] for r in rows if "wasserstein_error_bound" in r
        )
    return metrics


def _restated(result: CheckResult, status: Status, message: str) -> CheckResult:
    """*result* with another status and message, everything else kept."""
    return CheckResult(
        name=result.name,
        kind=result.kind,
        status=status,
        message=message,
        metric=result.metric,
        value=result.value,
        op=result.op,
        bound=result.bound,
        details=result.details,
        metrics=result.metrics,
        context=result.context,
        tables=result.tables,
    )


def _ctx_text(ctx: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in ctx.items())


def _ctx_suffix(ctx: Mapping[str, Any]) -> str:
    return f" ({_ctx_text(ctx)})"


def _details(drifted: list[dict[str, Any]], untested: list[dict[str, Any]]) -> str:
    lines = []
    for r in drifted:
        if r["test"]:
            lines.append(
                f"{r['column']}: {r['effect_name']}={format_value(r['effect'])} "
                f"(threshold {format_value(r['threshold'])}), {r['test']} "
                f"p_adjusted={format_value(r['p_adjusted'])}"
                + (f"; {r['note']}" if r["note"] else "")
            )
        else:
            lines.append(f"{r['column']}: {r['note']}")
    lines += [f"{r['column']}: not tested ({r['note']})" for r in untested]
    return "\n".join(lines)
