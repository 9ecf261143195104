"""Production data in a lake, read by an engine: what ``pytest-mlops monitor --engine`` compares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlops.checks.drift.profile import DriftProfile
from pytest_mlops.errors import ConfigError, DataError

__all__ = ["ENGINES", "compare_on_engine", "open_current"]

ENGINES = ("native", "spark", "dask")


def open_current(
    engine: str,
    path: str,
    *,
    spark_conf: Mapping[str, str] | None = None,
    spark: Any = None,
    dask_scheduler: str | None = None,
) -> Any:
    """The current data at *path* as the engine's DataFrame.

    *path* is a Parquet file or folder (Delta with Spark). *spark* is an existing SparkSession
    to use instead of starting one.
    """
    if engine == "spark":
        from pytest_mlops.engines.spark import read_table, spark_session

        session = spark if spark is not None else spark_session(spark_conf)
        return read_table(session, path)
    if engine == "dask":
        from pytest_mlops.engines.dask import read_parquet

        return read_parquet(path, scheduler=dask_scheduler)
    raise ConfigError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")


def compare_on_engine(profile: DriftProfile, current: Any, settings: Mapping[str, Any]) -> Any:
    """``profile.compare(current, **settings)`` on the profile's columns the data holds."""
    present = {str(c) for c in current.columns}
    known = [c for c in profile.columns if c in present]
    if not known:
        raise DataError(
            f"the current data has none of the profile's columns "
            f"({', '.join(list(profile.columns)[:8])}...)"
        )
    options = dict(settings)
    options.setdefault("columns", known)  # e.g. the target is not logged
    return profile.compare(current, **options)
