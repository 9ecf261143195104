"""Engines for real: a local[2] Spark session and a Dask LocalCluster, one per test module.

Without PySpark/Java (or dask.distributed) the tests skip with the reason, except in CI
(CI=true), where ``scripts/test.sh`` installs them and a skip would hide a broken install.
"""

from __future__ import annotations

import os

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} in CI: scripts/test.sh installs it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spark():
    """A local[2] SparkSession for the module, stopped at its end."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _unavailable("PySpark is not installed")
    from pytest_mlops.engines.spark import java_available, spark_session

    if not java_available():
        _unavailable("no Java runtime")
    session = spark_session(
        {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "1g",
        },
        master="local[2]",
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def dask_client():
    """A Dask LocalCluster (2 worker processes, 1 thread each) for the module, closed after."""
    try:
        import distributed
    except ImportError:
        _unavailable("dask.distributed is not installed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
