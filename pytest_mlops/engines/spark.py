"""The Spark engine: partial profiles per partition (``mapInArrow``), merged in a tree.

Executors receive Arrow batches (no pandas conversion by PySpark), turn them into frames the way
our single-process Parquet reader does, and run the single-process kernel
(:meth:`DriftProfile.fit_partition`) on chunks of them; they send back one ``.npz`` profile per
partition. Those are merged in a tree of ``mapInArrow`` stages (``fan_in`` at a time, over a
shuffle of the small profiles) and the last few on the driver. No row reaches the driver.

Works on a local session (tests use ``local[2]``), a cluster or Databricks: the package must be
installed where the executors run Python.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.drift.partial import (
    EXACT_LIMIT,
    GridReport,
    count_task,
    counts_from_bytes,
    from_bytes,
    inside_bytes,
    merge_bytes,
    merge_counts_bytes,
    requests_bytes,
    to_bytes,
)
from pytest_mlops.checks.drift.profile import DEFAULT_BINS, DriftProfile
from pytest_mlops.engines._common import fit_from_source, on_grid
from pytest_mlops.errors import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = ["ENGINE", "SparkEngine", "column_ref", "read_table", "spark_session"]

INSTALL = "pip install 'pytest-mlops[spark]'"
JAVA = (
    "Spark needs a Java runtime (17 or later): apt-get install default-jre-headless, or set "
    "JAVA_HOME to a JDK/JRE"
)
CHUNK_ROWS = 250_000
Task = Callable[[Iterable["pd.DataFrame"], bytes], bytes]
Merge = Callable[..., bytes]
FAN_IN = 16


# --- sessions and tables ---------------------------------------------------------------------


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise ConfigError(f"the Spark engine needs PySpark: {INSTALL}") from None
    return pyspark


def java_available() -> bool:
    """Whether a ``java`` Spark can launch is on JAVA_HOME or PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return True
    return shutil.which("java") is not None


def spark_session(
    conf: Mapping[str, str] | None = None, *, master: str = "local[*]", app: str = "pytest-mlops"
) -> Any:
    """A SparkSession (the active one is reused), with *conf* applied.

    ``conf`` may set ``spark.master`` (default *master*). A ConfigError says what to install when
    PySpark or Java is missing, or why the session could not start.
    """
    _pyspark()
    if not java_available():
        raise ConfigError(JAVA)
    from pyspark.sql import SparkSession

    settings = {
        "spark.master": master,
        "spark.app.name": app,
        "spark.ui.showConsoleProgress": "false",
        **dict(conf or {}),
    }
    if settings["spark.master"].startswith("local"):  # local executors run this very Python
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j/JVM start-up failures have many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"Spark could not start ({first}); {JAVA}") from None


def parse_conf(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` settings (``--spark-conf``) as a dict; a ConfigError names a bad one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--spark-conf: expected key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def read_table(spark: Any, path: str, *, fmt: str | None = None) -> Any:
    """A Parquet file or folder, or a Delta table (a folder with ``_delta_log``), as a DataFrame."""
    fmt = fmt or ("delta" if os.path.isdir(os.path.join(path, "_delta_log")) else "parquet")
    try:
        return spark.read.format(fmt).load(path)
    except Exception as exc:
        text = str(exc)
        if fmt == "delta" and ("delta" in text.lower() or "DATA_SOURCE_NOT_FOUND" in text):
            raise DataError(
                f"{path!r} is a Delta table and this Spark session cannot read Delta: pip install "
                "delta-spark and start the session with its package and extensions "
                "(delta.configure_spark_with_delta_pip), or pass --spark-conf "
                "spark.jars.packages=io.delta:delta-spark_2.13:<version> --spark-conf "
                "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension --spark-conf "
                "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise DataError(f"cannot read {path!r} as {fmt}: {first}") from None


# --- columns ---------------------------------------------------------------------------------


def column_ref(name: str) -> Any:
    """A Column for *name* taken literally (dots and spaces are not nested fields)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def spark_kinds(df: Any, columns: Sequence[str] | None, what: str) -> dict[str, str]:
    """Column -> ``numeric``/``categorical`` as our kernel will see the executors' frames.

    Nested types (arrays, maps, structs) are refused, naming the column; so are requested
    columns the DataFrame does not have.
    """
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in df.schema.fields}
    wanted = list(columns) if columns is not None else list(fields)
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType)
    nested = (T.ArrayType, T.MapType, T.StructType)
    kinds: dict[str, str] = {}
    for name in wanted:
        if name not in fields:
            raise DataError(
                f"{what}: the Spark DataFrame has no column {name!r}{did_you_mean(name, fields)}"
            )
        kind = fields[name]
        if isinstance(kind, nested) or type(kind).__name__ == "VariantType":
            raise DataError(
                f"{what}: column {name!r} has the nested type {kind.simpleString()}; profiles "
                "take flat columns: select its fields (df.select('col.field')) or explode it first"
            )
        kinds[name] = "numeric" if isinstance(kind, numeric) else "categorical"
    return kinds


# --- what runs on the executors ---------------------------------------------------------------


def _frames(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Arrow batches gathered into frames of at least *chunk_rows* rows (as fit_path reads)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            yield pa.Table.from_batches(pending).to_pandas()
            pending, rows = [], 0
    if rows:
        yield pa.Table.from_batches(pending).to_pandas()


def _blob_batch(blob: bytes) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([pa.array([blob], pa.binary())], names=["blob"])


def _task_partition(
    task: Task, payload: bytes, chunk_rows: int, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    yield _blob_batch(task(_frames(batches, chunk_rows), payload))


def _merge_partition(
    merge: Callable[..., bytes], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    blobs = [bytes(b) for batch in batches for b in batch.column(0).to_pylist()]
    if blobs:
        yield _blob_batch(merge(*blobs))


def map_in_arrow(df: Any, run: Callable[..., Iterator[pa.RecordBatch]]) -> Any:
    """``df.mapInArrow(run)`` to one binary column.

    PySpark warns there that it does not fully support pandas 3; this path hands Arrow batches
    to our code and no pandas to PySpark.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", FutureWarning
        )
        return df.mapInArrow(run, "blob binary")


def tree_merge(blobs: Any, merge: Callable[..., bytes], *, fan_in: int = FAN_IN) -> bytes | None:
    """Merge a one-column DataFrame of blobs: ``fan_in`` at a time on the executors, then here."""
    try:
        n = blobs.rdd.getNumPartitions()
    except Exception:  # Spark Connect has no RDDs: merge everything on the driver
        n = 1
    while n > fan_in:
        n = math.ceil(n / fan_in)
        blobs = map_in_arrow(blobs.repartition(n), functools.partial(_merge_partition, merge))
    found = [bytes(row[0]) for row in blobs.collect()]
    return merge(*found) if found else None


def map_merge(
    df: Any, task: Task, payload: bytes, merge: Merge, chunk_rows: int = CHUNK_ROWS
) -> bytes | None:
    """``task(frames, payload)`` on every partition, the resulting blobs merged by *merge*."""
    run = functools.partial(_task_partition, task, payload, chunk_rows)
    return tree_merge(map_in_arrow(df, run), merge)


# --- the engine ------------------------------------------------------------------------------


class _Source:
    """:class:`~pytest_mlops.checks.drift.partial.GridSource` over a Spark DataFrame."""

    def __init__(self, df: Any, chunk_rows: int, relative_error: float) -> None:
        self.df, self.chunk_rows, self.relative_error = df, chunk_rows, relative_error

    def quantiles(self, columns: Sequence[str], levels: Sequence[float]) -> dict[str, Any]:
        from pyspark.sql import functions as F

        if not columns:
            return {}
        finite = []
        for name in columns:
            x = column_ref(name).cast("double")
            bad = F.isnan(x) | x.isin(float("inf"), float("-inf"))
            finite.append(F.when(bad, F.lit(None)).otherwise(x).alias(name))
        found = self.df.select(finite).approxQuantile(
            list(columns), list(levels), self.relative_error
        )
        return dict(zip(columns, found, strict=True))

    def count(self, grid: DriftProfile) -> DriftProfile:
        blob = map_merge(self.df, count_task, to_bytes(grid), merge_bytes, self.chunk_rows)
        return from_bytes(blob) if blob is not None else grid.empty_like()

    def inside(
        self, requests: Mapping[str, tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        payload = requests_bytes(requests)
        blob = map_merge(self.df, inside_bytes, payload, merge_counts_bytes, self.chunk_rows)
        return counts_from_bytes(blob) if blob is not None else {}


class SparkEngine:
    """Drift profiles of Spark DataFrames (see the module docstring)."""

    name = "spark"

    def __init__(self, *, chunk_rows: int = CHUNK_ROWS, exact_limit: int = EXACT_LIMIT) -> None:
        self.chunk_rows = chunk_rows
        self.exact_limit = exact_limit
        self.last_grid: GridReport | None = None

    def fit_profile(
        self,
        data: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """The profile of *data* (on *grid* when given), like :meth:`DriftProfile.fit`."""
        what = "drift profile of the Spark DataFrame"
        if grid is not None:
            wanted = [c for c in grid.columns if columns is None or c in columns]
            present = set(data.columns)
            spark_kinds(data, [c for c in wanted if c in present], what)  # refuses nested types
            df = data.select([column_ref(c) for c in wanted if c in present])
            return on_grid(_Source(df, self.chunk_rows, 0.0), grid, wanted, present, what)
        kinds = spark_kinds(data, columns, what)
        df = data.select([column_ref(c) for c in kinds])
        source = _Source(df, self.chunk_rows, 1.0 / (4 * max(bins, 2)))
        profile, self.last_grid = fit_from_source(
            source,
            kinds,
            categorical,
            bins=bins,
            relative_error=source.relative_error,
            exact_limit=self.exact_limit,
            what=what,
        )
        return profile

    def map_merge(self, data: Any, task: Task, payload: bytes, merge: Merge) -> bytes | None:
        """``task(frames, payload)`` per partition, the blobs merged in a tree."""
        return map_merge(data, task, payload, merge, self.chunk_rows)

    def duplicate_rows(self, data: Any, columns: Sequence[str]) -> int:
        """Rows equal to an earlier row, by our row hash: hashes shuffled, counted by Spark."""
        from pyspark.sql import functions as F

        run = functools.partial(_hash_partition, list(columns), self.chunk_rows)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "PySpark does not yet", FutureWarning)
            hashes = data.select([column_ref(c) for c in columns]).mapInArrow(run, "h long")
        repeats = hashes.groupBy("h").count().where(F.col("count") > 1)
        found = repeats.agg(F.sum(F.col("count") - 1)).collect()[0][0]
        return int(found or 0)


def _hash_partition(
    columns: list[str], chunk_rows: int, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    from pytest_mlops.engines.counts import row_hashes

    for frame in _frames(batches, chunk_rows):
        hashes = row_hashes(frame, columns).view("int64")
        yield pa.RecordBatch.from_arrays([pa.array(hashes, pa.int64())], names=["h"])


ENGINE = SparkEngine()
