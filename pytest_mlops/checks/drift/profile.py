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

File format (``.npz``, read with ``allow_pickle=False``): an array ``header`` holding UTF-8 JSON
``{"format": "pytest-mlops-drift-profile", "version": 2, "n_rows", "bins", "columns": [...],
"sha256"}`` (the checksum and the checks on load: :mod:`~pytest_mlops.checks.drift.profile_file`)
and, for numeric column ``i`` of ``columns``, the arrays ``col{i}_edges`` (float64),
``col{i}_at`` (int64), ``col{i}_inside`` (int64, one more than edges) and ``col{i}_inside_sum``
(float64).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.checks.drift.verdict import ColumnNote, DriftSettings, NumericStats, judge
from pytest_mlops.errors import CheckError, DataError
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["FORMAT", "VERSION", "DriftProfile"]

FORMAT = "pytest-mlops-drift-profile"
VERSION = 2  # 2: the header carries a sha256 of the file's content (1 is still read)
DEFAULT_BINS = 4096
MAX_CATEGORIES = 1000
DEFAULT_CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class NumericProfile:
    """One numeric column on its grid (see the module docstring)."""

    edges: np.ndarray
    at: np.ndarray
    inside: np.ndarray
    inside_sum: np.ndarray
    n_missing: int
    mean: float
    m2: float  # sum of squared deviations from the mean
    min: float
    max: float

    @property
    def count(self) -> int:
        return int(self.at.sum() + self.inside.sum())

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    def same_grid(self, other: NumericProfile) -> bool:
        import numpy as np

        return bool(np.array_equal(self.edges, other.edges))

    def merge(self, other: NumericProfile) -> NumericProfile:
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        delta = other.mean - self.mean if n_a and n_b else 0.0
        # A side without values (an all-missing partition) has a NaN mean: it must not count.
        total = (self.mean * n_a if n_a else 0.0) + (other.mean * n_b if n_b else 0.0)
        mean = total / n if n else math.nan
        m2 = (
            (self.m2 if n_a else 0.0)
            + (other.m2 if n_b else 0.0)
            + delta**2 * n_a * n_b / max(n, 1)
        )
        return NumericProfile(
            edges=self.edges,
            at=self.at + other.at,
            inside=self.inside + other.inside,
            inside_sum=self.inside_sum + other.inside_sum,
            n_missing=self.n_missing + other.n_missing,
            mean=mean,
            m2=m2,
            min=_fmin(self.min, other.min),
            max=_fmax(self.max, other.max),
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical column: counts per category (as text), missing values, the rest."""

    counts: Mapping[str, int]
    n_missing: int
    other: int = 0

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        return _capped(counts, self.n_missing + other.n_missing, self.other + other.other)


ColumnProfile = NumericProfile | CategoricalProfile


def _fmin(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _fmax(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def _capped(counts: Mapping[str, int], missing: int, other: int) -> CategoricalProfile:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ordered[:MAX_CATEGORIES])
    rest = sum(v for _, v in ordered[MAX_CATEGORIES:])
    return CategoricalProfile(kept, missing, other + rest)


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
        from pytest_mlops._engines import engine_for
        from pytest_mlops.checks.drift.check import as_frame

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
        from pytest_mlops._engines import engine_for, get_engine

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
        """This profile's grid and columns with every count at zero (the merge's identity)."""
        import numpy as np

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
        """An empty profile with these numeric grids (column -> sorted edges) and categorical
        columns, in that order: a grid to count partitions on."""
        import numpy as np

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
        from pytest_mlops.checks.drift.check import category_counts, column_kind

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
                out[column] = _capped(counts, missing, 0)
        if numeric:
            edges = (
                [_as_numeric(grid.columns[c]).edges for c in numeric] if grid is not None else None
            )
            out.update(_numeric_profiles(frame, numeric, bins, edges))
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
                columns[name] = column.merge(_as_numeric(theirs))
            else:
                assert isinstance(theirs, CategoricalProfile)
                columns[name] = column.merge(theirs)
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
                    f"{_kind(column)} in one and {_kind(theirs)} in the other"
                )
            if isinstance(column, NumericProfile) and not column.same_grid(_as_numeric(theirs)):
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
        from pytest_mlops.checks.drift.check import categorical_stats, split_empty

        wanted = list(columns) if columns is not None else list(self.columns)
        for column in wanted:
            if column not in self.columns:
                from pytest_mlops.errors import did_you_mean

                raise DataError(
                    f"drift: the column {column!r} is not in the reference profile"
                    f"{did_you_mean(column, self.columns)}; its columns are {list(self.columns)[:30]}"
                )
        notes: list[ColumnNote] = []
        numeric: list[str] = []
        cats: list[str] = []
        for column in wanted:
            mine = self.columns[column]
            if column in summary.problems or column not in summary.columns:
                text = summary.problems.get(column, "missing from the current data")
                notes.append(ColumnNote(column, _kind(mine), text, drifted=True))
            elif isinstance(mine, NumericProfile):
                numeric.append(column)
            else:
                cats.append(column)
        num_stats = None
        if numeric:
            refs = [_as_numeric(self.columns[c]) for c in numeric]
            curs = [_as_numeric(summary.columns[c]) for c in numeric]
            num_stats = _grid_stats(numeric, refs, curs)
            keep, empty = split_empty(
                numeric,
                num_stats.n_ref,
                num_stats.n_cur,
                num_stats.missing_ref,
                num_stats.missing_cur,
                "numeric",
            )
            notes += empty
            num_stats = _take(num_stats, keep)
        cat_stats = None
        if cats:
            refs_c = [_as_categorical(self.columns[c]) for c in cats]
            curs_c = [_as_categorical(summary.columns[c]) for c in cats]
            cat_stats = categorical_stats(
                cats,
                [_with_other(r) for r in refs_c],
                [r.n_missing for r in refs_c],
                [_with_other(c) for c in curs_c],
                [c.n_missing for c in curs_c],
            )
            n_ref = [sum(r.counts.values()) + r.other for r in refs_c]
            n_cur = [sum(c.counts.values()) + c.other for c in curs_c]
            keep, empty = split_empty(
                cats, n_ref, n_cur, cat_stats.missing_ref, cat_stats.missing_cur, "categorical"
            )
            notes += empty
            from pytest_mlops.checks.drift.check import _take_categorical

            cat_stats = _take_categorical(cat_stats, keep)
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

    # --- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the profile as ``.npz`` (no pickle; format in the module docstring)."""
        import numpy as np

        from pytest_mlops._version import __version__

        target = Path(path)
        header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "written_by": f"pytest-mlops {__version__}",
            "n_rows": self.n_rows,
            "bins": self.bins,
            "problems": dict(self.problems),
            "columns": [],
        }
        arrays: dict[str, np.ndarray] = {}
        for i, (name, column) in enumerate(self.columns.items()):
            if isinstance(column, NumericProfile):
                header["columns"].append(
                    {
                        "name": name,
                        "type": "numeric",
                        "n_missing": column.n_missing,
                        "mean": _num(column.mean),
                        "m2": _num(column.m2),
                        "min": _num(column.min),
                        "max": _num(column.max),
                    }
                )
                arrays[f"col{i}_edges"] = column.edges
                arrays[f"col{i}_at"] = column.at
                arrays[f"col{i}_inside"] = column.inside
                arrays[f"col{i}_inside_sum"] = column.inside_sum
            else:
                header["columns"].append(
                    {
                        "name": name,
                        "type": "categorical",
                        "n_missing": column.n_missing,
                        "other": column.other,
                        "categories": list(column.counts),
                        "counts": list(column.counts.values()),
                    }
                )
        from pytest_mlops._files import atomic_file
        from pytest_mlops.checks.drift.profile_file import checksum

        header["sha256"] = checksum(header, arrays)
        text = json.dumps(header, allow_nan=False).encode("utf-8")
        arrays["header"] = np.frombuffer(text, dtype=np.uint8)
        with atomic_file(target, what="the drift profile") as tmp, tmp.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
        return target

    @classmethod
    def load(cls, path: str | Path) -> DriftProfile:
        """Read a profile written by :meth:`save`; a DataError names the file and the problem."""
        from pytest_mlops.checks.drift.profile_file import check_consistent, checksum, read_arrays

        source = Path(path)
        if not source.is_file():
            raise DataError(f"drift profile {str(source)!r} does not exist")
        arrays = read_arrays(source)
        try:
            header = json.loads(bytes(arrays["header"]).decode("utf-8"))
        except (KeyError, ValueError, UnicodeDecodeError):
            raise DataError(
                f"drift profile {str(source)!r} has no valid header: not a pytest-mlops drift "
                "profile, or corrupt"
            ) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise DataError(f"drift profile {str(source)!r} is not a {FORMAT} file")
        if header.get("version") not in (1, VERSION):
            raise DataError(
                f"drift profile {str(source)!r} has format version {header.get('version')!r}; "
                f"this pytest-mlops reads version {VERSION}: fit the profile again with "
                "DriftProfile.fit(reference).save(path)"
            )
        if header["version"] > 1 and header.get("sha256") != checksum(header, arrays):
            raise DataError(
                f"drift profile {str(source)!r} does not match its checksum: it was modified or "
                "damaged after it was saved; fit and save it again"
            )
        try:
            profile = cls._from_parts(header, arrays)
            check_consistent(profile.columns, profile.n_rows, profile.bins, profile.problems)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"drift profile {str(source)!r} is corrupt: {exc}") from None
        return profile

    @classmethod
    def _from_parts(cls, header: Mapping[str, Any], arrays: Mapping[str, Any]) -> DriftProfile:
        import numpy as np

        columns: dict[str, ColumnProfile] = {}
        for i, spec in enumerate(header["columns"]):
            if spec["type"] == "numeric":
                edges = np.asarray(arrays[f"col{i}_edges"], dtype=np.float64)
                at = np.asarray(arrays[f"col{i}_at"], dtype=np.int64)
                inside = np.asarray(arrays[f"col{i}_inside"], dtype=np.int64)
                inside_sum = np.asarray(arrays[f"col{i}_inside_sum"], dtype=np.float64)
                if (
                    at.shape != edges.shape
                    or inside.shape != (len(edges) + 1,)
                    or (inside_sum.shape != inside.shape)
                    or (np.diff(edges) <= 0).any()
                ):
                    raise ValueError(f"inconsistent arrays for column {spec['name']!r}")
                columns[str(spec["name"])] = NumericProfile(
                    edges,
                    at,
                    inside,
                    inside_sum,
                    int(spec["n_missing"]),
                    _unnum(spec["mean"]),
                    _unnum(spec["m2"]),
                    _unnum(spec["min"]),
                    _unnum(spec["max"]),
                )
            elif spec["type"] == "categorical":
                counts = dict(
                    zip(map(str, spec["categories"]), map(int, spec["counts"]), strict=True)
                )
                columns[str(spec["name"])] = CategoricalProfile(
                    counts, int(spec["n_missing"]), int(spec.get("other", 0))
                )
            else:
                raise ValueError(f"unknown column type {spec['type']!r}")
        return cls(
            columns,
            int(header["n_rows"]),
            int(header["bins"]),
            {str(k): str(v) for k, v in dict(header.get("problems", {})).items()},
        )

    def __repr__(self) -> str:
        kinds = [_kind(c) for c in self.columns.values()]
        return (
            f"DriftProfile(rows={self.n_rows}, numeric={kinds.count('numeric')}, "
            f"categorical={kinds.count('categorical')}, bins={self.bins})"
        )


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _unnum(value: Any) -> float:
    return float(value)


def _kind(column: ColumnProfile) -> str:
    return "numeric" if isinstance(column, NumericProfile) else "categorical"


def _as_numeric(column: ColumnProfile) -> NumericProfile:
    assert isinstance(column, NumericProfile)
    return column


def _as_categorical(column: ColumnProfile) -> CategoricalProfile:
    assert isinstance(column, CategoricalProfile)
    return column


def _with_other(column: CategoricalProfile) -> dict[str, int]:
    counts = dict(column.counts)
    if column.other:
        counts["(other)"] = counts.get("(other)", 0) + column.other
    return counts


# --- numeric grids ------------------------------------------------------------------------


def _numeric_profiles(
    frame: pd.DataFrame,
    columns: list[str],
    bins: int,
    grids: list[np.ndarray] | None,
) -> dict[str, NumericProfile]:
    """Profiles of numeric columns, in blocks of columns; grids from the data when None."""
    from pytest_mlops.checks.drift.check import BLOCK_BYTES, numeric_matrix

    per_block = max(1, BLOCK_BYTES // (16 * max(len(frame), 1)))
    out: dict[str, NumericProfile] = {}
    for start in range(0, len(columns), per_block):
        names = columns[start : start + per_block]
        block = numeric_matrix(frame, names)
        block.sort(axis=1)
        edges = grids[start : start + per_block] if grids is not None else _make_grids(block, bins)
        out.update(zip(names, _count_on_grids(block, edges), strict=True))
    return out


def _make_grids(sorted_block: np.ndarray, bins: int) -> list[np.ndarray]:
    """Edges at reference quantiles: ``bins + 1`` levels, duplicates removed."""
    import numpy as np

    n = sorted_block.shape[1]
    valid = n - np.isnan(sorted_block).sum(axis=1)
    levels = np.linspace(0.0, 1.0, bins + 1)
    index = np.round(levels[None, :] * np.maximum(valid - 1, 0)[:, None]).astype(np.int64)
    picked = np.take_along_axis(sorted_block, index, axis=1) if n else np.full(index.shape, np.nan)
    # Columns with few distinct values keep all of them: their KS is then exact.
    distinct = (np.diff(sorted_block, axis=1) != 0).sum(axis=1) + 1 - (n - valid)
    grids = []
    for i, (row, m) in enumerate(zip(picked, valid, strict=True)):
        if m and distinct[i] <= bins + 1:
            grids.append(np.unique(sorted_block[i, :m]))
        else:
            grids.append(np.unique(row) if m else np.zeros(0))
    return grids


def _count_on_grids(sorted_block: np.ndarray, grids: list[np.ndarray]) -> list[NumericProfile]:
    """Each sorted row (NaN last) counted on its grid: at and between the edges, with sums."""
    import numpy as np

    n = sorted_block.shape[1]
    valid = n - np.isnan(sorted_block).sum(axis=1)
    return [
        _count_row(sorted_block[i, : int(valid[i])], np.asarray(g, dtype=np.float64), n)
        for i, g in enumerate(grids)
    ]


def _count_row(values: np.ndarray, edges: np.ndarray, n: int) -> NumericProfile:
    import numpy as np

    count = len(values)
    le = np.searchsorted(values, edges, "right")
    lt = np.searchsorted(values, edges, "left")
    at = (le - lt).astype(np.int64)
    inside = (np.concatenate([lt, [count]]) - np.concatenate([[0], le])).astype(np.int64)
    # Sums segment by segment (not differences of a running sum): each is exact to the
    # rounding of its own few values, so partitions merge to the same sums.
    segment = np.repeat(np.arange(2 * len(edges) + 1), _interleave(inside, at).astype(np.int64))
    sums = np.bincount(segment, weights=values, minlength=2 * len(edges) + 1)
    mean = float(values.mean()) if count else math.nan
    return NumericProfile(
        edges=edges,
        at=at,
        inside=inside,
        inside_sum=sums[0::2].astype(np.float64),
        n_missing=int(n - count),
        mean=mean,
        m2=float(((values - mean) ** 2).sum()) if count else 0.0,
        min=float(values[0]) if count else math.nan,
        max=float(values[-1]) if count else math.nan,
    )


def _interleave(inside: np.ndarray, at: np.ndarray) -> np.ndarray:
    import numpy as np

    seq = np.empty(len(inside) + len(at), dtype=np.float64)
    seq[0::2] = inside
    seq[1::2] = at
    return seq


def _grid_pair(ref: NumericProfile, cur: NumericProfile) -> dict[str, float | np.ndarray]:
    """KS, W1, deciles and the error bounds of one column from its two grid summaries."""
    import numpy as np

    from pytest_mlops.checks.drift.univariate import PSI_BINS

    n_r, n_c = ref.count, cur.count
    seq_r = _interleave(ref.inside, ref.at)
    seq_c = _interleave(cur.inside, cur.at)
    cum_r = np.cumsum(seq_r) / max(n_r, 1)
    cum_c = np.cumsum(seq_c) / max(n_c, 1)
    ks = float(np.abs(cum_r - cum_c).max()) if len(seq_r) else 0.0
    share_r = ref.inside / max(n_r, 1)
    share_c = cur.inside / max(n_c, 1)
    ks_error = float(np.minimum(share_r, share_c).max())
    edges = ref.edges

    # W1 with the in-between values at their means (edges are exact points).
    def points(p: NumericProfile) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(p.inside > 0, p.inside_sum / np.maximum(p.inside, 1), np.nan)
        fill = np.concatenate([[edges[0] if len(edges) else 0.0], edges])
        means = np.where(np.isnan(means), fill, means)
        pts = np.empty(len(seq_r))
        pts[0::2] = means
        pts[1::2] = edges
        return pts

    pts = np.concatenate([points(ref), points(cur)])
    mass = np.concatenate([seq_r / max(n_r, 1), -seq_c / max(n_c, 1)])
    order = np.argsort(pts, kind="stable")
    cum = np.cumsum(mass[order])
    w1 = float((np.diff(pts[order]) * np.abs(cum[:-1])).sum())
    widths = np.diff(edges)
    w_error = float(((share_r[1:-1] + share_c[1:-1]) * widths).sum() / 2)
    for tail in (0, -1):
        if share_r[tail] > 0 and share_c[tail] > 0:
            w_error = math.inf
    # Decile bins of the reference, as in the exact path (nearest-rank quantiles).
    le_r = np.cumsum(seq_r)[1::2]
    le_c = np.cumsum(seq_c)[1::2]
    levels = np.arange(1, PSI_BINS) / PSI_BINS
    targets = np.floor(levels * max(n_r - 1, 0)) + 1
    idx = np.minimum(np.searchsorted(le_r, targets, "left"), max(len(edges) - 1, 0))
    psi_edges = edges[idx] if len(edges) else np.full(PSI_BINS - 1, np.nan)
    ref_cum = np.concatenate([[0.0], le_r[idx] if len(edges) else np.zeros(PSI_BINS - 1), [n_r]])
    cur_cum = np.concatenate([[0.0], le_c[idx] if len(edges) else np.zeros(PSI_BINS - 1), [n_c]])
    # Current values above the last edge are not in le_c: the last bin gets them.
    return {
        "ks": ks,
        "ks_error": ks_error,
        "wasserstein": w1,
        "wasserstein_error": w_error,
        "psi_edges": psi_edges,
        "ref_bins": np.diff(ref_cum) / max(n_r, 1),
        "cur_bins": np.diff(cur_cum) / max(n_c, 1),
    }


def _grid_stats(
    names: list[str], refs: list[NumericProfile], curs: list[NumericProfile]
) -> NumericStats:
    import numpy as np

    from pytest_mlops.checks.drift.univariate import psi

    pairs = [_grid_pair(r, c) for r, c in zip(refs, curs, strict=True)]

    def col(key: str) -> np.ndarray:
        return np.array([p[key] for p in pairs], dtype=float)

    def stack(key: str) -> np.ndarray:
        return np.stack([np.asarray(p[key], dtype=float) for p in pairs])

    n_ref = np.array([r.count for r in refs])
    n_cur = np.array([c.count for c in curs])
    ref_bins, cur_bins = stack("ref_bins"), stack("cur_bins")
    return NumericStats(
        names=names,
        n_ref=n_ref,
        n_cur=n_cur,
        missing_ref=np.array([r.n_missing / max(r.n_missing + r.count, 1) for r in refs]),
        missing_cur=np.array([c.n_missing / max(c.n_missing + c.count, 1) for c in curs]),
        ks=col("ks"),
        wasserstein=col("wasserstein"),
        std_ref=np.array([r.std if r.count else 0.0 for r in refs]),
        std_cur=np.array([c.std if c.count else 0.0 for c in curs]),
        psi=psi(ref_bins, cur_bins),
        psi_edges=stack("psi_edges"),
        ref_bins=ref_bins,
        cur_bins=cur_bins,
        ks_error=col("ks_error"),
        wasserstein_error=col("wasserstein_error"),
    )


def _take(stats: NumericStats, keep: list[int]) -> NumericStats:
    from pytest_mlops.checks.drift.check import _take_numeric

    return _take_numeric(stats, keep)


# --- reading in chunks --------------------------------------------------------------------


def iter_chunks(
    path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Frames of at most *chunk_rows* rows from a CSV (any compression) or Parquet file."""
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        raise DataError(f"drift: the dataset file {str(source)!r} does not exist")
    suffixes = [s.lower() for s in source.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(source)
            wanted = [c for c in columns if c in handle.schema_arrow.names] if columns else None
            for batch in handle.iter_batches(batch_size=chunk_rows, columns=wanted):
                yield batch.to_pandas()
            return
        sep = "\t" if ".tsv" in suffixes else ","
        with pd.read_csv(source, chunksize=chunk_rows, sep=sep) as reader:
            yield from reader
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"drift: cannot read {str(source)!r}: {exc}") from None
