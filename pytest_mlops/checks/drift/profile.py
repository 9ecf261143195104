"""``DriftProfile``: a reference summarised once, saved without pickle, compared chunk by chunk.

A profile holds, per numeric column, a *grid* of at most ``bins + 1`` edges (reference quantiles;
every distinct value when there are fewer) with exact counts: of the values equal to each edge, of
the values strictly between consecutive edges (and beyond the outer ones), and the sum of those
in-between values. Per categorical column it holds the counts of each category (the
``max_categories`` most frequent; the rest in one "(other)" bucket) and of missing values.

Guarantees when a current sample is compared with a profile (see ``docs/drift.md``):

- KS: ``D_grid <= D <= D_grid + max_i min(r_i, c_i)``, where ``r_i`` and ``c_i`` are the shares
  of the reference and current values strictly inside grid interval ``i``. For a profile fit on
  its own data ``r_i <= 1 / bins`` (continuous data), and 0 when the column has at most
  ``bins + 1`` distinct values: then D is exact. The bound is computed and reported per column.
- 1-Wasserstein: the values inside each interval are placed at their mean; the error is at most
  ``sum_i (r_i + c_i) * width_i / 2`` (reported per column, normalised like the effect).

Counts add up, so profiles on the same grid merge exactly and associatively: fit the grid once
(``DriftProfile.fit(sample)``), summarise partitions anywhere with ``DriftProfile.fit(part,
grid=profile)`` or :meth:`DriftProfile.summarize`, and ``merge`` the results.

The file format (``.npz``, no pickle, checksummed) is in
:mod:`~pytest_mlops.checks.drift.profile_file`; the column summaries in
:mod:`~pytest_mlops.checks.drift.column_profiles`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops._engines import engine_for, get_engine
from pytest_mlops.checks.drift.chunks import DEFAULT_CHUNK_ROWS, iter_chunks
from pytest_mlops.checks.drift.column_profiles import (
    MAX_CATEGORIES,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    as_categorical,
    as_numeric,
    capped,
    kind_of,
    numeric_profiles,
    with_other,
)
from pytest_mlops.checks.drift.columns import (
    as_frame,
    categorical_stats,
    category_counts,
    column_kind,
    tested_categorical,
    tested_numeric,
)
from pytest_mlops.checks.drift.grid_stats import grid_stats
from pytest_mlops.checks.drift.profile_file import (
    FORMAT,
    VERSION,
    ProfileParts,
    read_profile,
    write_profile,
)
from pytest_mlops.checks.drift.verdict import (
    CategoricalStats,
    ColumnNote,
    DriftSettings,
    NumericStats,
    judge,
)
from pytest_mlops.errors import CheckError, DataError, did_you_mean
from pytest_mlops.results import CheckResult

# The column summaries, the chunked reading and the format constants are defined next door;
# they stay importable from here, where they were defined before.
__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_CHUNK_ROWS",
    "FORMAT",
    "MAX_CATEGORIES",
    "VERSION",
    "CategoricalProfile",
    "ColumnProfile",
    "DriftProfile",
    "NumericProfile",
    "iter_chunks",
]

DEFAULT_BINS = 4096


@dataclass(frozen=True)
class DriftProfile:
    """A reference dataset summarised for drift checks; see the module docstring.

    Build one with :meth:`fit` (or :meth:`fit_chunks` / :meth:`fit_path`), keep it with
    :meth:`save` / :meth:`load`, and compare current data with :meth:`compare`.
    """

    columns: Mapping[str, ColumnProfile]
    n_rows: int
    bins: int = DEFAULT_BINS
    problems: Mapping[str, str] = field(default_factory=dict)
    """Columns of summarised data that did not fit the grid (missing, or of another type)."""

    # --- building -------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """Summarise *data* (a Dataset, DataFrame or path read in full).

        Parameters
        ----------
        columns:
            Columns to keep (default: a Dataset's features, or every column).
        categorical:
            Columns to treat as categorical whatever their dtype.
        bins:
            Grid resolution of numeric columns (the KS error is at most about ``1 / bins``).
        grid:
            Count on the grid (and columns) of this profile instead of making a new grid, so
            that the result merges with it.
        """
        engine = engine_for(data)
        if engine is not None:  # a Spark or Dask DataFrame: partial profiles merged here
            fitted: DriftProfile = engine.fit_profile(
                data, columns=columns, categorical=categorical, bins=bins, grid=grid
            )
            return fitted
        frame, features = as_frame(data, "reference" if grid is None else "current")
        if columns is None and features is not None and grid is None:
            columns = list(features)
        return cls._fit_frame(frame, columns, tuple(categorical), bins, grid)

    @classmethod
    def fit_spark(
        cls,
        df: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """Summarise a Spark DataFrame where it lives: partial profiles per partition, merged.

        The grid comes from the data (exact quantiles where the values that pin them are few
        enough to bring to the driver, otherwise ``approxQuantile``'s; the KS bound reported at
        comparison is computed from the counts, so it covers either), unless *grid* is given.
        Needs ``pip install 'pytest-mlops[spark]'`` and Java. See ``docs/scale.md``.
        """
        return cls._fit_engine("spark", df, columns, categorical, bins, grid)

    @classmethod
    def fit_dask(
        cls,
        ddf: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """:meth:`fit_spark` for a ``dask.dataframe`` (``pip install 'pytest-mlops[dask]'``)."""
        return cls._fit_engine("dask", ddf, columns, categorical, bins, grid)

    @classmethod
    def _fit_engine(
        cls,
        name: str,
        data: Any,
        columns: Sequence[str] | None,
        categorical: Sequence[str],
        bins: int,
        grid: DriftProfile | None,
    ) -> DriftProfile:
        engine = get_engine(name)
        if engine_for(data) is not engine:
            raise DataError(
                f"DriftProfile.fit_{name}: expected a {name.capitalize()} DataFrame, got "
                f"{type(data).__module__}.{type(data).__name__}"
            )
        profile: DriftProfile = engine.fit_profile(
            data, columns=columns, categorical=categorical, bins=bins, grid=grid
        )
        return profile

    @classmethod
    def fit_partition(cls, frame: pd.DataFrame, grid: DriftProfile) -> DriftProfile:
        """One partition counted on *grid*: what an engine's executors run (any number of rows).

        Columns of the grid the partition lacks, or holds with another type, are listed in
        ``problems``; merging keeps both, so the driver can tell a column missing everywhere
        from one missing in some partitions. A partition without rows says nothing: it comes
        back without columns (merging with it changes nothing).
        """
        if len(frame) == 0:
            return DriftProfile({}, 0, grid.bins)
        return cls._fit_frame(frame, None, (), grid.bins, grid)

    def empty_like(self) -> DriftProfile:
        """The grid and columns of this profile with every count at zero (the merge's identity)."""
        columns: dict[str, ColumnProfile] = {}
        for name, column in self.columns.items():
            if isinstance(column, NumericProfile):
                m = len(column.edges)
                columns[name] = NumericProfile(
                    column.edges,
                    np.zeros(m, dtype=np.int64),
                    np.zeros(m + 1, dtype=np.int64),
                    np.zeros(m + 1),
                    0,
                    math.nan,
                    0.0,
                    math.nan,
                    math.nan,
                )
            else:
                columns[name] = CategoricalProfile({}, 0, 0)
        return DriftProfile(columns, 0, self.bins)

    @classmethod
    def on_grid(
        cls, edges: Mapping[str, Any], categorical: Sequence[str], *, bins: int = DEFAULT_BINS
    ) -> DriftProfile:
        """An empty profile with these numeric grids and categorical columns, in that order.

        The numeric grids map column -> sorted edges; the empty profile is a grid to count
        partitions on.
        """
        columns: dict[str, ColumnProfile] = {}
        for name, values in edges.items():
            grid = np.unique(np.asarray(values, dtype=np.float64))
            grid = grid[np.isfinite(grid)]  # an approximate quantile of no value is NaN
            columns[str(name)] = NumericProfile(
                grid, grid[:0].astype(np.int64), np.zeros(1, np.int64), np.zeros(1), 0,
                math.nan, 0.0, math.nan, math.nan,
            )  # fmt: skip
        for name in categorical:
            columns[str(name)] = CategoricalProfile({}, 0, 0)
        return DriftProfile(columns, 0, bins).empty_like()

    @classmethod
    def fit_chunks(
        cls,
        chunks: Iterable[pd.DataFrame],
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """Summarise data that arrives in frames (memory bounded by one chunk).

        Without *grid*, the first chunk sets the grid of the numeric columns; the KS error bound
        reported at comparison shows how well it fits the rest (pass a grid fit on a
        representative sample to control it).
        """
        total: DriftProfile | None = None
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            part = cls._fit_frame(chunk, columns, tuple(categorical), bins, grid or total)
            total = part if total is None else total.merge(part)
        if total is None:
            raise DataError("drift profile: the data has no rows")
        return total

    @classmethod
    def fit_path(
        cls,
        path: str | Path,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int = DEFAULT_BINS,
        grid: DriftProfile | None = None,
    ) -> DriftProfile:
        """Summarise a CSV or Parquet file chunk by chunk (Parquet: by record batches)."""
        return cls.fit_chunks(
            iter_chunks(path, chunk_rows=chunk_rows, columns=columns),
            columns=columns,
            categorical=categorical,
            bins=bins,
            grid=grid,
        )

    def summarize(self, data: Any) -> DriftProfile:
        """*data* counted on this profile's grid: mergeable with it, comparable to it."""
        if isinstance(data, DriftProfile):
            self._check_same_grid(data, "compare")
            return data
        if isinstance(data, str | Path):
            return DriftProfile.fit_path(data, grid=self)
        return DriftProfile.fit(data, grid=self)  # engines' DataFrames included

    @classmethod
    def _fit_frame(
        cls,
        frame: pd.DataFrame,
        columns: Sequence[str] | None,
        categorical: tuple[str, ...],
        bins: int,
        grid: DriftProfile | None,
    ) -> DriftProfile:
        if bins < 2:
            raise CheckError(f"drift profile: 'bins' must be >= 2, got {bins}")
        problems: dict[str, str] = {}
        kinds: dict[str, str] = {}
        if grid is not None:
            bins = grid.bins
            wanted = [c for c in grid.columns if columns is None or c in columns]
            for column in wanted:
                kinds[column] = (
                    "numeric" if isinstance(grid.columns[column], NumericProfile) else "categorical"
                )
        else:
            wanted = [str(c) for c in (columns if columns is not None else frame.columns)]
            present = {str(c) for c in frame.columns}
            for column in wanted:
                if column not in present:
                    raise DataError(f"drift profile: the data has no column {column!r}")
                kinds[column] = (
                    "categorical" if column in categorical else column_kind(frame[column])
                )
        present = {str(c) for c in frame.columns}
        numeric: list[str] = []
        out: dict[str, ColumnProfile] = {}
        for column in wanted:
            if column not in present:
                problems[column] = "missing from the current data"
                continue
            if kinds[column] == "numeric":
                if grid is not None and column_kind(frame[column]) != "numeric":
                    problems[column] = "type changed: numeric in reference, categorical in current"
                    continue
                numeric.append(column)
            else:
                counts, missing = category_counts(frame[column])
                out[column] = capped(counts, missing, 0)
        if numeric:
            edges = (
                [as_numeric(grid.columns[c]).edges for c in numeric] if grid is not None else None
            )
            out.update(numeric_profiles(frame, numeric, bins, edges))
        ordered = {c: out[c] for c in wanted if c in out}
        return cls(columns=ordered, n_rows=len(frame), bins=bins, problems=problems)

    # --- combining ------------------------------------------------------------------------

    def merge(self, other: DriftProfile) -> DriftProfile:
        """Counts of both (same grid required): exact, associative and commutative.

        Categories beyond ``max_categories`` fold into "(other)", which is exact below the cap.
        """
        self._check_same_grid(other, "merge")
        columns: dict[str, ColumnProfile] = {}
        for name, column in self.columns.items():
            theirs = other.columns.get(name)
            if theirs is None:
                columns[name] = column
            elif isinstance(column, NumericProfile):
                columns[name] = column.merge(as_numeric(theirs))
            else:
                columns[name] = column.merge(as_categorical(theirs))
        for name, column in other.columns.items():
            columns.setdefault(name, column)
        problems = {**other.problems, **self.problems}
        return DriftProfile(columns, self.n_rows + other.n_rows, self.bins, problems)

    def _check_same_grid(self, other: DriftProfile, action: str) -> None:
        for name, column in self.columns.items():
            theirs = other.columns.get(name)
            if theirs is None:
                continue
            if type(theirs) is not type(column):
                raise CheckError(
                    f"drift profile: cannot {action} profiles where column {name!r} is "
                    f"{kind_of(column)} in one and {kind_of(theirs)} in the other"
                )
            if isinstance(column, NumericProfile) and not column.same_grid(as_numeric(theirs)):
                raise CheckError(
                    f"drift profile: cannot {action} profiles with different grids (column "
                    f"{name!r}); count the second one on the first's grid: "
                    "DriftProfile.fit(data, grid=first) or first.summarize(data)"
                )

    # --- comparing ------------------------------------------------------------------------

    def compare(
        self,
        current: Any,
        *,
        columns: Sequence[str] | None = None,
        name: str = "drift",
        kind: str = "drift",
        settings: DriftSettings | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        **options: Any,
    ) -> CheckResult:
        """Compare *current* (a Dataset, DataFrame, CSV/Parquet path or profile) with this one.

        Paths are read chunk by chunk (memory bounded by *chunk_rows*). *options* are the
        settings of :func:`~pytest_mlops.checks.drift.check_drift` (``alpha``, ``correction``,
        ``max_drifted_share``...). Returns the same :class:`CheckResult` shape as ``check_drift``.
        """
        options_settings = settings or DriftSettings.from_kwargs(options)
        if isinstance(current, str | Path):
            summary = DriftProfile.fit_path(current, chunk_rows=chunk_rows, grid=self)
        else:
            summary = self.summarize(current)
        return self._judge(summary, columns, options_settings, name, kind)

    def compare_path(
        self, path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, **options: Any
    ) -> CheckResult:
        """:meth:`compare` on a CSV or Parquet file read chunk by chunk."""
        return self.compare(Path(path), chunk_rows=chunk_rows, **options)

    def _judge(
        self,
        summary: DriftProfile,
        columns: Sequence[str] | None,
        settings: DriftSettings,
        name: str,
        kind: str,
    ) -> CheckResult:
        wanted = self._wanted(columns)
        notes, numeric, cats = self._split_columns(summary, wanted)
        num_stats = None
        if numeric:
            num_stats, empty = self._numeric_stats(summary, numeric)
            notes += empty
        cat_stats = None
        if cats:
            cat_stats, empty = self._categorical_stats(summary, cats)
            notes += empty
        context = {"n_ref": self.n_rows, "n_cur": summary.n_rows, "split": "profile vs current"}
        return judge(
            num_stats,
            cat_stats,
            notes,
            settings,
            name=name,
            context=context,
            kind=kind,
            order=wanted,
        )

    def _wanted(self, columns: Sequence[str] | None) -> list[str]:
        """The columns to compare: *columns* (each must be in this profile) or all of them."""
        wanted = list(columns) if columns is not None else list(self.columns)
        for column in wanted:
            if column not in self.columns:
                raise DataError(
                    f"drift: the column {column!r} is not in the reference profile"
                    f"{did_you_mean(column, self.columns)}; its columns are {list(self.columns)[:30]}"
                )
        return wanted

    def _split_columns(
        self, summary: DriftProfile, wanted: list[str]
    ) -> tuple[list[ColumnNote], list[str], list[str]]:
        """Notes for the columns *summary* lacks; the numeric and categorical ones to test."""
        notes: list[ColumnNote] = []
        numeric: list[str] = []
        cats: list[str] = []
        for column in wanted:
            mine = self.columns[column]
            if column in summary.problems or column not in summary.columns:
                text = summary.problems.get(column, "missing from the current data")
                notes.append(ColumnNote(column, kind_of(mine), text, drifted=True))
            elif isinstance(mine, NumericProfile):
                numeric.append(column)
            else:
                cats.append(column)
        return notes, numeric, cats

    def _numeric_stats(
        self, summary: DriftProfile, numeric: list[str]
    ) -> tuple[NumericStats, list[ColumnNote]]:
        refs = [as_numeric(self.columns[c]) for c in numeric]
        curs = [as_numeric(summary.columns[c]) for c in numeric]
        return tested_numeric(grid_stats(numeric, refs, curs))

    def _categorical_stats(
        self, summary: DriftProfile, cats: list[str]
    ) -> tuple[CategoricalStats, list[ColumnNote]]:
        refs = [as_categorical(self.columns[c]) for c in cats]
        curs = [as_categorical(summary.columns[c]) for c in cats]
        stats = categorical_stats(
            cats,
            [with_other(r) for r in refs],
            [r.n_missing for r in refs],
            [with_other(c) for c in curs],
            [c.n_missing for c in curs],
        )
        n_ref = [sum(r.counts.values()) + r.other for r in refs]
        n_cur = [sum(c.counts.values()) + c.other for c in curs]
        return tested_categorical(stats, n_ref, n_cur)

    # --- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the profile as ``.npz`` (no pickle; the format is in ``profile_file``)."""
        target = Path(path)
        parts = ProfileParts(dict(self.columns), self.n_rows, self.bins, dict(self.problems))
        write_profile(target, parts)
        return target

    @classmethod
    def load(cls, path: str | Path) -> DriftProfile:
        """Read a profile written by :meth:`save`; a DataError names the file and the problem."""
        parts = read_profile(Path(path))
        return cls(parts.columns, parts.n_rows, parts.bins, parts.problems)

    def __repr__(self) -> str:
        kinds = [kind_of(c) for c in self.columns.values()]
        return (
            f"DriftProfile(rows={self.n_rows}, numeric={kinds.count('numeric')}, "
            f"categorical={kinds.count('categorical')}, bins={self.bins})"
        )
