"""Drift engine speed, agreement and memory on 1,000,000 rows x 50 numeric columns.

Compares, in the same run:

- ours: ``check_drift(reference, current)`` - the full univariate suite (KS statistic and
  p-value, 1-Wasserstein, PSI, histograms, correction, verdict);
- a ``scipy.stats.ks_2samp`` loop over the columns (what alibi-detect's KSDrift runs);
- Evidently's ``DataDriftPreset`` in its own virtual environment (Evidently pins pandas < 3);
  on a subsample of ``--evidently-rows`` rows, extrapolated linearly to ``--rows`` (its
  per-column work is sort-based, so linear extrapolation flatters Evidently slightly).

Memory: a subprocess builds the data, then measures the peak of Python/NumPy allocations
(``tracemalloc``) while ``check_drift`` runs; reported as (data + peak) / data.

    .venv/bin/python benchmarks/drift.py                  # 1M x 50, Evidently on 50,000 rows
    .venv/bin/python benchmarks/drift.py --rows 200000 --skip-evidently

Evidently's environment: ``python3 -m venv ~/.cache/pytest-mlops/venv-evidently &&
~/.cache/pytest-mlops/venv-evidently/bin/pip install evidently==0.7.23 'pandas<3'``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVIDENTLY = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "pytest-mlops"
    / "venv-evidently"
    / "bin"
    / "python"
)

MAKE_DATA = textwrap.dedent(
    """
    import numpy as np, pandas as pd

    def make(rows, columns, seed=0):
        rng = np.random.default_rng(seed)
        names = [f"f{i}" for i in range(columns)]
        ref = pd.DataFrame(rng.normal(size=(rows, columns)), columns=names)
        cur_values = rng.normal(size=(rows, columns))
        cur_values[:, : columns // 10] += 0.2          # a tenth of the columns drift by 0.2 sigma
        cur_values[:, columns // 10 : columns // 5] *= 1.01   # and a tenth change a little
        cur = pd.DataFrame(cur_values, columns=names)
        del cur_values
        return ref, cur
    """
)


def _make(rows: int, columns: int) -> tuple[Any, Any]:
    namespace: dict[str, Any] = {}
    exec(MAKE_DATA, namespace)
    return namespace["make"](rows, columns)  # type: ignore[no-any-return]


def warm_up(ref: Any, cur: Any) -> float:
    """Imports and first-call costs, out of the timings: seconds of the first call on one column.

    With numba installed that call loads the compiled passes (columns from
    ``kernel.COMPILED_FROM`` values on), once per process.
    """
    from pytest_mlops import check_drift

    start = time.perf_counter()
    check_drift(ref.iloc[:, :1], cur.iloc[:, :1])
    return time.perf_counter() - start


def run_interleaved(
    ref: Any, cur: Any, block: int = 5
) -> tuple[float, float, Any, dict[str, tuple[float, float]]]:
    """Ours and the scipy loop timed block of columns by block of columns, alternately, so both
    see the same load on a shared machine; then ours once more on all columns for the result."""
    from scipy import stats

    from pytest_mlops import check_drift

    names = list(ref.columns)
    ours_s = scipy_s = 0.0
    scipy_out: dict[str, tuple[float, float]] = {}
    for start in range(0, len(names), block):
        columns = names[start : start + block]
        t0 = time.perf_counter()
        check_drift(ref, cur, columns=columns)
        t1 = time.perf_counter()
        for column in columns:
            res = stats.ks_2samp(ref[column].to_numpy(), cur[column].to_numpy())
            scipy_out[column] = (float(res.statistic), float(res.pvalue))
        t2 = time.perf_counter()
        ours_s += t1 - t0
        scipy_s += t2 - t1
    result = check_drift(ref, cur)
    return ours_s, scipy_s, result, scipy_out


def time_ours(ref: Any, cur: Any) -> float:
    from pytest_mlops import check_drift

    start = time.perf_counter()
    check_drift(ref, cur)
    return time.perf_counter() - start


def memory_child(rows: int, columns: int) -> None:
    """Run in a subprocess: peak allocations of check_drift over the data size, as JSON."""
    import resource
    import tracemalloc

    from pytest_mlops import check_drift

    ref, cur = _make(rows, columns)
    warm_up(ref, cur)
    data_bytes = int(ref.memory_usage(index=False).sum() + cur.memory_usage(index=False).sum())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    check_drift(ref, cur)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "data_bytes": data_bytes,
                "peak_bytes": peak,
                "max_rss_before": rss_before,
                "max_rss_after": rss_after,
            }
        )
    )


EVIDENTLY_CHILD = MAKE_DATA + textwrap.dedent(
    """
    import json, sys, time
    rows, columns = int(sys.argv[1]), int(sys.argv[2])
    ref, cur = make(rows, columns)
    from evidently import Report
    from evidently.presets import DataDriftPreset
    Report([DataDriftPreset()]).run(current_data=cur.head(1000), reference_data=ref.head(1000))
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    seconds = time.perf_counter() - start
    first = snapshot.dict()["metrics"][0]["value"]
    print(json.dumps({"seconds": seconds, "drifted": first}))
    """
)


def run_evidently(python: Path, rows: int, columns: int) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", EVIDENTLY_CHILD, str(rows), str(columns)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--evidently-rows", type=int, default=50_000)
    parser.add_argument("--evidently-python", type=Path, default=DEFAULT_EVIDENTLY)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.rows, args.columns)
        return

    print(f"data: {args.rows:,} rows x {args.columns} numeric columns, reference and current")
    ref, cur = _make(args.rows, args.columns)
    first_s = warm_up(ref, cur)
    from pytest_mlops.checks.drift import kernel

    passes = "compiled (numba)" if kernel.for_size(2 * args.rows) is not None else "numpy"
    threads = kernel.threads_for(args.columns, 2 * args.rows)
    print(
        f"kernel passes: {passes}, {threads} thread(s) (PYTEST_MLOPS_THREADS=1 for one; "
        f"PYTEST_MLOPS_KERNEL=numpy for numpy's); first call on one column, not timed below: "
        f"{first_s:.2f} s"
    )
    ours_s, scipy_s, result, scipy_out = run_interleaved(ref, cur)
    names = list(ref.columns)
    print(
        f"ours  check_drift (KS + p, Wasserstein, PSI, histograms, BH): {ours_s:8.2f} s  "
        f"-> {result.status}, {int(result.metrics['n_drifted'])} columns drifted"
    )
    print(
        f"scipy ks_2samp loop over {len(names)} columns (KS only):        {scipy_s:8.2f} s"
        "   (timed alternately with ours, 5 columns at a time)"
    )
    rows = {r["column"]: r for r in result.tables["columns"]}
    d_err = max(abs(rows[c]["statistic"] - scipy_out[c][0]) for c in names)
    p_err = max(abs(rows[c]["p_value"] - scipy_out[c][1]) for c in names)
    print(f"agreement with scipy: max |D - D_scipy| = {d_err:.2e}, max |p - p_scipy| = {p_err:.2e}")

    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            "--rows",
            str(args.rows),
            "--columns",
            str(args.columns),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    data_mb, peak_mb = memory["data_bytes"] / 1e6, memory["peak_bytes"] / 1e6
    print(
        f"memory: data {data_mb:,.0f} MB, peak extra allocations in check_drift {peak_mb:,.0f} MB "
        f"-> (data + peak) / data = {(data_mb + peak_mb) / data_mb:.2f}x "
        f"(max RSS {memory['max_rss_after'] / 1e6:,.0f} MB)"
    )

    evidently_s = ours_ev = None
    if not args.skip_evidently:
        if not args.evidently_python.exists():
            print(f"evidently: skipped ({args.evidently_python} does not exist; see the docstring)")
        else:
            sub = min(args.evidently_rows, args.rows)
            before = time_ours(ref, cur)
            ev = run_evidently(args.evidently_python, sub, args.columns)
            after = time_ours(ref, cur)
            evidently_s = ev["seconds"] * args.rows / sub
            ours_ev = (before + after) / 2
            print(f"ours, timed just before and after Evidently:                {ours_ev:8.2f} s")
            note = (
                ""
                if sub == args.rows
                else f" (measured {ev['seconds']:.1f} s on {sub:,} rows, x{args.rows / sub:g})"
            )
            print(
                f"evidently DataDriftPreset:                                  {evidently_s:8.2f} s{note}"
            )

    print("\nratios (same run):")
    print(f"  scipy ks_2samp loop / ours      = {scipy_s / ours_s:6.1f}x   (target >= 10x)")
    if evidently_s is not None and ours_ev is not None:
        print(
            f"  Evidently DataDriftPreset / ours = {evidently_s / ours_s:6.1f}x   (target >= 50x)"
        )
    print(
        f"  memory (data + peak) / data     = {(data_mb + peak_mb) / data_mb:6.2f}x   (target <= 2x)"
    )
    print(f"  statistics vs scipy: D within {d_err:.1e}, p within {p_err:.1e}   (target 1e-4)")


if __name__ == "__main__":
    main()
