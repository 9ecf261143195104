"""Verdict quality of the drift gate on UCI Adult, with default settings.

Each trial splits the training split into two random halves (reseeded per trial):

- null: the halves come from the same population; the gate must fire in at most alpha of trials;
- +0.2 sigma: one numeric column of the current half shifted by 0.2 of its standard deviation;
- x1.2 scale: one numeric column's deviations from its mean multiplied by 1.2;
- category swap: 10% of the current half's rows (at random) relabelled, in one categorical
  column, to that column's rarest category;

the injected column cycles over the numeric (categorical) columns, and the detection rate is
reported per column. Finally a 0.01 sigma shift on 1,000,000 normal rows must not be called drift.

    .venv/bin/python benchmarks/drift_false_alarms.py --trials 200
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_mlops import check_drift

DATA = Path(__file__).resolve().parent.parent / "examples" / "credit_scoring" / "data"


def swap_categories(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """The given rows relabelled to the column's rarest category (a mis-mapped code)."""
    rarest = column.value_counts().index[-1]
    out = column.copy()
    out.iloc[rows] = rarest
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()

    frame = pd.read_csv(DATA / "train.csv.gz").drop(columns="income")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    sigma = frame[numeric].std()
    fired: dict[str, list[bool]] = defaultdict(list)
    start = time.perf_counter()
    for trial in range(args.trials):
        rng = np.random.default_rng(1000 + trial)
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        ref = frame.iloc[order[:half]].reset_index(drop=True)
        cur = frame.iloc[order[half : 2 * half]].reset_index(drop=True)
        fired["null"].append(check_drift(ref, cur, alpha=args.alpha).failed)

        column = numeric[trial % len(numeric)]
        shifted = cur.assign(**{column: cur[column] + 0.2 * sigma[column]})
        fired[f"+0.2 sigma {column}"].append(check_drift(ref, shifted, alpha=args.alpha).failed)

        mean = cur[column].mean()
        scaled = cur.assign(**{column: mean + 1.2 * (cur[column] - mean)})
        fired[f"x1.2 scale {column}"].append(check_drift(ref, scaled, alpha=args.alpha).failed)

        column = categorical[trial % len(categorical)]
        rows = rng.choice(len(cur), size=len(cur) // 10, replace=False)
        swapped = cur.assign(**{column: swap_categories(cur[column], rows)})
        fired[f"swap 10% {column}"].append(check_drift(ref, swapped, alpha=args.alpha).failed)
    seconds = time.perf_counter() - start

    print(
        f"UCI Adult train split, two random halves of {half} rows, {args.trials} trials, "
        f"default settings (alpha={args.alpha}, BH, effect thresholds), {seconds:.0f} s"
    )
    null = np.mean(fired["null"])
    print(f"  null (no drift): gate fired in {null:.1%} of trials (must be <= {args.alpha:.0%})")
    for family in ("+0.2 sigma", "x1.2 scale", "swap 10%"):
        keys = sorted(k for k in fired if k.startswith(family))
        total = np.mean([v for k in keys for v in fired[k]])
        print(f"  {family}: detected in {total:.1%} of trials (target >= 95%)")
        for key in keys:
            print(
                f"      {key[len(family) + 1 :]:<16} {np.mean(fired[key]):6.1%}  ({len(fired[key])} trials)"
            )

    rng = np.random.default_rng(7)
    n = 1_000_000
    ref = pd.DataFrame({"x": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"x": rng.normal(0.01, 1, n)})
    result = check_drift(ref, cur)
    (row,) = result.tables["columns"]
    print(
        f"  0.01 sigma shift on {n:,} rows: {'DRIFT' if result.failed else 'no drift'} "
        f"(KS p_adjusted={row['p_adjusted']:.2e}, wasserstein={row['effect']:.4f} < "
        f"threshold {row['threshold']})"
    )


if __name__ == "__main__":
    main()
