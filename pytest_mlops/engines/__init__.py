"""Engines past one machine: Spark and Dask move our partial summaries; our kernel computes them.

Vocabulary
----------
partial profile
    A :class:`~pytest_mlops.checks.drift.DriftProfile` of one partition, counted on a grid by
    :meth:`~pytest_mlops.checks.drift.DriftProfile.fit_partition` (the single-process code) and
    serialised in the ``.npz`` profile format.
tree merge
    Partial profiles merged in groups (on the executors or workers), the last few on the driver:
    counts add up, so the result equals the single-process profile whatever the partitioning.
count-based checks
    Schema rules, integrity findings and group metrics whose inputs are counts per partition
    (:mod:`pytest_mlops.engines.counts`): they merge exactly the same way.

The engines register themselves here from the top of the package; nothing below imports them.
``pip install 'pytest-mlops[spark]'`` (and Java) or ``'pytest-mlops[dask]'``.
"""

from __future__ import annotations

from pytest_mlops._engines import EngineEntry, lazy, register_engine

__all__ = ["register"]


def register() -> None:
    """Register the Spark and Dask engines (cheap: nothing is imported until one is used)."""
    register_engine(
        EngineEntry(
            "spark",
            ("pyspark.sql",),
            lazy("pytest_mlops.engines.spark", "ENGINE"),
        )
    )
    register_engine(
        EngineEntry(
            "dask",
            ("dask.dataframe", "dask_expr"),
            lazy("pytest_mlops.engines.dask", "ENGINE"),
        )
    )
