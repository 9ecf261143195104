"""Our exact two-sample KS p-value against scipy's (``ks_2samp(method="exact")``), same run.

For each pair of sample sizes it times both on the same data (best of ``--repeat`` runs) and
prints the ratio ours / scipy and the largest difference of the p-values: for one column, and
for ``--columns`` columns of those sizes at once (what a drift check computes; ours makes one
pass over the lattice for all of them, scipy one call per column).

    .venv/bin/python benchmarks/ks_exact.py
    .venv/bin/python benchmarks/ks_exact.py --sizes 1000x1000 10000x9000 --repeat 5
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats

from pytest_mlops.checks.drift.ks_exact import ks_2samp_exact_pvalue, ks_2samp_exact_pvalues


def _best(repeat: int, call: Callable[..., object], *args: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def _scipy_all(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[object]:
    return [stats.ks_2samp(x, y, method="exact") for x, y in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["200x150", "2000x1500", "5000x5000", "10000x9000"]
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'sizes':>12} {'scipy s':>9} {'ours s':>9} {'ours/scipy':>10} {'max |dp|':>10}")
    _one_column(args, rng)
    print(f"\n{args.columns} columns of the same sizes:")
    print(f"{'sizes':>12} {'scipy s':>9} {'ours s':>9} {'ours/scipy':>10} {'max |dp|':>10}")
    _columns(args, rng)


def _columns(args: argparse.Namespace, rng: np.random.Generator) -> None:
    for spec in args.sizes:
        n1, n2 = (int(v) for v in spec.split("x"))
        pairs = [(rng.normal(size=n1), rng.normal(loc=0.03, size=n2)) for _ in range(args.columns)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = [stats.ks_2samp(x, y, method="exact") for x, y in pairs]
            t_scipy = _best(1, _scipy_all, pairs)
        d = np.array([r.statistic for r in theirs])
        ours = ks_2samp_exact_pvalues(d, n1, n2)
        t_ours = _best(1, ks_2samp_exact_pvalues, d, n1, n2)
        diff = float(np.max(np.abs(ours - np.array([r.pvalue for r in theirs]))))
        print(f"{spec:>12} {t_scipy:9.4f} {t_ours:9.4f} {t_ours / t_scipy:10.1f} {diff:10.2e}")


def _one_column(args: argparse.Namespace, rng: np.random.Generator) -> None:
    for spec in args.sizes:
        n1, n2 = (int(v) for v in spec.split("x"))
        x, y = rng.normal(size=n1), rng.normal(loc=0.03, size=n2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = stats.ks_2samp(x, y, method="exact")
            t_scipy = _best(args.repeat, _scipy_all, [(x, y)])
        ours = ks_2samp_exact_pvalue(theirs.statistic, n1, n2)
        t_ours = _best(args.repeat, ks_2samp_exact_pvalue, theirs.statistic, n1, n2)
        diff = abs(ours - theirs.pvalue)
        print(f"{spec:>12} {t_scipy:9.4f} {t_ours:9.4f} {t_ours / t_scipy:10.1f} {diff:10.2e}")


if __name__ == "__main__":
    main()
