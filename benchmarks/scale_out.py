"""Drift profiles past one machine: Spark local[2] and Dask against our single-process fit_path.

Measured in one run, on the same Parquet files (numeric columns, float64, kept outside the
repository and removed at the end unless ``--keep``):

- throughput of counting the data on a reference grid (what every monitoring run does; a
  reference fit adds the grid passes): ours in one process (``fit_path`` file by file), Spark
  ``local[2]`` (``DriftProfile.fit(spark_df, grid=...)``) and Dask (LocalCluster, 2 worker
  processes), in rows/s and as ratios;
- the peak memory of the driver (the Python process that merges) at ``--small-rows`` and
  ``--rows``: flat when partial profiles, not rows, reach it;
- Evidently's Spark engine (0.4.x, ``DataDriftTable``: Wasserstein distance per numeric column)
  on ``--evidently-rows`` rows in its own environment, against our Spark reference fit plus
  comparison on the same rows;
- the merge cost of 1 to 10,000 partial profiles (a tree, ``fan_in`` 16, bytes in and out as the
  engines move them) and the bytes per column of a partial profile.

Every figure is printed with the load average when it was taken (the machine is shared).

    .venv/bin/python benchmarks/scale_out.py                       # 20M rows x 50 columns
    .venv/bin/python benchmarks/scale_out.py --rows 2000000 --small-rows 500000 --skip-evidently

Evidently's environment (its Spark engine needs numpy < 2.1):
``python3 -m venv ~/.cache/pytest-mlops/venv-evidently-spark && ~/.cache/pytest-mlops/
venv-evidently-spark/bin/pip install evidently==0.4.40 'pyspark>=3.4,<4.4' 'numpy<2.1'
'pandas<2.3' 'pyarrow<20'``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlops"
EVIDENTLY = CACHE / "venv-evidently-spark" / "bin" / "python"
ROWS_PER_FILE = 500_000


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def make_data(folder: Path, rows: int, columns: int, seed: int, shift: float = 0.0) -> None:
    """``rows`` rows of normal float64 columns in files of ROWS_PER_FILE rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(columns)]
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n = min(ROWS_PER_FILE, rows - start)
        block = rng.normal(size=(columns, n))
        block[: columns // 10] += shift
        table = pa.table({name: block[j] for j, name in enumerate(names)})
        pq.write_table(table, folder / f"part-{i:05d}.parquet", row_group_size=ROWS_PER_FILE)


def files(folder: Path, rows: int) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))[: max(1, rows // ROWS_PER_FILE)]


# --- children: one engine each, so that peak memory is the run's own ---------------------------


def child(engine: str, folder: Path, rows: int, grid: Path) -> dict[str, Any]:
    from pytest_mlops import DriftProfile

    reference = DriftProfile.load(grid)
    paths = [str(p) for p in files(folder, rows)]
    start = time.perf_counter()
    if engine == "native":
        total = reference.empty_like()
        for path in paths:
            total = total.merge(DriftProfile.fit_path(path, grid=reference))
        profile = total
    elif engine == "spark":
        from pytest_mlops.engines.spark import spark_session

        spark = spark_session(
            {"spark.ui.enabled": "false", "spark.driver.memory": "2g"}, master="local[2]"
        )
        spark.sparkContext.setLogLevel("ERROR")
        start = time.perf_counter()  # the session's start-up is not the profile's
        profile = DriftProfile.fit(spark.read.parquet(*paths), grid=reference)
    else:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        start = time.perf_counter()
        profile = DriftProfile.fit(dd.read_parquet(paths), grid=reference)
        client.close()
        cluster.close()
    seconds = time.perf_counter() - start
    assert profile.n_rows == rows, (profile.n_rows, rows)
    return {"seconds": seconds, "rows": profile.n_rows, "driver_peak_rss": peak_rss()}


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM: its own, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- Evidently's Spark engine ------------------------------------------------------------------

EVIDENTLY_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from evidently.report import Report
    from evidently.metrics import DataDriftTable
    from evidently.spark.engine import SparkEngine
    ref_paths, cur_paths = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    ref, cur = spark.read.parquet(*ref_paths), spark.read.parquet(*cur_paths)
    start = time.perf_counter()
    report = Report(metrics=[DataDriftTable()])
    report.run(reference_data=ref, current_data=cur, engine=SparkEngine)
    result = report.as_dict()["metrics"][0]["result"]
    seconds = time.perf_counter() - start
    drifted = sorted(c for c, v in result["drift_by_columns"].items() if v["drift_detected"])
    print(json.dumps({"seconds": seconds, "drifted": drifted}))
    """
)

OURS_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pytest_mlops import DriftProfile, check_drift
    from pytest_mlops.engines.spark import spark_session
    ref_paths, cur_paths = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    spark = spark_session({"spark.ui.enabled": "false", "spark.driver.memory": "2g"},
                          master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    ref, cur = spark.read.parquet(*ref_paths), spark.read.parquet(*cur_paths)
    start = time.perf_counter()
    result = check_drift(DriftProfile.fit_spark(ref), cur)
    seconds = time.perf_counter() - start
    drifted = sorted(r["column"] for r in result.tables["columns"] if r["drifted"])
    print(json.dumps({"seconds": seconds, "drifted": drifted}))
    """
)


def versus_evidently(
    python: Path, ref: list[Path], cur: list[Path], timeout: float
) -> dict[str, Any]:
    """Ours, then Evidently, on the same files; each figure printed as soon as it is known."""
    out: dict[str, Any] = {}
    for who, exe, code in (
        ("ours", sys.executable, OURS_CHILD),
        ("evidently", str(python), EVIDENTLY_CHILD),
    ):
        paths = [json.dumps([str(p) for p in ref]), json.dumps([str(p) for p in cur])]
        try:
            done = subprocess.run(
                [exe, "-c", code, *paths], capture_output=True, text=True, cwd=ROOT, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            out[who] = {"error": f"did not finish in {timeout:.0f} s", "load": load()}
        else:
            if done.returncode != 0:
                out[who] = {"error": done.stderr.strip().splitlines()[-1][:300]}
            else:
                out[who] = json.loads(done.stdout.strip().splitlines()[-1]) | {"load": load()}
        print(f"  {who:<9} {json.dumps(out[who])}", flush=True)
    return out


# --- merge cost and bytes ----------------------------------------------------------------------


def merge_cost(columns: int, counts: list[int]) -> list[dict[str, Any]]:
    """Merging k partial profiles (bytes in, bytes out) in a tree of fan-in 16."""
    import numpy as np
    import pandas as pd

    from pytest_mlops import DriftProfile
    from pytest_mlops.checks.drift.partial import merge_bytes, to_bytes

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(200_000, columns)), columns=[f"f{i}" for i in range(columns)]
    )
    grid = DriftProfile.fit(frame)
    blob = to_bytes(DriftProfile.fit_partition(frame.head(2_000), grid))
    rows = []
    for k in counts:
        level = [blob] * k
        start = time.perf_counter()
        while len(level) > 1:
            level = [merge_bytes(*level[i : i + 16]) for i in range(0, len(level), 16)]
        rows.append({"partials": k, "seconds": time.perf_counter() - start, "load": load()})
    return rows


def partial_bytes_per_column(columns: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from pytest_mlops import DriftProfile
    from pytest_mlops.checks.drift.partial import to_bytes

    rng = np.random.default_rng(1)
    out = {}
    for rows in (10_000, 1_000_000):
        frame = pd.DataFrame(
            rng.normal(size=(rows, columns)), columns=[f"f{i}" for i in range(columns)]
        )
        grid = DriftProfile.fit(frame.head(200_000))
        out[f"{rows:,} rows"] = len(to_bytes(DriftProfile.fit_partition(frame, grid))) / columns
    return out


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--small-rows", type=int, default=5_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/pytest-mlops-scale-out"))
    parser.add_argument("--keep", action="store_true", help="keep the generated Parquet files")
    parser.add_argument("--evidently-rows", type=int, default=1_000_000)
    parser.add_argument("--evidently-python", type=Path, default=EVIDENTLY)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-timeout", type=float, default=1800.0)
    parser.add_argument("--engines", default="native,spark,dask")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, folder, rows, grid = args.child
        print(json.dumps(child(engine, Path(folder), int(rows), Path(grid))))
        return
    try:
        run(args)
    finally:
        if not args.keep:
            shutil.rmtree(args.data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from pytest_mlops import DriftProfile

    ref_dir, cur_dir = args.data_dir / "reference", args.data_dir / "current"
    print(
        f"data: {args.rows:,} rows x {args.columns} float64 columns in {args.data_dir} ({load()})"
    )
    start = time.perf_counter()
    if len(files(ref_dir, args.rows)) * ROWS_PER_FILE < args.rows:
        make_data(ref_dir, args.rows, args.columns, seed=0)
    print(f"  written in {time.perf_counter() - start:.0f} s ({load()})")
    grid_path = args.data_dir / "grid.npz"
    sample = pd.read_parquet(files(ref_dir, ROWS_PER_FILE)[0])
    DriftProfile.fit(sample).save(grid_path)  # one grid for every engine: 4096 bins
    print("\ncounting the data on a reference grid (4096 bins per column):")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for engine in args.engines.split(","):
        for rows in (args.small_rows, args.rows):
            found = run_child(engine, str(ref_dir), str(rows), str(grid_path)) | {"load": load()}
            results[(engine, rows)] = found
            rate = found["rows"] / found["seconds"]
            print(
                f"  {engine:<6} {rows:>11,} rows: {found['seconds']:7.1f} s  {rate:>11,.0f} rows/s  "
                f"driver peak RSS {found['driver_peak_rss'] / 1e6:6.0f} MB  ({found['load']})"
            )
    report_ratios(results, args)
    if not args.skip_evidently:
        report_evidently(args, ref_dir, cur_dir)
    print("\nmerging partial profiles (5 columns, 4096 bins; a tree of fan-in 16, bytes in/out):")
    for row in merge_cost(5, [1, 10, 100, 1_000, 10_000]):
        per = row["seconds"] / max(row["partials"] - 1, 1) / 5 * 1e3
        print(
            f"  {row['partials']:>6,} partials: {row['seconds']:7.2f} s  ({per:.2f} ms per merge "
            f"per column)  ({row['load']})"
        )
    print("\nbytes of a partial profile per column (compressed .npz, 4096 bins):")
    for label, size in partial_bytes_per_column(10).items():
        print(f"  partition of {label}: {size:,.0f} bytes per column ({load()})")


def report_ratios(results: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> None:
    native = results.get(("native", args.rows))
    if native is None:
        return
    print("\nratios (same run, same files):")
    for engine in ("spark", "dask"):
        found = results.get((engine, args.rows))
        if found is not None:
            print(f"  {engine} local throughput / ours in one process = "
                  f"{native['seconds'] / found['seconds']:.2f}x")  # fmt: skip
        small = results.get((engine, args.small_rows))
        if found is not None and small is not None:
            growth = found["driver_peak_rss"] / small["driver_peak_rss"]
            print(f"  {engine} driver peak memory {args.rows:,} / {args.small_rows:,} rows = "
                  f"{growth:.2f}x")  # fmt: skip


def report_evidently(args: argparse.Namespace, ref_dir: Path, cur_dir: Path) -> None:
    rows = args.evidently_rows
    print(
        f"\nEvidently's Spark engine (DataDriftTable) vs ours (fit_spark + compare), {rows:,} rows:"
    )
    if not args.evidently_python.exists():
        print(f"  skipped: {args.evidently_python} does not exist (see the docstring)")
        return
    make_data(cur_dir, rows, args.columns, seed=1, shift=0.2)
    found = versus_evidently(
        args.evidently_python, files(ref_dir, rows), files(cur_dir, rows), args.evidently_timeout
    )
    if "seconds" in found.get("ours", {}) and "seconds" in found.get("evidently", {}):
        print(
            f"  Evidently / ours = {found['evidently']['seconds'] / found['ours']['seconds']:.1f}x"
        )


if __name__ == "__main__":
    main()
