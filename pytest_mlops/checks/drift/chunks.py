"""Reading a dataset file in chunks, so that a profile is fit or compared in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from pytest_mlops.errors import DataError

__all__ = ["DEFAULT_CHUNK_ROWS", "iter_chunks"]

DEFAULT_CHUNK_ROWS = 250_000


def iter_chunks(
    path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Frames of at most *chunk_rows* rows from a CSV (any compression) or Parquet file."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"drift: the dataset file {str(source)!r} does not exist")
    suffixes = [s.lower() for s in source.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            yield from _parquet_chunks(source, chunk_rows, columns)
            return
        sep = "\t" if ".tsv" in suffixes else ","
        with pd.read_csv(source, chunksize=chunk_rows, sep=sep) as reader:
            yield from reader
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"drift: cannot read {str(source)!r}: {exc}") from None


def _parquet_chunks(
    source: Path, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    """Parquet by record batches (pyarrow, the ``parquet`` extra, imported when used)."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(source)
    wanted = [c for c in columns if c in handle.schema_arrow.names] if columns else None
    for batch in handle.iter_batches(batch_size=chunk_rows, columns=wanted):
        yield batch.to_pandas()
