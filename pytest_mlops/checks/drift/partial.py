"""Partial profiles: what engines move between executors and the driver, and how grids are made.

An engine (Spark, Dask) runs :meth:`DriftProfile.fit_partition` on each partition, serialises the
result in the ``.npz`` profile format (:func:`to_bytes`; no pickle of our objects crosses the
wire), and merges the bytes in a tree (:func:`merge_bytes`). Counts add up, so the merged profile
equals the one fit in one process on the same data and grid, whatever the partitioning.

The grid of a reference is made like :meth:`DriftProfile.fit` makes it - nearest-rank quantiles
of the column's values, or every distinct value where there are at most ``bins + 1`` - from
three things an engine can do without bringing rows to the driver (:class:`GridSource`):
approximate quantiles, a counting pass on them, and the values strictly between approximate
edges where the exact quantiles fall. When those values are too many (``exact_limit``), the
approximate edges are kept: the KS error bound reported at comparison is computed from the
counts, so it holds on any grid, and an approximate quantile grid widens it by at most twice the
approximation's rank error.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pytest_mlops.checks.drift.profile import DriftProfile, NumericProfile
from pytest_mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXACT_LIMIT",
    "GridReport",
    "GridSource",
    "check_partitions",
    "count_task",
    "exact_grid",
    "from_bytes",
    "merge_bytes",
    "partial_bytes",
    "to_bytes",
    "value_counts_inside",
]

EXACT_LIMIT = 2_000_000
"""Values (per column) the driver may receive to make a grid exact; beyond, it stays approximate."""


def _scratch() -> str | None:
    """A memory-backed folder for the short-lived ``.npz`` files, where there is one."""
    shm = "/dev/shm"  # noqa: S108 - a scratch folder for tempfile's unique names
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def to_bytes(profile: DriftProfile) -> bytes:
    """*profile* as the bytes of its ``.npz`` file (:meth:`DriftProfile.save`)."""
    with tempfile.NamedTemporaryFile(prefix="pytest-mlops-", suffix=".npz", dir=_scratch()) as f:
        profile.save(f.name)
        return Path(f.name).read_bytes()


def from_bytes(data: bytes) -> DriftProfile:
    """The profile in *data* (:meth:`DriftProfile.load`: no pickle, checked)."""
    with tempfile.NamedTemporaryFile(prefix="pytest-mlops-", suffix=".npz", dir=_scratch()) as f:
        f.write(data)
        f.flush()
        return DriftProfile.load(f.name)


def grid_from_bytes(data: bytes) -> DriftProfile:
    """:func:`from_bytes` for the grid every partition of a pass receives: read once per worker."""
    return _grid_cache(hashlib.sha256(data).hexdigest(), data)


@functools.lru_cache(maxsize=4)
def _grid_cache(digest: str, data: bytes) -> DriftProfile:
    return from_bytes(data)


def merge_bytes(*blobs: bytes) -> bytes:
    """Serialised profiles merged into one (associative and commutative, like the counts)."""
    if len(blobs) == 1:
        return blobs[0]
    total = from_bytes(blobs[0])
    for blob in blobs[1:]:
        total = total.merge(from_bytes(blob))
    return to_bytes(total)


def partial_bytes(frames: Iterable[pd.DataFrame], grid: DriftProfile) -> bytes:
    """One partition (as frames) counted on *grid* and serialised: an executor's whole job."""
    total = DriftProfile({}, 0, grid.bins)  # no rows, no columns: the merge's identity
    for frame in frames:
        total = total.merge(DriftProfile.fit_partition(frame, grid))
    return to_bytes(total)


def count_task(frames: Iterable[pd.DataFrame], grid: bytes) -> bytes:
    """The counting pass as an engine task: frames and a serialised grid in, a profile out."""
    return partial_bytes(frames, grid_from_bytes(grid))


def check_partitions(profile: DriftProfile, what: str) -> DriftProfile:
    """Refuse a merged profile whose partitions disagree about a column.

    A column counted in some partitions and missing (or of another type) in others means the
    data's files do not share one schema; comparing it would mix two meanings of the column.
    A column missing from every partition stays a ``problem`` (the comparison reports it).
    """
    mixed = [c for c in profile.problems if c in profile.columns]
    if mixed:
        column = mixed[0]
        how = "missing" if profile.problems[column].startswith("missing") else "of another type"
        others = f" (also {', '.join(map(repr, mixed[1:5]))})" if len(mixed) > 1 else ""
        raise DataError(
            f"{what}: column {column!r} is {how} in some partitions and present in others"
            f"{others}: the data's files do not share one schema; read them with one schema "
            "(e.g. Spark's mergeSchema, or cast and fill the column) or leave the column out"
        )
    return profile


# --- grids ------------------------------------------------------------------------------------


class GridSource(Protocol):
    """What an engine provides to make a grid: three passes, none bringing rows to the driver."""

    def quantiles(self, columns: Sequence[str], levels: Sequence[float]) -> dict[str, Any]:
        """Approximate quantiles of the finite values of each numeric column."""
        ...

    def count(self, grid: DriftProfile) -> DriftProfile:
        """The data counted on *grid* (partial profiles merged)."""
        ...

    def inside(self, requests: Mapping[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
        """Per column ``(edges, wanted)``: the distinct values strictly inside those intervals.

        The values (and their counts) are those strictly inside the wanted intervals of those
        edges, merged over partitions (see :func:`value_counts_inside`).
        """
        ...


@dataclass(frozen=True)
class GridReport:
    """How each numeric column's grid was made: ``exact`` or ``approximate`` (and why)."""

    exact: tuple[str, ...]
    approximate: Mapping[str, str]


def value_counts_inside(
    values: np.ndarray, edges: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct finite *values* strictly inside the intervals ``wanted`` of *edges*, with counts.

    Interval ``i`` lies between ``edges[i-1]`` and ``edges[i]`` (interval 0 below the first edge,
    interval ``len(edges)`` above the last); *wanted* is a boolean mask of ``len(edges) + 1``.
    """
    values = values[np.isfinite(values)]
    slot = np.searchsorted(edges, values, "left")
    on_edge = np.zeros(len(values), dtype=bool)
    inner = slot < len(edges)
    on_edge[inner] = edges[slot[inner]] == values[inner]
    keep = wanted[slot] & ~on_edge
    found, counts = np.unique(values[keep], return_counts=True)
    return found, counts.astype(np.int64)


def exact_grid(
    source: GridSource,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    bins: int,
    relative_error: float,
    exact_limit: int = EXACT_LIMIT,
) -> tuple[DriftProfile, DriftProfile | None, GridReport]:
    """The grid :meth:`DriftProfile.fit` would make on the whole data, made by *source*.

    Returns the grid (an empty profile), the data already counted on it when the approximate
    grid was kept (so the caller need not count again) or None, and the report.
    """
    levels = np.linspace(0.0, 1.0, bins + 1)
    approx = source.quantiles(list(numeric), [float(v) for v in levels])
    seed = DriftProfile.on_grid({c: approx[c] for c in numeric}, categorical, bins=bins)
    counted = source.count(seed)
    if counted.n_rows == 0:
        raise DataError("drift profile: the data has no rows")
    check_partitions(counted, "drift profile")
    for column in seed.columns:
        if column in counted.problems:
            raise DataError(f"drift profile: column {column!r}: {counted.problems[column]}")
    plans = {c: _plan(_as_numeric(counted.columns.get(c)), bins, exact_limit) for c in numeric}
    requests = {c: (p.edges, p.wanted) for c, p in plans.items() if p.wanted is not None}
    found = source.inside(requests) if requests else {}
    edges: dict[str, np.ndarray] = {}
    approximate: dict[str, str] = {}
    for column, plan in plans.items():
        if plan.reason is not None:
            approximate[column] = plan.reason.format(rel=relative_error)
            edges[column] = plan.edges
        else:
            values, counts = found.get(column, (np.zeros(0), np.zeros(0, np.int64)))
            edges[column] = _pick(plan, values, counts, levels)
    grid = DriftProfile.on_grid(edges, categorical, bins=bins)
    exact = tuple(c for c in numeric if c not in approximate)
    unchanged = all(np.array_equal(edges[c], plan.edges) for c, plan in plans.items())
    return grid, (counted if unchanged else None), GridReport(exact, approximate)


def _as_numeric(column: Any) -> NumericProfile:
    assert isinstance(column, NumericProfile)  # noqa: S101 - a type the caller guarantees
    return column


@dataclass(frozen=True)
class _Plan:
    """What a column needs: which intervals' values (None: nothing) and the segments' counts."""

    edges: np.ndarray
    at: np.ndarray
    inside: np.ndarray
    wanted: np.ndarray | None
    reason: str | None


def _plan(column: NumericProfile, bins: int, exact_limit: int) -> _Plan:
    """Which intervals of the approximate grid hold the values an exact grid needs."""
    n = column.count
    edges, at, inside = column.edges, column.at, column.inside
    occupied = int((at > 0).sum() + (inside > 0).sum())
    if n == 0:
        return _Plan(edges, at, inside, None, None)
    if occupied <= bins + 1:  # maybe few distinct values: they must all be known
        wanted = inside > 0
    else:
        wanted = np.zeros(len(inside), dtype=bool)
        wanted[_target_intervals(at, inside, _targets(n, bins))] = True
    needed = int(inside[wanted].sum())
    if needed > exact_limit:
        reason = (
            f"approximate: {needed:,} values pin the exact quantiles (limit {exact_limit:,}); "
            "approxQuantile's relative error {rel:g}"
        )
        return _Plan(edges, at, inside, None, reason)
    return _Plan(edges, at, inside, wanted if wanted.any() else None, None)


def _targets(n: int, bins: int) -> np.ndarray:
    """The ranks :meth:`DriftProfile.fit` picks (nearest rank on ``bins + 1`` levels)."""
    levels = np.linspace(0.0, 1.0, bins + 1)
    return np.round(levels * max(n - 1, 0)).astype(np.int64)


def _segments(at: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Cumulative counts after each segment: inside_0, at_0, inside_1, at_1, ..., inside_m."""
    seq = np.empty(len(inside) + len(at), dtype=np.int64)
    seq[0::2] = inside
    seq[1::2] = at
    return np.cumsum(seq)


def _target_intervals(at: np.ndarray, inside: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Indices of the intervals (not edges) holding the values of the given ranks."""
    segment = np.searchsorted(_segments(at, inside), ranks, "right")
    return np.unique(segment[segment % 2 == 0] // 2)


def _pick(plan: _Plan, values: np.ndarray, counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The exact grid from the edges' counts and the values found inside intervals."""
    n = int(plan.at.sum() + plan.inside.sum())
    if n == 0:
        return np.zeros(0)
    known = np.concatenate([plan.edges[plan.at > 0], values])
    weights = np.concatenate([plan.at[plan.at > 0], counts])
    order = np.argsort(known, kind="stable")
    known, weights = known[order], weights[order]
    fetched = plan.wanted if plan.wanted is not None else np.zeros(len(plan.inside), dtype=bool)
    complete = not bool((plan.inside[~fetched] > 0).any())
    if complete and len(known) <= len(levels):  # every distinct value is known, and few
        return known
    cumulative = np.cumsum(weights)
    # Ranks in intervals whose values were not fetched are never picked (see _plan).
    ranks = np.round(levels * (n - 1)).astype(np.int64)
    fetched_before = _fetched_rank_offset(plan, known, cumulative)
    index = np.searchsorted(fetched_before, ranks, "right")
    return np.unique(known[np.minimum(index, len(known) - 1)])


def _fetched_rank_offset(plan: _Plan, known: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Global cumulative rank after each known value, counting the unfetched intervals too."""
    unfetched = plan.inside.copy()
    if plan.wanted is not None:
        unfetched[plan.wanted] = 0
    # Interval i holds values below edges[i] (and above edges[i-1]): those not fetched still
    # count before every known value at or above edges[i].
    slot = np.searchsorted(plan.edges, known, "right")  # intervals 0..slot-1 lie below
    below = np.concatenate([[0], np.cumsum(unfetched)])[np.minimum(slot, len(unfetched))]
    # slot counts intervals entirely below a value on an edge; a value inside interval j has
    # slot == j and intervals 0..j-1 below it.
    ranks: np.ndarray = cumulative + below
    return ranks


# --- values inside intervals, as bytes ---------------------------------------------------------


def _npz_bytes(names: Sequence[str], arrays: Mapping[str, np.ndarray]) -> bytes:
    import io
    import json

    buffer = io.BytesIO()
    header = np.frombuffer(json.dumps(list(names)).encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, header=header, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _npz_read(data: bytes) -> tuple[list[str], dict[str, np.ndarray]]:
    import io
    import json

    with np.load(io.BytesIO(data), allow_pickle=False) as found:
        arrays = {key: found[key] for key in found.files}
    names = [str(n) for n in json.loads(bytes(arrays.pop("header")).decode("utf-8"))]
    return names, arrays


def requests_bytes(requests: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Interval requests (column -> edges, wanted mask) for the executors."""
    arrays: dict[str, np.ndarray] = {}
    for i, (edges, wanted) in enumerate(requests.values()):
        arrays[f"e{i}"], arrays[f"w{i}"] = edges, wanted
    return _npz_bytes(list(requests), arrays)


def requests_from_bytes(data: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The requests in *data*."""
    names, arrays = _npz_read(data)
    return {name: (arrays[f"e{i}"], arrays[f"w{i}"]) for i, name in enumerate(names)}


def inside_bytes(frames: Iterable[pd.DataFrame], requests: bytes) -> bytes:
    """An executor's answer to :meth:`GridSource.inside` for one partition (as frames)."""
    from pytest_mlops.checks.drift.columns import numeric_matrix

    wanted = requests_from_bytes(requests)
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for frame in frames:
        for column, (edges, mask) in wanted.items():
            if column not in frame.columns or len(frame) == 0:
                continue
            values = numeric_matrix(frame, [column])[0]
            found[column] = _add_counts(found.get(column), value_counts_inside(values, edges, mask))
    return _counts_bytes(found)


def _add_counts(
    a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:

    if a is None:
        return b
    values, inverse = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([a[1], b[1]]), minlength=len(values))
    return values, counts.astype(np.int64)


def _counts_bytes(found: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for i, (values, counts) in enumerate(found.values()):
        arrays[f"v{i}"], arrays[f"c{i}"] = values, counts
    return _npz_bytes(list(found), arrays)


def counts_from_bytes(data: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Value counts per column from :func:`inside_bytes` or :func:`merge_counts_bytes`."""
    names, arrays = _npz_read(data)
    return {name: (arrays[f"v{i}"], arrays[f"c{i}"]) for i, name in enumerate(names)}


def merge_counts_bytes(*blobs: bytes) -> bytes:
    """Value counts of several partitions added up."""
    total: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for blob in blobs:
        for column, pair in counts_from_bytes(blob).items():
            total[column] = _add_counts(total.get(column), pair)
    return _counts_bytes(total)
