"""The Dask engine: partial profiles per partition (``map_partitions``), merged in a tree.

Each partition (a pandas frame) goes through the single-process kernel
(:meth:`DriftProfile.fit_partition`) and comes back as one ``.npz`` profile; the profiles are
merged ``split_every`` at a time in a tree of tasks, the root on the driver. The grid travels to
the workers once, as bytes. Runs on whatever scheduler the collection uses (threads by default, a
``distributed`` cluster when a Client is active).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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

__all__ = ["ENGINE", "DaskEngine", "tree_merge"]

INSTALL = "pip install 'pytest-mlops[dask]'"
SPLIT_EVERY = 8
Task = Callable[[Iterable["pd.DataFrame"], bytes], bytes]
Merge = Callable[..., bytes]


def _dask() -> Any:
    """The ``dask`` module (typed loosely: its annotations are partial)."""
    import importlib

    try:
        importlib.import_module("dask.dataframe")
    except ImportError:
        raise ConfigError(f"the Dask engine needs dask.dataframe: {INSTALL}") from None
    return importlib.import_module("dask")


def dask_kinds(ddf: Any, columns: Sequence[str] | None, what: str) -> dict[str, str]:
    """Column -> ``numeric``/``categorical`` by our kernel's own rule on the collection's meta."""
    from pytest_mlops.checks.drift.check import column_kind

    meta = ddf._meta
    present = [str(c) for c in meta.columns]
    wanted = list(columns) if columns is not None else present
    for name in wanted:
        if name not in present:
            raise DataError(
                f"{what}: the Dask DataFrame has no column {name!r}{did_you_mean(name, present)}"
            )
    return {name: column_kind(meta[name]) for name in wanted}


# --- what runs on the workers ----------------------------------------------------------------


def _task_partition(frame: pd.DataFrame, task: Task, payload: bytes) -> pd.Series:

    return pd.Series([task([frame], payload)], dtype=object)


def _finite(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The numeric *columns* as float64, NaN for missing and infinite values.

    Also NaN for a column the partition lacks: the counting pass reports that.
    """
    from pytest_mlops.checks.drift.check import numeric_matrix

    present = [c for c in columns if c in frame.columns]
    out = pd.DataFrame(index=frame.index)
    block = numeric_matrix(frame, present) if present else np.zeros((0, len(frame)))
    for i, name in enumerate(present):
        out[name] = block[i]
    for name in columns:
        if name not in out.columns:
            out[name] = np.nan
    return out[list(columns)]


def _merge_series(merge: Callable[..., bytes], *parts: Any) -> bytes:
    blobs = [
        bytes(b) for part in parts for b in ([part] if isinstance(part, bytes) else part.tolist())
    ]
    return merge(*blobs)


def tree_merge(
    blobs: Any, merge: Callable[..., bytes], *, split_every: int = SPLIT_EVERY
) -> bytes | None:
    """Merge a Series of blobs (one per partition) ``split_every`` at a time, up to one."""
    dask = _dask()

    level: list[Any] = list(blobs.to_delayed())
    if not level:
        return None
    while len(level) > 1:
        level = [
            dask.delayed(_merge_series)(merge, *level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    (result,) = dask.compute(dask.delayed(_merge_series)(merge, level[0]))
    return bytes(result)


def map_merge(ddf: Any, task: Task, payload: bytes, merge: Merge) -> bytes | None:
    """``task(frames, payload)`` on every partition, the resulting blobs merged by *merge*."""
    dask = _dask()

    shared = dask.delayed(payload, pure=True)  # one copy in the graph, not one per task
    # Dask turns object columns into Arrow strings by default: our blobs are bytes.
    with dask.config.set({"dataframe.convert-string": False}):
        blobs = ddf.map_partitions(_task_partition, task, shared, meta=pd.Series(dtype=object))
        return tree_merge(blobs, merge)


# --- the engine ------------------------------------------------------------------------------


class _Source:
    """:class:`~pytest_mlops.checks.drift.partial.GridSource` over a Dask DataFrame."""

    def __init__(self, ddf: Any) -> None:
        self.ddf = ddf

    def quantiles(self, columns: Sequence[str], levels: Sequence[float]) -> dict[str, Any]:
        dask = _dask()

        if not columns:
            return {}
        meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        finite = self.ddf.map_partitions(_finite, list(columns), meta=meta)
        found = dask.compute(*[finite[c].quantile(list(levels)) for c in columns])
        return {c: np.asarray(q, dtype=np.float64) for c, q in zip(columns, found, strict=True)}

    def count(self, grid: DriftProfile) -> DriftProfile:
        blob = map_merge(self.ddf, count_task, to_bytes(grid), merge_bytes)
        return from_bytes(blob) if blob is not None else grid.empty_like()

    def inside(
        self, requests: Mapping[str, tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        blob = map_merge(self.ddf, inside_bytes, requests_bytes(requests), merge_counts_bytes)
        return counts_from_bytes(blob) if blob is not None else {}


class DaskEngine:
    """Drift profiles of Dask DataFrames (see the module docstring)."""

    name = "dask"

    def __init__(self, *, exact_limit: int = EXACT_LIMIT) -> None:
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
        _dask()
        what = "drift profile of the Dask DataFrame"
        if grid is not None:
            wanted = [c for c in grid.columns if columns is None or c in columns]
            present = {str(c) for c in data.columns}
            # No projection here: a partition lacking a column must reach the kernel, which
            # reports it, rather than fail in Dask's own column selection.
            return on_grid(_Source(data), grid, wanted, present, what)
        kinds = dask_kinds(data, columns, what)
        profile, self.last_grid = fit_from_source(
            _Source(data),
            kinds,
            categorical,
            bins=bins,
            relative_error=0.0,
            exact_limit=self.exact_limit,
            what=what,
        )
        return profile

    def map_merge(self, data: Any, task: Task, payload: bytes, merge: Merge) -> bytes | None:
        """``task(frames, payload)`` per partition, the blobs merged in a tree."""
        return map_merge(data, task, payload, merge)

    def duplicate_rows(self, data: Any, columns: Sequence[str]) -> int:
        """Rows equal to an earlier row, by our row hash: counted after a shuffle of hashes."""
        dask = _dask()
        hashes = data.map_partitions(_hash_partition, list(columns), meta=pd.Series(dtype="uint64"))
        counts = hashes.value_counts(split_out=max(1, data.npartitions // 8))
        (found,) = dask.compute((counts[counts > 1] - 1).sum())
        return int(found)


def _hash_partition(frame: pd.DataFrame, columns: list[str]) -> pd.Series:

    from pytest_mlops.engines.counts import row_hashes

    return pd.Series(row_hashes(frame, columns), dtype="uint64")


ENGINE = DaskEngine()


def read_parquet(path: str, *, scheduler: str | None = None) -> Any:
    """A Parquet file or folder as a Dask DataFrame; *scheduler* is a distributed address."""
    _dask()
    import dask.dataframe as dd

    if scheduler:
        try:
            import importlib

            client: Any = importlib.import_module("distributed").Client
        except ImportError:
            raise ConfigError(f"--dask-scheduler needs distributed: {INSTALL}") from None
        try:
            client(scheduler, timeout="10s", set_as_default=True)
        except OSError as exc:
            raise ConfigError(f"--dask-scheduler: cannot reach {scheduler!r}: {exc}") from None
    try:
        return dd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path!r} as Parquet: {exc}") from None
