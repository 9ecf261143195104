"""Read datasets from CSV, Parquet, pandas and NumPy, with errors that name the file."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops.data.dataset import Dataset
from pytest_mlops.errors import DataError

__all__ = ["load_dataset", "read_frame"]

_CSV = (".csv", ".tsv", ".txt")
_COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")
_PARQUET = (".parquet", ".pq")


def load_dataset(
    source: Any,
    *,
    target: str | None = None,
    sensitive: str | Sequence[str] = (),
    features: Sequence[str] | None = None,
    name: str | None = None,
    y: Any = None,
    encoding: str = "utf-8",
    **read_options: Any,
) -> Dataset:
    """Build a :class:`Dataset` from a file path, a DataFrame, a dict or an array.

    Parameters
    ----------
    source:
        A path to ``.csv``/``.tsv`` (optionally compressed: ``.gz``, ``.bz2``, ``.zip``, ``.xz``) or
        ``.parquet``; a ``pandas.DataFrame``; a dict of columns; or a 2-D array (columns are named
        ``x0, x1, ...``; pass the labels as ``y``).
    target, sensitive, features:
        Column roles, see :class:`Dataset`.
    encoding:
        Text encoding of CSV files.
    read_options:
        Passed to ``pandas.read_csv`` / ``read_parquet`` (e.g. ``sep``, ``na_values``).
    """
    label = None
    if isinstance(source, Dataset):
        return source
    if isinstance(source, str | Path):
        label = str(source)
        frame = read_frame(Path(source), encoding=encoding, **read_options)
    elif isinstance(source, pd.DataFrame):
        frame = source
    elif isinstance(source, dict):
        frame = pd.DataFrame(source)
    else:
        frame = _from_array(source)
    if y is not None:
        frame = frame.copy()
        target = target or "target"
        frame[target] = list(y) if not hasattr(y, "shape") else y
    return Dataset(
        frame,
        target=target,
        sensitive=tuple([sensitive] if isinstance(sensitive, str) else sensitive),
        features=tuple(features) if features is not None else None,
        name=name or (Path(label).name if label else "data"),
        source=label,
    )


def _from_array(array: Any) -> pd.DataFrame:
    try:
        values = np.asarray(array)
    except Exception:
        raise DataError(
            f"cannot make a dataset from a {type(array).__name__}: expected a file path, a "
            "DataFrame, a dict of columns or a 2-D array"
        ) from None
    if values.ndim != 2:
        raise DataError(f"an array dataset must be 2-D (rows x columns), got shape {values.shape}")
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])


def read_frame(path: Path, *, encoding: str = "utf-8", **options: Any) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame; every failure is a DataError naming the file."""
    if not path.exists():
        raise DataError(f"the dataset file {str(path)!r} does not exist")
    if path.is_dir():
        raise DataError(
            f"the dataset path {str(path)!r} is a directory, expected a CSV or Parquet file"
        )
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in _PARQUET:
        return _read_parquet(path, **options)
    if kind not in _CSV:
        raise DataError(
            f"cannot read {str(path)!r}: unknown file type {kind or '(no suffix)'!r}; "
            "expected .csv, .tsv or .parquet (CSV may be compressed: .gz, .bz2, .zip, .xz)"
        )
    if kind == ".tsv":
        options.setdefault("sep", "\t")
    try:
        frame = pd.read_csv(path, encoding=encoding, **options)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot decode {str(path)!r} as {encoding}: byte {exc.object[exc.start : exc.start + 1]!r} "
            f"at position {exc.start} is not valid; set 'encoding' to the file's encoding "
            "(e.g. 'latin-1' or 'cp1252')"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"the dataset file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot parse {str(path)!r} as CSV: {exc}") from None
    if frame.empty:
        raise DataError(f"the dataset file {str(path)!r} has a header but no rows")
    _refuse_short_rows(path, frame, encoding, options)
    return frame


def _refuse_short_rows(
    path: Path, frame: pd.DataFrame, encoding: str, options: dict[str, Any]
) -> None:
    """Refuse a file with a row that has fewer fields than the header.

    Pandas fills the rest of such a row with missing values, the label (the last column, often)
    too, and nothing says so. Only where the last column has
    missing values are the file's records counted (with the csv module: pandas reads a field
    that is not there and an empty one alike).
    """
    if set(options) - {"sep", "delimiter", "quotechar"} or not frame.iloc[:, -1].isna().any():
        return
    short = _short_records(path, encoding, options.get("sep") or options.get("delimiter") or ",")
    if short:
        raise DataError(
            f"the dataset file {str(path)!r} has {len(short)} row(s) with fewer fields than its "
            f"header's {len(frame.columns)} (data rows {short[:5]}, counting from 0): a row was "
            f"cut short, and its missing fields ({str(frame.columns[-1])!r} among them) would "
            "read as missing values; fix the file"
        )


def _short_records(path: Path, encoding: str, sep: str) -> list[int]:
    opener: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    suffix = path.suffix.lower()
    if len(sep) != 1 or suffix == ".zst":
        return []
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                raw: Any = io.BytesIO(archive.read(archive.namelist()[0]))
        else:
            raw = opener.get(suffix, open)(path, "rb")
        with io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            records = (r for r in csv.reader(text, delimiter=sep) if r)  # pandas skips blanks
            width = len(next(records, []))
            return [i for i, record in enumerate(records) if len(record) < width]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zipfile.BadZipFile, IndexError):
        return []  # pandas read it: a quirk of this second reading is no reason to refuse


def _read_parquet(path: Path, **options: Any) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(
            f"reading {str(path)!r} needs pyarrow: pip install 'pytest-mlops[parquet]'"
        ) from None
    try:
        frame = pd.read_parquet(path, **options)
    except Exception as exc:
        raise DataError(f"cannot read {str(path)!r} as Parquet: {exc}") from None
    if frame.empty:
        raise DataError(f"the dataset file {str(path)!r} has no rows")
    return frame
