"""Verdict quality of the fairness gate on UCI Adult: false alarms on a model fair by construction.

Each trial takes the example model's decisions on the holdout split and shuffles them across the
rows with the trial's seed: the decisions keep the model's selection rate but are independent of
sex, race and the label, so every group has the same selection rate, TPR and FPR in expectation
(demographic parity, equalized odds and equal opportunity all hold). The gate then runs with the
trial's seed (a fresh bootstrap). It must not FAIL more often than its configured alpha,
``1 - confidence`` (5% at 95%). With ``on = "interval"`` it fails only when the whole interval is
beyond the bound. The hardest bound is the truth itself (0 for a difference, 1 for a ratio):
there the gate fails exactly when its simultaneous intervals reject "all groups are equal", which
may happen at most alpha of the time; looser bounds fail far less. The ``estimate`` rows show what
a gate on the point estimate alone does on the same trials (the estimate of a largest gap is
biased upwards, most with small groups).

    .venv/bin/python benchmarks/fairness_false_alarms.py --trials 200

Every disparity of a trial comes from one ``check_fairness`` call per grouping: the gated one is
the result's own verdict, the others are judged from the same result's ``disparities`` table with
the same ``interval_verdict``. Then the regression gate between two equally fair models (two
independent shuffles) at margin 0, which must not fail more often than alpha either; a power check
(women's positive decisions halved must fail the four-fifths rule); and the time of one check
(1000 resamples) against fairlearn's own bootstrap (``MetricFrame(n_boot=...)``) on the same rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "credit_scoring"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(EXAMPLE))

import credit_model  # noqa: E402

from pytest_mlops import Dataset, check_fairness, compare_fairness, load_model  # noqa: E402
from pytest_mlops.checks.stats import Interval, interval_verdict  # noqa: E402
from pytest_mlops.models.callable import CallableModel  # noqa: E402

GROUPINGS = (("sex", False), ("race", False), (("sex", "race"), True))
# (disparity, min, max). At the truth (0 for a difference, 1 for a ratio) is the hardest case: a
# gate whose interval is too narrow or biased fails there first. Then bounds a team would set.
BOUNDS = (
    ("demographic_parity_difference", None, 0.0),
    ("demographic_parity_ratio", 1.0, None),
    ("equalized_odds_difference", None, 0.0),
    ("equalized_odds_ratio", 1.0, None),
    ("equal_opportunity_difference", None, 0.0),
    ("equal_opportunity_ratio", 1.0, None),
    ("demographic_parity_difference", None, 0.02),
    ("four_fifths", 0.8, None),
    ("equalized_odds_difference", None, 0.05),
)
GATED = BOUNDS[6]


def _verdicts(result, on: str, confidence: float) -> dict[tuple[str, str, float], str]:
    rows = {r["metric"]: r for r in result.tables["disparities"]}
    out = {}
    for metric, low, high in BOUNDS:
        row = rows["demographic_parity_ratio" if metric == "four_fifths" else metric]
        key = (metric, ">=" if low is not None else "<=", low if low is not None else high)
        if row["value"] is None or row["ci_low"] is None:
            out[key] = "inconclusive"
            continue
        interval = Interval(row["value"], row["ci_low"], row["ci_high"], confidence, 0, 0)
        out[key] = interval_verdict(interval, min=low, max=high, on=on)  # type: ignore[arg-type]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--min-group-size", type=int, default=30)
    args = parser.parse_args()
    alpha = 1 - args.confidence

    holdout = pd.read_csv(EXAMPLE / "data" / "holdout.csv.gz")
    train = pd.read_csv(EXAMPLE / "data" / "train.csv.gz")
    model = load_model(credit_model.train(train), name="credit")
    data = Dataset(holdout, target="income", sensitive=("sex", "race"), name="holdout")
    decisions = model.predict(data.X)
    print(
        f"UCI Adult holdout: {data.n_rows} rows; shuffled decisions of the example model "
        f"(selection rate {decisions.mean():.3f}); {args.trials} trials, {args.resamples} "
        f"resamples, confidence {args.confidence:.0%} (alpha {alpha:.3f}), "
        f"min_group_size {args.min_group_size}"
    )

    tallies: dict[tuple[str, str, tuple[str, str, float]], Counter[str]] = {}
    started = time.perf_counter()
    for trial in range(args.trials):
        shuffled = np.random.default_rng(10_000 + trial).permutation(decisions)
        fair = CallableModel(lambda X, p=shuffled: p, classes=[0, 1], name="shuffled")
        for sensitive, intersectional in GROUPINGS:
            result = check_fairness(
                fair,
                data,
                sensitive=sensitive,
                intersectional=intersectional,
                metric=GATED[0],
                max=GATED[2],
                min_group_size=args.min_group_size,
                n_resamples=args.resamples,
                confidence=args.confidence,
                seed=trial,
            )
            label = " x ".join([sensitive] if isinstance(sensitive, str) else sensitive)
            for on in ("interval", "estimate"):
                verdicts = _verdicts(result, on, args.confidence)
                if on == "interval":
                    assert verdicts[(GATED[0], "<=", GATED[2])] == result.status, "table != gate"
                for key, status in verdicts.items():
                    if on == "estimate" and key[2] in (0.0, 1.0):
                        continue  # a point estimate is never below 0 or above 1: not a test
                    tallies.setdefault((label, on, key), Counter())[status] += 1
    elapsed = time.perf_counter() - started
    checks = args.trials * len(GROUPINGS)
    print(f"{checks} checks in {elapsed:.1f} s ({elapsed / checks * 1000:.0f} ms per check)\n")

    worst, above = 0.0, []
    header = (
        f"{'grouping':<11} {'on':<9} {'gate':<40} {'FAILED':>7} {'95% upper':>9} {'INCONCL':>8}"
    )
    print(header)
    print("-" * len(header))
    for (label, on, (metric, op, bound)), counts in tallies.items():
        n = sum(counts.values())
        failed = counts["failed"]
        upper = binomtest(failed, n).proportion_ci(0.95).high
        rate = failed / n
        if on == "interval":
            worst = max(worst, rate)
            if binomtest(failed, n, alpha, alternative="greater").pvalue < 0.01:
                above.append(f"{label} {metric} {op} {bound:g}")
        print(
            f"{label:<11} {on:<9} {metric + ' ' + op + ' ' + format(bound, 'g'):<40} "
            f"{rate:>7.1%} {upper:>9.1%} {counts['inconclusive'] / n:>8.1%}"
        )
    print(
        f"\nworst false-alarm rate of the interval gate: {worst:.1%} "
        f"(alpha {alpha:.1%}; ratio {worst / alpha:.2f}); significantly above alpha "
        f"(binomial test, p < 0.01): {', '.join(above) or 'none'}"
    )
    regression_above = _regression(data, decisions, args, alpha)
    _power(data, decisions, args)
    _timing(model, data, decisions, args.resamples)
    return 1 if above or regression_above else 0


def _regression(
    data: Dataset, decisions: np.ndarray, args: argparse.Namespace, alpha: float
) -> bool:
    """The regression gate between two equally fair models (two shuffles) at margin 0."""
    tallies: dict[tuple[str, str], Counter[str]] = {}
    for trial in range(args.trials):
        rng = np.random.default_rng(20_000 + trial)
        first, second = rng.permutation(decisions), rng.permutation(decisions)
        candidate = CallableModel(lambda X, p=first: p, classes=[0, 1], name="candidate")
        baseline = CallableModel(lambda X, p=second: p, classes=[0, 1], name="baseline")
        for sensitive in ("sex", "race"):
            result = compare_fairness(
                candidate,
                baseline,
                data,
                sensitive=sensitive,
                margin=0.0,
                min_group_size=args.min_group_size,
                n_resamples=args.resamples,
                confidence=args.confidence,
                seed=trial,
            )
            for row in result.tables["disparities"]:
                if row["ci_low"] is None:
                    status = "inconclusive"
                else:
                    interval = Interval(row["value"], row["ci_low"], row["ci_high"], 0.95, 0, 0)
                    status = interval_verdict(interval, max=0.0, on="interval")
                tallies.setdefault((sensitive, row["metric"]), Counter())[status] += 1
    print(
        f"\nregression gate, two equally fair models (two shuffles), margin 0, {args.trials} trials"
    )
    above = False
    for (sensitive, metric), counts in tallies.items():
        n = sum(counts.values())
        rate = counts["failed"] / n
        above |= binomtest(counts["failed"], n, alpha, alternative="greater").pvalue < 0.01
        print(f"  {sensitive:<5} {metric + '_worsening <= 0':<46} FAILED {rate:>6.1%}")
    return above


def _power(data: Dataset, decisions: np.ndarray, args: argparse.Namespace) -> None:
    """The gates still catch real disparities.

    Four-fifths: women's positive decisions halved. Regression: a candidate that is the fair
    baseline with a fifth of women's positive decisions turned negative (a demographic parity
    difference worse by about 0.04), against a margin of 0.01.
    """
    women = (data.frame["sex"] == "Female").to_numpy()
    rule: Counter[str] = Counter()
    regression: Counter[str] = Counter()
    ratios, worsening = [], []
    trials = max(20, args.trials // 5)
    for trial in range(trials):
        rng = np.random.default_rng(30_000 + trial)
        fair = rng.permutation(decisions)
        halved, cut = fair.copy(), fair.copy()
        halved[women & (rng.random(len(fair)) < 0.5)] = 0
        cut[women & (rng.random(len(fair)) < 0.2)] = 0
        unfair = CallableModel(lambda X, p=halved: p, classes=[0, 1], name="unfair")
        result = check_fairness(
            unfair,
            data,
            sensitive="sex",
            metric="four_fifths",
            n_resamples=args.resamples,
            seed=trial,
        )
        rule[result.status] += 1
        ratios.append(result.value)
        compared = compare_fairness(
            CallableModel(lambda X, p=cut: p, classes=[0, 1], name="candidate"),
            CallableModel(lambda X, p=fair: p, classes=[0, 1], name="baseline"),
            data,
            sensitive="sex",
            margin=0.01,
            n_resamples=args.resamples,
            seed=trial,
        )
        regression[compared.status] += 1
        worsening.append(compared.value)
    print(
        f"\npower over {trials} trials: women's positive decisions halved (selection-rate ratio "
        f"{np.mean(ratios):.2f}), four_fifths >= 0.8 on sex: "
        + ", ".join(f"{k} {v / trials:.0%}" for k, v in sorted(rule.items()))
        + f"\n  a fifth of women's positives cut (worsening {np.mean(worsening):.3f}), "
        "fairness_regression margin 0.01 on sex: "
        + ", ".join(f"{k} {v / trials:.0%}" for k, v in sorted(regression.items()))
    )


def _timing(model, data: Dataset, decisions: np.ndarray, resamples: int) -> None:
    from fairlearn.metrics import MetricFrame, selection_rate

    started = time.perf_counter()
    check_fairness(model, data, sensitive="sex", max=0.2, n_resamples=resamples)
    ours = time.perf_counter() - started
    boots = 20
    started = time.perf_counter()
    MetricFrame(
        metrics=selection_rate,
        y_true=data.y,
        y_pred=decisions,
        sensitive_features=data.frame["sex"],
        n_boot=boots,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    ).difference_ci()
    theirs = (time.perf_counter() - started) / boots
    print(
        f"\ntiming on {data.n_rows} rows, sex: check_fairness with {resamples} resamples (all six "
        f"disparities, model predictions included) {ours:.2f} s; fairlearn MetricFrame bootstrap "
        f"{theirs * 1000:.0f} ms per resample (one metric) = {theirs * resamples:.1f} s for "
        f"{resamples}; ratio {theirs * resamples / ours:.0f}x"
    )


if __name__ == "__main__":
    raise SystemExit(main())
