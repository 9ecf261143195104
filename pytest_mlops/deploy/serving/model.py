"""The model: an ONNX Runtime session (ONNX only: nothing is ever unpickled)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy

from .tensors import tensor_of
from .validation import Parsed, RequestValidator

__all__ = ["Flat", "ModelRunner", "Share"]

# An output as a flat list of Python values, its row width and its dimensions after the first;
# a request's share of the outputs: (data, shape) per output.
Flat = tuple[list[Any], int, list[int]]
Share = list[tuple[list[Any], list[int]]]


class ModelRunner:
    """An ONNX Runtime session on the CPU, and the validation of requests against its signature."""

    def __init__(self, path: str, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Idle ONNX Runtime workers must not spin: they would take the CPU the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = tuple(tensor_of(i) for i in self.session.get_inputs())
        self.outputs = tuple(tensor_of(o) for o in self.session.get_outputs())
        self.validator = RequestValidator(self.inputs, self.outputs)
        self.np = numpy

    def parse(self, body: Any) -> Parsed:
        """Feeds, batch size and requested output names from an inference request body."""
        return self.validator.parse(body)

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        """Run the session; ZipMap outputs (lists of dicts) become 2-D arrays."""
        np = self.np
        result = []
        for out in self.session.run(None, dict(feeds)):
            if isinstance(out, list) and out and isinstance(out[0], dict):
                keys = list(out[0])
                out = np.asarray([[row[k] for k in keys] for row in out], dtype=np.float32)
            result.append(np.asarray(out))
        return result

    def predict(
        self, feeds: Mapping[str, Any], sizes: Sequence[int]
    ) -> tuple[list[Flat], list[Share]]:
        """Run the merged rows of requests of ``sizes`` rows each.

        Returns every output as one flat list for the whole batch (converted from NumPy once per
        call, not once per request) and each request's share: ``(data, shape)`` per output, where
        ``data`` is a slice of the flat list.
        """
        flats: list[Flat] = []
        for spec, out in zip(self.outputs, self.run(feeds), strict=False):
            values = out.ravel().tolist()
            if spec.datatype == "BYTES":
                values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
            dims = list(out.shape[1:])
            flats.append((values, math.prod(dims), dims))
        if len(sizes) == 1:
            return flats, [[(values, [sizes[0], *dims]) for values, _, dims in flats]]
        shares, start = [], 0
        for n in sizes:
            shares.append(
                [(values[start * w : (start + n) * w], [n, *dims]) for values, w, dims in flats]
            )
            start += n
        return flats, shares
