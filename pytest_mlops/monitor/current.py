"""Read what production saw: a dataset file, or the serving app's prediction log (JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_mlops._progress import Progress
from pytest_mlops.data.loaders import read_frame
from pytest_mlops.errors import DataError

__all__ = [
    "LOG_SUFFIXES",
    "is_prediction_log",
    "read_current",
    "read_prediction_log",
    "rows_of_record",
    "split_tensor_column",
]

LOG_SUFFIXES = (".jsonl", ".ndjson", ".log")


def read_current(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read current data: CSV/Parquet through the dataset loaders, JSON lines as a prediction log.

    Raises
    ------
    DataError
        When the file is missing, unreadable or holds no row; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"--current: the file {str(path)!r} does not exist")
    if is_prediction_log(path):
        return read_prediction_log(path, encoding=encoding)
    frame = read_frame(path, encoding=encoding)
    if len(frame) == 0:
        raise DataError(f"--current: {str(path)!r} holds no row")
    return frame


def is_prediction_log(path: str | Path) -> bool:
    """Whether *path* names a JSON-lines prediction log (``.jsonl``, ``.ndjson``, ``.log``)."""
    return any(s.lower() in LOG_SUFFIXES for s in Path(path).suffixes[-2:])


def read_prediction_log(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a prediction log of JSON lines into one row per served prediction.

    Each line is an object. The serving app writes ``{"ts", "model", "version", "inputs": {name:
    value}, "outputs": {name: value}}``: inputs become columns, scalar outputs become columns named
    ``output.<name>``. Also read: ``"inputs"`` as a list of row objects, Open Inference Protocol
    requests (``"inputs": [{"name", "data"}]``) and flat row objects. An incomplete last line (the
    server was writing it) is skipped; any other line that is not JSON is an error naming it.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    try:
        size = path.stat().st_size
        with path.open("rb") as handle, Progress(size, f"reading {path.name}", unit="B") as bar:
            for number, raw, complete in _lines(handle):
                bar.update(len(raw))
                text = raw.decode(encoding, errors="replace").strip()
                if not text:
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    if not complete:
                        break  # the server is still writing this line
                    raise DataError(
                        f"{str(path)!r} line {number}: not a JSON object ({exc.msg}); a prediction "
                        "log holds one JSON object per line"
                    ) from None
                if not isinstance(record, Mapping):
                    raise DataError(
                        f"{str(path)!r} line {number}: expected a JSON object, got "
                        f"{type(record).__name__}"
                    )
                rows.extend(rows_of_record(record))
    except OSError as exc:
        raise DataError(f"cannot read the prediction log {str(path)!r}: {exc.strerror}") from None
    if not rows:
        raise DataError(f"the prediction log {str(path)!r} holds no prediction")
    return pd.DataFrame.from_records(rows)


def _lines(handle: Any) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes, whether it ended with a newline)."""
    for number, raw in enumerate(handle, start=1):
        yield number, raw, raw.endswith(b"\n")


def rows_of_record(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The feature rows in one log record (see :func:`read_prediction_log` for the shapes)."""
    inputs = record.get("inputs", record.get("instances"))
    if inputs is None:
        return [{k: _scalar(v) for k, v in record.items()}]
    outputs = (
        {
            f"output.{k}": _scalar(v)
            for k, v in (record.get("outputs") or {}).items()
            if _is_scalar(_scalar(v))
        }
        if isinstance(record.get("outputs"), Mapping)
        else {}
    )
    if isinstance(inputs, Mapping):
        return [{**{k: _scalar(v) for k, v in inputs.items()}, **outputs}]
    if (
        isinstance(inputs, list)
        and inputs
        and all(isinstance(t, Mapping) and "name" in t and "data" in t for t in inputs)
    ):
        columns = {str(t["name"]): _flat(t["data"]) for t in inputs}
        n = max(len(c) for c in columns.values())
        return [{k: (c[i] if i < len(c) else None) for k, c in columns.items()} for i in range(n)]
    if isinstance(inputs, list) and all(isinstance(r, Mapping) for r in inputs):
        return [{k: _scalar(v) for k, v in r.items()} for r in inputs]
    raise DataError(
        "a prediction log record's 'inputs' must be an object of columns, a list of row objects "
        f"or Open Inference Protocol tensors; got {type(inputs).__name__}"
    )


def _scalar(value: Any) -> Any:
    """Unwrap one-element lists (a row of an ``[n, 1]`` tensor)."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    return [_scalar(v) for v in data]


def split_tensor_column(frame: pd.DataFrame, columns: list[str], source: Any) -> pd.DataFrame:
    """A model with one tensor input logs each row as a list: spread it over *columns*.

    Such a model takes its features as the columns of a table in their order (what
    :class:`~pytest_mlops.models.onnx.OnnxModel` feeds it), and a profile built on those features
    lists them in the same order, so value ``i`` of the row is column ``i``. The frame comes back
    unchanged unless exactly one input column holds lists; a width that differs from the number
    of *columns* is an error naming both.
    """
    inputs = [c for c in frame.columns if not str(c).startswith("output.")]
    if len(inputs) != 1:
        return frame
    name = inputs[0]
    values = frame[name].tolist()
    if not values or not all(isinstance(v, list) for v in values):
        return frame
    widths = sorted({len(v) for v in values})
    if widths != [len(columns)]:
        raise DataError(
            f"the prediction log {str(source)!r} logs one input tensor {name!r} with "
            f"{' or '.join(map(str, widths))} values per row, and the profile has "
            f"{len(columns)} columns ({', '.join(columns[:8])}{'...' if len(columns) > 8 else ''}): "
            "build the profile on the model's features only, in the order the model takes them"
        )
    spread = pd.DataFrame(values, columns=columns, index=frame.index)
    return pd.concat([spread, frame.drop(columns=[name])], axis=1)
