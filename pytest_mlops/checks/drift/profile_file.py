"""A drift profile's file: read without pickle, checksummed, and checked for consistency.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import DataError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["check_consistent", "checksum", "read_arrays"]

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
    import numpy as np

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
    import numpy as np

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
