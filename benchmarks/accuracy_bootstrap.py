"""Bootstrap intervals of accuracy metrics: vectorised counts vs one scikit-learn call per resample.

On the UCI Adult holdout (16,281 rows) with the example's model, for each metric: the interval
pytest-mlops computes (``bootstrap_vectorized``: resamples as counts, metrics as weighted sums)
and the plain percentile bootstrap that calls scikit-learn once per resample on the same resampled
rows (``bootstrap``). Both see identical resamples, so the intervals must agree to 1e-9; the
script prints both times (CPU seconds of this process) and their ratio.

    .venv/bin/python benchmarks/accuracy_bootstrap.py [--n-resamples 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "credit_scoring"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(EXAMPLE))

import credit_model  # noqa: E402

from pytest_mlops.checks.metrics import get_metric, resampled, score  # noqa: E402
from pytest_mlops.checks.stats import bootstrap, bootstrap_vectorized  # noqa: E402

METRICS = ("roc_auc", "accuracy", "log_loss", "f1", "pr_auc", "ece")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-resamples", type=int, default=1000)
    args = parser.parse_args()
    holdout = pd.read_csv(EXAMPLE / "data" / "holdout.csv.gz")
    model = credit_model.model()
    X = holdout[credit_model.FEATURES]
    y = holdout["income"].to_numpy()
    labels, proba, classes = model.predict(X), model.predict_proba(X), model.classes_
    n = len(y)
    print(f"UCI Adult holdout, {n} rows, {args.n_resamples} resamples, seed 0 (CPU seconds)")
    print(
        f"{'metric':10s} {'interval':>26s} {'vectorised':>11s} {'per-resample':>13s} {'ratio':>7s}"
    )
    worst = 0.0
    for name in METRICS:
        metric = get_metric(name)
        outputs = proba if metric.needs == "proba" else labels
        start = time.process_time()
        fast = bootstrap_vectorized(
            resampled(metric, y, outputs, classes),
            n,
            estimate=score(metric, y, outputs, classes),
            n_resamples=args.n_resamples,
        )
        t_fast = time.process_time() - start
        start = time.process_time()
        slow = bootstrap(
            lambda rows, m=metric, o=outputs: score(m, y[rows], o[rows], classes),
            n,
            n_resamples=args.n_resamples,
        )
        t_slow = time.process_time() - start
        worst = max(worst, abs(fast.low - slow.low), abs(fast.high - slow.high))
        print(
            f"{name:10s} {fast.estimate:8.4f} [{fast.low:.4f}, {fast.high:.4f}] "
            f"{t_fast:10.2f}s {t_slow:12.2f}s {t_slow / t_fast:6.1f}x"
        )
    print(f"largest difference between the two intervals' ends: {worst:.2e}")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
