"""What the Spark and Dask engines share: fitting a profile from a grid source, column order."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_mlops.checks.drift.partial import GridReport, GridSource, check_partitions, exact_grid
from pytest_mlops.checks.drift.profile import DriftProfile
from pytest_mlops.errors import DataError

__all__ = ["fit_from_source", "on_grid"]


def fit_from_source(
    source: GridSource,
    kinds: dict[str, str],
    categorical: Sequence[str],
    *,
    bins: int,
    relative_error: float,
    exact_limit: int,
    what: str,
) -> tuple[DriftProfile, GridReport]:
    """A reference profile: the grid made by *source* (exact where affordable), then counted."""
    if bins < 2:
        raise DataError(f"drift profile: 'bins' must be >= 2, got {bins}")
    numeric = [c for c, k in kinds.items() if k == "numeric" and c not in categorical]
    cats = [c for c in kinds if c not in numeric]
    made, counted, report = exact_grid(
        source,
        numeric,
        cats,
        bins=bins,
        relative_error=relative_error,
        exact_limit=exact_limit,
    )
    profile = counted if counted is not None else source.count(made)
    if profile.n_rows == 0:
        raise DataError(f"{what}: the data has no rows")
    return ordered(check_partitions(profile, what), list(kinds)), report


def on_grid(
    source: GridSource,
    grid: DriftProfile,
    wanted: Sequence[str],
    present: set[str],
    what: str,
) -> DriftProfile:
    """Data counted on *grid*'s columns *wanted*; those absent from the data are problems."""
    sub = DriftProfile({c: grid.columns[c] for c in wanted}, 0, grid.bins).empty_like()
    profile = source.count(sub)
    if profile.n_rows == 0:
        raise DataError(f"{what}: the data has no rows")
    problems = dict(profile.problems)
    columns = dict(profile.columns)
    for column in wanted:
        if column not in present:
            problems[column] = "missing from the current data"
            columns.pop(column, None)
    merged = DriftProfile(columns, profile.n_rows, profile.bins, problems)
    return ordered(check_partitions(merged, what), wanted)


def ordered(profile: DriftProfile, order: Sequence[str]) -> DriftProfile:
    """*profile* with its columns in *order* (as the single-process fit lists them)."""
    columns = {c: profile.columns[c] for c in order if c in profile.columns}
    return DriftProfile(columns, profile.n_rows, profile.bins, dict(profile.problems))
