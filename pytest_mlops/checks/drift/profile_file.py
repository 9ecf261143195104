"""A drift profile's file: the ``.npz`` format, read without pickle, checksummed, checked.

The format (``.npz``, read with ``allow_pickle=False``): an array ``header`` holding UTF-8 JSON
``{"format": "pytest-mlops-drift-profile", "version": 2, "written_by", "n_rows", "bins",
"problems", "columns": [...], "sha256"}`` and, for numeric column ``i`` of ``columns``, the arrays
``col{i}_edges`` (float64), ``col{i}_at`` (int64), ``col{i}_inside`` (int64, one more than edges)
and ``col{i}_inside_sum`` (float64). Each entry of ``columns`` names the column and its type;
numeric ones carry ``n_missing``, ``mean``, ``m2``, ``min`` and ``max`` (non-finite values as
text), categorical ones ``n_missing``, ``other``, ``categories`` and their ``counts``.

A profile is summary counts; a wrong count silently moves every verdict computed from it. So a
saved profile carries the sha256 of its header and arrays (``header["sha256"]``), and a loaded
one must add up: per column, the counted values plus the missing ones are the profile's rows,
no count is negative, grid edges are finite and increasing, and in-between sums lie within their
intervals. Files written before checksums (format version 1) get the consistency checks only.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_mlops._files import atomic_file
from pytest_mlops._version import __version__
from pytest_mlops.checks.drift.column_profiles import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
)
from pytest_mlops.errors import DataError

__all__ = [
    "FORMAT",
    "VERSION",
    "ProfileParts",
    "check_consistent",
    "checksum",
    "read_arrays",
    "read_profile",
    "write_profile",
]

FORMAT = "pytest-mlops-drift-profile"
VERSION = 2  # 2: the header carries a sha256 of the file's content (1 is still read)
_HINT = "a profile is the .npz file DriftProfile.fit(reference).save(path) writes"


def checksum(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of the header (without its ``sha256`` key) and of every array but ``header``."""
    digest = hashlib.sha256()
    own = {k: v for k, v in header.items() if k != "sha256"}
    digest.update(json.dumps(own, sort_keys=True, allow_nan=False).encode("utf-8"))
    for name in sorted(k for k in arrays if k != "header"):
        array = arrays[name]
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_arrays(source: Path) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at *source*; a DataError says what the file is instead."""
    try:
        with source.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise DataError(f"drift profile {str(source)!r} cannot be read: {exc.strerror}") from None
    if magic != b"PK\x03\x04":
        what = "an .npy array" if magic.startswith(b"\x93NUM") else _sniff(source)
        raise DataError(f"drift profile {str(source)!r} is not a drift profile ({what}): {_HINT}")
    try:
        with np.load(source, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"drift profile {str(source)!r} holds pickled objects, which a profile never "
                f"does: refusing to read it ({_HINT})"
            ) from None
        raise DataError(f"drift profile {str(source)!r} is corrupt: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(
            f"drift profile {str(source)!r} is corrupt or truncated ({type(exc).__name__}): {_HINT}"
        ) from None


def _sniff(source: Path) -> str:
    try:
        head = source.read_bytes()[:2048]
    except OSError:
        return "unreadable"
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of another kind"
    first = text.splitlines()[0] if text.splitlines() else ""
    if first.lstrip().startswith(("{", "[")):
        return "JSON text"
    return "CSV text" if "," in first else "a text file"


def check_consistent(
    columns: Mapping[str, Any], n_rows: int, bins: int, problems: Mapping[str, str]
) -> None:
    """Raise ValueError naming the first column whose counts do not add up."""
    if n_rows < 0 or bins < 2:
        raise ValueError(f"n_rows {n_rows} and bins {bins} must be >= 0 and >= 2")
    for name, column in columns.items():
        counted = (
            _numeric_count(name, column, bins)
            if hasattr(column, "edges")
            else (_categorical_count(name, column))
        )
        total = counted + column.n_missing
        if total > n_rows or (total != n_rows and name not in problems):
            raise ValueError(
                f"column {name!r} counts {counted} values and {column.n_missing} missing, but "
                f"the profile has {n_rows} rows"
            )


def _numeric_count(name: str, column: Any, bins: int) -> int:
    edges, at, inside, sums = column.edges, column.at, column.inside, column.inside_sum
    if len(edges) > bins + 1 or not np.isfinite(edges).all() or not np.isfinite(sums).all():
        raise ValueError(f"column {name!r}: the grid has non-finite or too many edges")
    if (at < 0).any() or (inside < 0).any() or column.n_missing < 0:
        raise ValueError(f"column {name!r} has a negative count")
    lower = np.concatenate(([-np.inf], edges)) * 1.0
    upper = np.concatenate((edges, [np.inf])) * 1.0
    lower[0], upper[-1] = column.min, column.max
    count = int(at.sum() + inside.sum())
    if count:
        tol = 1e-9 * np.maximum(1.0, np.abs(sums))
        with np.errstate(invalid="ignore"):
            low, high = lower * inside, upper * inside
        outside = (inside > 0) & ((sums < low - tol) | (sums > high + tol))
        slack = 1e-9 * max(1.0, abs(column.mean))
        within = column.min - slack <= column.mean <= column.max + slack
        if outside.any() or not within or column.m2 < 0:
            raise ValueError(f"column {name!r}: its sums do not lie within its grid")
    elif not all(math.isnan(v) for v in (column.min, column.max)):
        raise ValueError(f"column {name!r} counts no values but has a minimum or maximum")
    return count


def _categorical_count(name: str, column: Any) -> int:
    if any(v < 0 for v in column.counts.values()) or column.other < 0 or column.n_missing < 0:
        raise ValueError(f"column {name!r} has a negative count")
    return int(sum(column.counts.values()) + column.other)


# --- the format -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileParts:
    """What a profile file holds: the columns, the row count, the grid size, the problems."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    bins: int
    problems: dict[str, str]


def write_profile(target: Path, parts: ProfileParts) -> None:
    """Write *parts* as a profile file at *target*, checksummed, atomically."""
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "written_by": f"pytest-mlops {__version__}",
        "n_rows": parts.n_rows,
        "bins": parts.bins,
        "problems": dict(parts.problems),
        "columns": [],
    }
    arrays: dict[str, np.ndarray] = {}
    for i, (name, column) in enumerate(parts.columns.items()):
        if isinstance(column, NumericProfile):
            header["columns"].append(_numeric_spec(name, column))
            arrays[f"col{i}_edges"] = column.edges
            arrays[f"col{i}_at"] = column.at
            arrays[f"col{i}_inside"] = column.inside
            arrays[f"col{i}_inside_sum"] = column.inside_sum
        else:
            header["columns"].append(_categorical_spec(name, column))
    header["sha256"] = checksum(header, arrays)
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    arrays["header"] = np.frombuffer(text, dtype=np.uint8)
    with atomic_file(target, what="the drift profile") as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def _numeric_spec(name: str, column: NumericProfile) -> dict[str, Any]:
    return {
        "name": name,
        "type": "numeric",
        "n_missing": column.n_missing,
        "mean": _num(column.mean),
        "m2": _num(column.m2),
        "min": _num(column.min),
        "max": _num(column.max),
    }


def _categorical_spec(name: str, column: CategoricalProfile) -> dict[str, Any]:
    return {
        "name": name,
        "type": "categorical",
        "n_missing": column.n_missing,
        "other": column.other,
        "categories": list(column.counts),
        "counts": list(column.counts.values()),
    }


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def read_profile(source: Path) -> ProfileParts:
    """Read the profile file at *source*; a DataError names the file and the problem."""
    if not source.is_file():
        raise DataError(f"drift profile {str(source)!r} does not exist")
    arrays = read_arrays(source)
    header = _read_header(source, arrays)
    if header["version"] > 1 and header.get("sha256") != checksum(header, arrays):
        raise DataError(
            f"drift profile {str(source)!r} does not match its checksum: it was modified or "
            "damaged after it was saved; fit and save it again"
        )
    try:
        parts = _from_parts(header, arrays)
        check_consistent(parts.columns, parts.n_rows, parts.bins, parts.problems)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"drift profile {str(source)!r} is corrupt: {exc}") from None
    return parts


def _read_header(source: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON header of a profile file of a version this package reads."""
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
    return header


def _from_parts(header: Mapping[str, Any], arrays: Mapping[str, Any]) -> ProfileParts:
    columns: dict[str, ColumnProfile] = {}
    for i, spec in enumerate(header["columns"]):
        if spec["type"] == "numeric":
            columns[str(spec["name"])] = _numeric_column(i, spec, arrays)
        elif spec["type"] == "categorical":
            counts = dict(zip(map(str, spec["categories"]), map(int, spec["counts"]), strict=True))
            columns[str(spec["name"])] = CategoricalProfile(
                counts, int(spec["n_missing"]), int(spec.get("other", 0))
            )
        else:
            raise ValueError(f"unknown column type {spec['type']!r}")
    return ProfileParts(
        columns,
        int(header["n_rows"]),
        int(header["bins"]),
        {str(k): str(v) for k, v in dict(header.get("problems", {})).items()},
    )


def _numeric_column(i: int, spec: Mapping[str, Any], arrays: Mapping[str, Any]) -> NumericProfile:
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
    return NumericProfile(
        edges,
        at,
        inside,
        inside_sum,
        int(spec["n_missing"]),
        float(spec["mean"]),
        float(spec["m2"]),
        float(spec["min"]),
        float(spec["max"]),
    )
