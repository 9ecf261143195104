"""The prediction log: one JSON line per served row, what ``pytest-mlops monitor`` reads."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .model import Share
from .responses import dumps
from .tensors import Tensor

__all__ = ["PredictionLog"]


class PredictionLog:
    """Appends ``{"ts", "model", "version", "inputs": {...}, "outputs": {...}}`` per row."""

    def __init__(self, path: str, model: str, version: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open while serving
        self.model, self.version = model, version
        self.lock = threading.Lock()

    def write(self, feeds: Mapping[str, Any], outputs: Sequence[Tensor], share: Share) -> None:
        """Log the rows of one request: its feeds and its share of the outputs."""
        now = time.time()
        ins = {k: _rows(v) for k, v in feeds.items()}
        outs = {}
        for spec, (data, shape) in zip(outputs, share, strict=False):
            width = math.prod(shape[1:])
            outs[spec.name] = (
                data if width == 1 else [data[i * width : (i + 1) * width] for i in range(shape[0])]
            )
        n = len(next(iter(ins.values())))
        lines = [
            dumps(
                {
                    "ts": now,
                    "model": self.model,
                    "version": self.version,
                    "inputs": {k: v[i] for k, v in ins.items()},
                    "outputs": {k: v[i] for k, v in outs.items()},
                }
            ).decode()
            for i in range(n)
        ]
        if not lines:
            return
        with self.lock:
            self.file.write("\n".join(lines) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.file.close()


def _rows(array: Any) -> list[Any]:
    """One JSON value per row: a scalar for a single value, else a flat list."""
    rows = []
    for row in array.reshape(array.shape[0], -1).tolist() if array.ndim else [array.tolist()]:
        row = [v.decode() if isinstance(v, bytes) else v for v in row]
        rows.append(row[0] if len(row) == 1 else row)
    return rows
