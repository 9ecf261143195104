"""Verdict quality of the champion gate on UCI Adult: false alarms between equal models, and power.

Each trial splits the training data at random into two halves and fits the same pipeline on each:
two equally good models. The champion gate compares them on the holdout split; it must not FAIL
more often than its configured alpha, (1 - confidence) / 2 (2.5% at 95%). Each trial also fits
the pipeline on a random 5% of the training data, a clearly worse model, and compares it with the
first half's model: the gate should catch it (FAILED, or at least not PASSED).

    .venv/bin/python benchmarks/champion_false_alarms.py --trials 100

The features are encoded once (one-hot and scaling fitted on the training split, which involves no
label), so a trial fits only the logistic regressions; every comparison runs the library's
``compare_models`` with the trial's seed.
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
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "credit_scoring"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(EXAMPLE))

import credit_model  # noqa: E402

from pytest_mlops import CheckResult, Dataset, compare_models, load_model  # noqa: E402
from pytest_mlops.checks.compare import non_inferiority  # noqa: E402
from pytest_mlops.checks.metrics import get_metric  # noqa: E402
from pytest_mlops.checks.stats import Interval  # noqa: E402

SETTINGS = (("roc_auc", 0.005), ("roc_auc", 0.0), ("accuracy", 0.005))


def encoded() -> tuple[pd.DataFrame, np.ndarray, Dataset]:
    train = pd.read_csv(EXAMPLE / "data" / "train.csv.gz")
    holdout = pd.read_csv(EXAMPLE / "data" / "holdout.csv.gz")
    encode = credit_model.build().named_steps["encode"]
    X_train = encode.fit_transform(train[credit_model.FEATURES])
    X_hold = encode.transform(holdout[credit_model.FEATURES])
    columns = [f"x{i}" for i in range(X_hold.shape[1])]
    frame = pd.DataFrame(_dense(X_hold), columns=columns)
    frame["income"] = holdout["income"].to_numpy()
    data = Dataset(frame, target="income", name="holdout")
    return pd.DataFrame(_dense(X_train), columns=columns), train["income"].to_numpy(), data


def _dense(X: object) -> np.ndarray:
    return np.asarray(X.todense() if hasattr(X, "todense") else X)  # type: ignore[union-attr]


def fit(X: pd.DataFrame, y: np.ndarray, rows: np.ndarray) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(X.iloc[rows], y[rows])


def rate_text(count: int, trials: int) -> str:
    ci = binomtest(count, trials).proportion_ci(0.95, method="exact")
    return f"{count / trials:6.1%} [95% CI {ci.low:.1%}, {ci.high:.1%}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--n-resamples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    X, y, data = encoded()
    n = len(y)
    equal: dict[tuple[str, float], Counter[str]] = {s: Counter() for s in SETTINGS}
    worse: dict[tuple[str, float], Counter[str]] = {s: Counter() for s in SETTINGS}
    gaps: list[float] = []
    started = time.perf_counter()
    for trial in range(args.trials):
        rng = np.random.default_rng(1000 + trial)
        perm = rng.permutation(n)
        first, second = perm[: n // 2], perm[n // 2 :]
        small = rng.choice(n, size=n // 20, replace=False)
        model_a = load_model(fit(X, y, first), name="half-A")
        model_b = load_model(fit(X, y, second), name="half-B")
        model_w = load_model(fit(X, y, small), name="5%")
        for metric in dict.fromkeys(m for m, _ in SETTINGS):
            options = dict(n_resamples=args.n_resamples, confidence=args.confidence, seed=trial)
            same = compare_models(model_b, model_a, data, metric=metric, **options)
            bad = compare_models(model_w, model_a, data, metric=metric, **options)
            if metric == "roc_auc":
                gaps.append(bad.metrics["difference"])
            # the interval does not depend on the margin: judge it under each configured one
            for setting in [s for s in SETTINGS if s[0] == metric]:
                equal[setting][verdict(same, setting[1], metric)] += 1
                worse[setting][verdict(bad, setting[1], metric)] += 1
        if (trial + 1) % 10 == 0:
            print(f"  {trial + 1} trials, {time.perf_counter() - started:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    alpha = (1 - args.confidence) / 2
    print(f"champion gate on UCI Adult: {args.trials} trials, {args.n_resamples} paired resamples,")
    print(
        f"confidence {args.confidence:.0%} -> configured alpha (FAILED between equal models) "
        f"{alpha:.1%}; {elapsed:.0f} s"
    )
    print()
    print("equal models (two random halves of the training split):")
    for (metric, margin), counts in equal.items():
        print(
            f"  {metric:8s} margin {margin:<6g} false alarms (FAILED) "
            f"{rate_text(counts['failed'], args.trials)}  INCONCLUSIVE "
            f"{rate_text(counts['inconclusive'], args.trials)}"
        )
    print()
    print(f"worse model (5% of the training split; mean roc_auc gap {np.mean(gaps):+.4f}):")
    for (metric, margin), counts in worse.items():
        caught = counts["failed"] + counts["inconclusive"]
        print(
            f"  {metric:8s} margin {margin:<6g} detected (FAILED) "
            f"{rate_text(counts['failed'], args.trials)}  not passed "
            f"{rate_text(caught, args.trials)}"
        )
    false_alarm = equal[SETTINGS[0]]["failed"] / args.trials
    return 0 if false_alarm <= alpha else 1


def verdict(result: CheckResult, margin: float, metric: str) -> str:
    interval = Interval(
        result.metrics["difference"],
        result.metrics["ci_low"],
        result.metrics["ci_high"],
        0.95,
        0,
        0,
    )
    return non_inferiority(interval, margin, greater_is_better=get_metric(metric).greater_is_better)


if __name__ == "__main__":
    raise SystemExit(main())
