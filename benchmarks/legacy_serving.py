"""The serving app: an ONNX model behind the Open Inference Protocol v2 (REST).

This file is self-contained on purpose: it is copied as-is into every bundle and container image,
where only the Python standard library, NumPy and ONNX Runtime are installed. It never unpickles
anything; the only model format it loads is ONNX.

Endpoints::

    GET  /v2/health/live              200 while the process runs
    GET  /v2/health/ready             200 once the model is loaded and the batcher runs
    GET  /v2                          server metadata
    GET  /v2/models/{name}            model metadata: inputs and outputs with datatypes and shapes
    GET  /v2/models/{name}/ready      200 when that model is ready
    POST /v2/models/{name}/infer      inference (``[/versions/{version}]`` is accepted too)
    GET  /metrics                     Prometheus text: request latency histogram, prediction
                                      distribution, batch sizes, errors
    GET  /openapi.json                the OpenAPI 3 document of the above
    *    /v2/noop                     benchmark peer: a constant, the body is not read
    *    /v2/noop/json                benchmark peer: decodes the body as JSON and answers in the
                                      OIP response shape (placeholders), no validation, no model

Inputs are validated against the model's signature (names, datatypes, ranks, fixed dimensions and a
common batch size); a bad request gets a 400 whose ``error`` says which input and what was expected.
Bodies above ``max_body_bytes`` get a 413 before they are read. Requests that arrive while the
model is busy are merged into one ONNX Runtime call (dynamic batching) up to ``max_batch_rows``.
With ``prediction_log`` set, every served row is appended to a JSON-lines file:
``{"ts": ..., "model": ..., "version": ..., "inputs": {...}, "outputs": {...}}``.

Run it with ``python serving.py --model model.onnx --name credit --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ServingOptions",
    "build_server",
    "main",
    "run_server",
    "serve_in_thread",
]

# ONNX Runtime element types <-> Open Inference Protocol datatypes <-> NumPy dtypes
_ORT_TO_OIP = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
_OIP_TO_NUMPY = {
    "FP32": "float32",
    "FP64": "float64",
    "FP16": "float16",
    "INT64": "int64",
    "INT32": "int32",
    "INT16": "int16",
    "INT8": "int8",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "BYTES": "object",
}


def _json_codec() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """orjson when installed (several times faster), else the standard library."""
    try:
        import orjson
    except ImportError:
        return json.loads, lambda obj: json.dumps(obj, separators=(",", ":")).encode()
    return orjson.loads, orjson.dumps


_loads, _dumps = _json_codec()
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_VALUE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# float32(0.1) as JSON writes it: the digits of a typical probability in a real response
_FILLER_FLOAT = 0.10000000149011612
_MAX_LABELS = 64  # distinct predicted values counted before the rest go to "other"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    """A request the server refuses, with its status code and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServingOptions:
    """How the server runs. Every field has an ``MLOPS_SERVE_<FIELD>`` environment twin."""

    model: str
    name: str = "model"
    version: str = "1"
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 256
    batch_delay_ms: float = 0.0
    batching: bool = True
    threads: int = 0
    prediction_log: str | None = None
    noop: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


# --- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for a free dimension

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class ModelRunner:
    """An ONNX Runtime session and the validation of OIP requests against its signature."""

    def __init__(self, path: str, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Idle ONNX Runtime workers must not spin: they would take the CPU the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = tuple(_tensor(i) for i in self.session.get_inputs())
        self.outputs = tuple(_tensor(o) for o in self.session.get_outputs())
        self._by_name = {t.name: t for t in self.inputs}
        import numpy

        self._np = numpy
        self._fast: dict[Any, tuple[str, list[int], int, frozenset[type], str]] = {
            t.name: (
                t.datatype,
                list(t.shape[1:]),
                math.prod(t.shape[1:]),
                _BOOL if t.datatype == "BOOL" else _INT if "INT" in t.datatype else _NUMBER,
                _OIP_TO_NUMPY[t.datatype],
            )
            for t in self.inputs
            if t.datatype != "BYTES" and -1 not in t.shape[1:] and len(t.shape) >= 1
        }

    def parse(self, body: Any) -> tuple[dict[str, Any], int, list[str] | None]:
        """Feeds, batch size and requested output names from an inference request body."""
        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object with an 'inputs' list")
        items = body.get("inputs")
        if not isinstance(items, list) or not items:
            raise HttpError(400, "the request needs a non-empty 'inputs' list")
        if len(items) == 1 and len(self.inputs) == 1:  # the common case: nothing can be missing
            name, array = self._parse_input(items[0])
            outputs = body.get("outputs")
            return (
                {name: array},
                int(array.shape[0]),
                None if outputs is None else self._requested_outputs(outputs),
            )
        feeds: dict[str, Any] = {}
        for item in items:
            name, array = self._parse_input(item)
            feeds[name] = array
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise HttpError(400, f"missing input(s) {missing}; the model takes {self.input_names}")
        if len(feeds) == 1:
            n = int(array.shape[0])
        else:
            sizes = {name: int(a.shape[0]) for name, a in feeds.items()}
            if len(set(sizes.values())) != 1:
                raise HttpError(400, f"inputs must share the batch size (first dimension): {sizes}")
            n = next(iter(sizes.values()))
        outputs = body.get("outputs")
        return feeds, n, None if outputs is None else self._requested_outputs(outputs)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def _parse_input(self, item: Any) -> tuple[str, Any]:
        np = self._np
        # The common case first, checked against what was precomputed per input: a flat list of
        # values of the right types and count, the declared datatype and fixed dimensions.
        # Anything else goes through the checks below, which say what is wrong.
        if type(item) is dict and type(item.get("name")) is str:
            fast = self._fast.get(item["name"])
            shape, data = item.get("shape"), item.get("data")
            if (
                fast is not None
                and item.get("datatype") == fast[0]
                and type(shape) is list
                and shape
                and set(map(type, shape)) <= _INT
                and shape[1:] == fast[1]
                and shape[0] >= 0
                and type(data) is list
                and len(data) == shape[0] * fast[2]
                and set(map(type, data)) <= fast[3]
            ):
                with contextlib.suppress(OverflowError, ValueError):  # the checks below say why
                    return str(item["name"]), np.asarray(data, dtype=fast[4]).reshape(shape)
        if not isinstance(item, dict):
            raise HttpError(
                400, "each entry of 'inputs' must be an object {name, shape, datatype, data}"
            )
        name = item.get("name")
        spec = self._by_name.get(name) if isinstance(name, str) else None
        if spec is None:
            raise HttpError(400, f"unknown input {name!r}; the model takes {self.input_names}")
        datatype, shape, data = item.get("datatype"), item.get("shape"), item.get("data")
        if datatype != spec.datatype:
            raise HttpError(
                400, f"input {name!r} must have datatype {spec.datatype!r}, got {datatype!r}"
            )
        if (
            not isinstance(shape, list)
            or not shape
            or not set(map(type, shape)) <= _INT
            or min(shape) < 0
        ):
            raise HttpError(400, f"input {name!r}: 'shape' must be a list of dimensions >= 0")
        if len(shape) != len(spec.shape):
            raise HttpError(
                400,
                f"input {name!r} has rank {len(spec.shape)} {list(spec.shape)}, got shape {shape}",
            )
        for got, want in zip(shape[1:], spec.shape[1:], strict=True):
            if want != -1 and got != want:
                raise HttpError(
                    400, f"input {name!r} must have shape {list(spec.shape)}, got {shape}"
                )
        if not isinstance(data, list):
            raise HttpError(400, f"input {name!r}: 'data' must be a list")
        flat = _flatten(data) if data and isinstance(data[0], list) else data
        if len(flat) != math.prod(shape):
            raise HttpError(
                400,
                f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}",
            )
        return str(name), _to_array(np, str(name), flat, spec.datatype, shape)

    def _requested_outputs(self, outputs: Any) -> list[str] | None:
        if outputs is None:
            return None
        known = [t.name for t in self.outputs]
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and o.get("name") in known for o in outputs
        ):
            raise HttpError(400, f"'outputs' must be a list of {{'name': ...}} among {known}")
        return [str(o["name"]) for o in outputs]

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        """Run the session; ZipMap outputs (lists of dicts) become 2-D arrays."""
        import numpy as np

        outputs = self.session.run(None, dict(feeds))
        result = []
        for out in outputs:
            if isinstance(out, list) and out and isinstance(out[0], dict):
                keys = list(out[0])
                out = np.asarray([[row[k] for k in keys] for row in out], dtype=np.float32)
            result.append(np.asarray(out))
        return result

    def predict(
        self, feeds: Mapping[str, Any], sizes: Sequence[int]
    ) -> tuple[list[_Flat], list[_Share]]:
        """Run the merged rows of requests of ``sizes`` rows each.

        Returns every output as one flat list for the whole batch (converted from NumPy once per
        call, not once per request) and each request's share: ``(data, shape)`` per output, where
        ``data`` is a slice of the flat list.
        """
        flats: list[_Flat] = []
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


# An output as a flat list of Python values, its row width and its dimensions after the first;
# a request's share of the outputs: (data, shape) per output.
_Flat = tuple[list[Any], int, list[int]]
_Share = list[tuple[list[Any], list[int]]]


def _tensor(node: Any) -> _Tensor:
    datatype = _ORT_TO_OIP.get(
        node.type, "FP32" if "map" in node.type or "seq" in node.type else "BYTES"
    )
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (node.shape or [None]))
    return _Tensor(node.name, datatype, shape)


def _flatten(data: list[Any]) -> list[Any]:
    """Nested lists to one flat list, in row-major order (no recursion: depth is the client's)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


_INT: frozenset[type] = frozenset((int,))
_BOOL: frozenset[type] = frozenset((bool,))
_NUMBER: frozenset[type] = frozenset((int, float))


def _to_array(np: Any, name: str, flat: list[Any], datatype: str, shape: list[int]) -> Any:
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise HttpError(400, f"input {name!r} is BYTES: 'data' must hold strings")
        return np.asarray(flat, dtype=object).reshape(shape)
    types = set(map(type, flat))  # JSON decoders give exactly bool, int, float, str, ...
    if datatype == "BOOL":
        if not types <= _BOOL:
            raise HttpError(400, f"input {name!r} is BOOL: 'data' must hold true/false")
    elif not types <= _NUMBER:
        raise HttpError(400, f"input {name!r} is {datatype}: 'data' must hold numbers")
    elif datatype.startswith(("INT", "UINT")) and not types <= _INT:
        raise HttpError(400, f"input {name!r} is {datatype}: 'data' must hold whole numbers")
    try:
        return np.asarray(flat, dtype=_OIP_TO_NUMPY[datatype]).reshape(shape)
    except (OverflowError, ValueError):
        raise HttpError(400, f"input {name!r}: a value does not fit {datatype}") from None


# --- dynamic batching ----------------------------------------------------------------------

_Done = Callable[[Any, "BaseException | None"], None]
_Queued = tuple[dict[str, Any], int, _Done]


class Batcher:
    """Merge requests that wait while the model runs into one ONNX Runtime call.

    Greedy: a batch takes every request queued by the time the event loop gets to it (the
    requests that arrived in the same loop turn, or while the previous batch ran), optionally
    after waiting ``delay`` seconds for more, up to ``max_rows`` rows. A slow model runs in a
    worker thread (ONNX Runtime releases the GIL), so the event loop keeps accepting requests
    meanwhile; a model whose batches take under ``INLINE_SECONDS`` runs on the loop itself, since
    handing it to a thread would cost more than the run, and waits one extra loop turn for
    requests already sent (one ``select`` call, microseconds) before it runs.

    Each request comes with a callback, called on the loop with ``(outputs, None)`` or
    ``(None, exception)`` once its batch has run (no future or task per request: this path is hot).
    """

    INLINE_SECONDS = 0.0002

    def __init__(
        self,
        runner: ModelRunner,
        max_rows: int,
        delay: float,
        observe: Callable[[int, list[_Flat]], None],
    ) -> None:
        self.runner = runner
        self.max_rows = max(1, max_rows)
        self.delay = delay
        self.observe = observe
        self.pending: collections.deque[_Queued] = collections.deque()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.scheduled = False  # a batch is due on the loop
        self.gathered = False  # the due batch has waited its extra loop turn
        self.running = False  # a batch runs in the worker thread
        self.closed = False
        self.seconds = 1.0  # running average of a batch's run time; starts "slow"

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    @property
    def alive(self) -> bool:
        return self.loop is not None and not self.closed and not self.loop.is_closed()

    def submit(self, feeds: dict[str, Any], n: int, done: _Done) -> None:
        """Queue a request; ``done`` gets its outputs when its batch has run."""
        self.pending.append((feeds, n, done))
        if not self.scheduled and not self.running:
            self._schedule()

    def _schedule(self) -> None:
        assert self.loop is not None
        self.scheduled = True
        if self.delay:
            self.loop.call_later(self.delay, self._next)
        else:
            self.loop.call_soon(self._next)

    def _next(self) -> None:
        self.scheduled = False
        if self.running or not self.pending or self.closed:
            return
        if (
            not self.gathered
            and not self.delay
            and self.seconds < self.INLINE_SECONDS
            and len(self.pending) < self.max_rows
        ):
            # A fast model waits one more loop turn (one select call) for the requests already
            # on their way: fewer, larger batches, and the run costs the same for 1 row or 16.
            self.gathered = True
            self._schedule()
            return
        self.gathered = False
        pending = self.pending
        first = pending.popleft()
        batch, rows = [first], first[1]
        while pending and rows < self.max_rows:
            item = pending.popleft()
            batch.append(item)
            rows += item[1]
        if self.seconds < self.INLINE_SECONDS:
            try:
                shares, flats = self._run(batch)
            except Exception as exc:
                self._fail(batch, exc)
            else:
                self._deliver(batch, rows, shares, flats)
            if pending and not self.scheduled:
                self._schedule()
            return
        assert self.loop is not None
        self.running = True
        future = self.loop.run_in_executor(self.executor, self._run, batch)
        future.add_done_callback(lambda f: self._ran(f, batch, rows))

    def _ran(self, future: asyncio.Future[Any], batch: list[_Queued], rows: int) -> None:
        self.running = False
        if future.cancelled():  # the server is shutting down
            return
        # The requests that came in meanwhile go to the worker first: it computes the next
        # batch while this one's responses are encoded and sent.
        if self.pending and not self.scheduled:
            if self.delay:
                self._schedule()
            else:
                self._next()
        error = future.exception()
        if error is not None:
            self._fail(batch, error)
        else:
            shares, flats = future.result()
            self._deliver(batch, rows, shares, flats)

    def _deliver(
        self, batch: list[_Queued], rows: int, shares: list[_Share], flats: list[_Flat]
    ) -> None:
        self.observe(rows, flats)
        for (_, _, done), share in zip(batch, shares, strict=True):
            self._call(done, share, None)

    def _fail(self, batch: list[_Queued], error: BaseException) -> None:
        for _, _, done in batch:
            self._call(done, None, error)

    def _call(self, done: _Done, result: Any, error: BaseException | None) -> None:
        """One request's callback; its failure must not keep the others of the batch waiting."""
        try:
            done(result, error)
        except Exception as exc:
            assert self.loop is not None
            self.loop.call_exception_handler(
                {"message": "a batched request's callback failed", "exception": exc}
            )

    def _run(self, batch: list[_Queued]) -> tuple[list[_Share], list[_Flat]]:
        """Each request's share of the outputs, and the whole batch's (for the metrics)."""
        started = time.perf_counter()
        if len(batch) == 1:
            feeds = batch[0][0]
        else:
            concatenate = self.runner._np.concatenate
            feeds = {n: concatenate([b[0][n] for b in batch], axis=0) for n in batch[0][0]}
        flats, shares = self.runner.predict(feeds, [n for _, n, _ in batch])
        self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started)
        return shares, flats


# --- metrics -------------------------------------------------------------------------------


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def observe_values(self, values: list[float]) -> None:
        counts, buckets, where = self.counts, self.buckets, bisect.bisect_left
        total, n = 0.0, 0
        for value in values:
            if value - value == 0:  # skip NaN and infinities (their difference is NaN)
                counts[where(buckets, value)] += 1
                total += value
                n += 1
        self.total += total
        self.n += n

    def render(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        lines, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else repr(float(bound))
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        lines.append(f"{name}_sum{{{labels}}} {self.total!r}")
        lines.append(f"{name}_count{{{labels}}} {self.n}")
        return lines


class Metrics:
    """Prometheus metrics, rendered in the text exposition format."""

    def __init__(self, model: str, version: str) -> None:
        self.base = f'model="{_esc(model)}",version="{_esc(version)}"'
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.batches = _Histogram(_BATCH_BUCKETS)
        self.rows = 0
        self.labels: dict[tuple[str, str], int] = {}
        self.values: dict[str, _Histogram] = {}

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = _Histogram(_LATENCY_BUCKETS)
        hist.observe(seconds)

    def batch(self, rows: int) -> None:
        self.batches.observe(rows)

    def predictions(self, outputs: Sequence[_Tensor], flats: Sequence[_Flat], rows: int) -> None:
        """Count predicted labels and bucket numeric predictions, once per batch."""
        for spec, (values, width, dims) in zip(outputs, flats, strict=False):
            if spec.datatype in ("FP32", "FP64", "FP16"):
                if len(dims) == 1 and width >= 2:
                    values = values[width - 1 :: width]  # a probability output's positive class
                hist = self.values.get(spec.name)
                if hist is None:
                    hist = self.values[spec.name] = _Histogram(_VALUE_BUCKETS)
                hist.observe_values(values)
            else:
                labels = self.labels
                # Counter keeps first-seen order, so "other" takes the same values as one by one.
                for value, count in collections.Counter(values).items():
                    key = (spec.name, str(value))
                    if key not in labels and len(labels) >= _MAX_LABELS:
                        key = (spec.name, "other")
                    labels[key] = labels.get(key, 0) + count
        self.rows += rows

    def render(self) -> str:
        b = self.base
        lines = [
            "# HELP mlops_requests_total Requests by endpoint and status code.",
            "# TYPE mlops_requests_total counter",
        ]
        for (endpoint, status), n in sorted(self.requests.items()):
            lines.append(f'mlops_requests_total{{{b},endpoint="{endpoint}",code="{status}"}} {n}')
        lines += [
            "# HELP mlops_request_duration_seconds Request latency, from parsed request to response.",
            "# TYPE mlops_request_duration_seconds histogram",
        ]
        for endpoint, hist in sorted(self.latency.items()):
            lines += hist.render("mlops_request_duration_seconds", f'{b},endpoint="{endpoint}"')
        lines += [
            "# HELP mlops_batch_rows Rows per ONNX Runtime call (dynamic batching).",
            "# TYPE mlops_batch_rows histogram",
            *self.batches.render("mlops_batch_rows", b),
            "# HELP mlops_inference_rows_total Rows predicted.",
            "# TYPE mlops_inference_rows_total counter",
            f"mlops_inference_rows_total{{{b}}} {self.rows}",
            "# HELP mlops_predictions_total Predicted labels by output and value.",
            "# TYPE mlops_predictions_total counter",
        ]
        for (output, value), n in sorted(self.labels.items()):
            lines.append(
                f'mlops_predictions_total{{{b},output="{_esc(output)}",value="{_esc(value)}"}} {n}'
            )
        lines += [
            "# HELP mlops_prediction_value Distribution of numeric predictions (the positive-class"
            " probability for a probability output).",
            "# TYPE mlops_prediction_value histogram",
        ]
        for output, hist in sorted(self.values.items()):
            lines += hist.render("mlops_prediction_value", f'{b},output="{_esc(output)}"')
        return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- the application -----------------------------------------------------------------------


Response = tuple[int, str, bytes]
_JSON = "application/json"


class Pending:
    """A response still to come (lighter than a future: the hot path makes one per request).

    ``then(callback, *args)`` calls ``callback(response, *args)`` once the response is there, on
    the loop that resolves it, without a round trip through the loop's ready queue.
    """

    __slots__ = ("_args", "_callback", "_response")

    def __init__(self) -> None:
        self._callback: Callable[..., None] | None = None
        self._args: tuple[Any, ...] = ()
        self._response: Response | None = None

    def then(self, callback: Callable[..., None], *args: Any) -> None:
        if self._response is not None:
            callback(self._response, *args)
        else:
            self._callback, self._args = callback, args

    def resolve(self, response: Response) -> None:
        if self._response is not None:
            return
        self._response = response
        if self._callback is not None:
            callback, self._callback = self._callback, None
            callback(response, *self._args)


class _Inference(Pending):
    """A batched inference request: the batcher calls it with its share of the outputs."""

    __slots__ = ("app", "feeds", "request_id", "wanted")

    def __init__(
        self, app: App, feeds: dict[str, Any], wanted: list[str] | None, request_id: str | None
    ) -> None:
        self._callback, self._args, self._response = None, (), None  # Pending's, without a call
        self.app, self.feeds, self.wanted, self.request_id = app, feeds, wanted, request_id

    def __call__(self, share: _Share | None, error: BaseException | None) -> None:
        if error is not None or share is None:
            reason = _short(error) if error is not None else "no outputs"
            self.resolve(_error(400, f"the model refused the input: {reason}"))
            return
        try:
            response = self.app._respond(self.feeds, share, self.wanted, self.request_id)
        except Exception as exc:  # a bug in our encoding must still answer
            response = _error(500, f"internal error: {type(exc).__name__}: {_short(exc)}")
        self.resolve(response)


class App:
    """Routes requests; ``handle`` returns a response, a :class:`Pending` one or a coroutine."""

    def __init__(self, options: ServingOptions) -> None:
        self.options = options
        self.runner = None if options.noop else ModelRunner(options.model, options.threads)
        self.metrics = Metrics(options.name, options.version)
        self.batcher: Batcher | None = None
        self.log = None
        if options.prediction_log:
            self.log = open(options.prediction_log, "a", encoding="utf-8")  # noqa: SIM115
        self.log_lock = threading.Lock()
        self._openapi = _dumps(openapi_document(options.name))
        # the constant parts of an inference response
        self._response_head = b'{"model_name":%s,"model_version":%s,"outputs":[' % (
            _dumps(options.name),
            _dumps(options.version),
        )
        self._output_heads = [
            (t.name, b'{"name":%s,"datatype":"%s","shape":' % (_dumps(t.name), t.datatype.encode()))
            for t in (self.runner.outputs if self.runner is not None else ())
        ]
        base = f"/v2/models/{options.name}"
        self._infer_paths = (
            frozenset((f"{base}/infer", f"{base}/versions/{options.version}/infer"))
            if self.runner is not None
            else frozenset()
        )

    def start(self) -> None:
        if self.runner is not None and self.options.batching:
            self.batcher = Batcher(
                self.runner,
                self.options.max_batch_rows,
                self.options.batch_delay_ms / 1000,
                self._on_batch,
            )
            self.batcher.start()

    @property
    def ready(self) -> bool:
        if self.options.noop:
            return True
        return self.runner is not None and (self.batcher is None or self.batcher.alive)

    def handle(self, method: str, path: str, body: bytes) -> Response | Any:
        if path in self._infer_paths and method == "POST":  # the hot route, without splitting
            return self.infer(body)
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/v2/noop":
            return 200, _JSON, b'{"ok":true}'
        if path == "/v2/noop/json":
            return self.noop_json(body)
        if path == "/v2/health/live":
            return self._get(method) or (200, _JSON, b'{"live":true}')
        if path == "/v2/health/ready":
            return self._get(method) or self._ready()
        if path == "/v2":
            return self._get(method) or _json(
                200, {"name": "pytest-mlops", "version": "1", "extensions": []}
            )
        if path == "/metrics":
            return self._get(method) or (
                200,
                "text/plain; version=0.0.4",
                self.metrics.render().encode(),
            )
        if path == "/openapi.json":
            return self._get(method) or (200, _JSON, self._openapi)
        if path.startswith("/v2/models/"):
            return self._model_route(method, path[len("/v2/models/") :], body)
        return _error(404, f"no route {path!r}: see /openapi.json")

    def _get(self, method: str) -> Response | None:
        return None if method in ("GET", "HEAD") else _error(405, "use GET")

    def _ready(self) -> Response:
        if self.ready:
            return 200, _JSON, b'{"ready":true}'
        return _error(503, "the model is not ready")

    def _model_route(self, method: str, rest: str, body: bytes) -> Response | Any:
        parts = rest.split("/")
        if parts[0] != self.options.name:
            return _error(
                404, f"unknown model {parts[0]!r}; this server serves {self.options.name!r}"
            )
        if len(parts) >= 3 and parts[1] == "versions":
            if parts[2] != self.options.version:
                return _error(
                    404,
                    f"unknown version {parts[2]!r} of {self.options.name!r}; serving {self.options.version!r}",
                )
            parts = [parts[0], *parts[3:]]
        action = parts[1] if len(parts) > 1 else ""
        if action == "" and len(parts) <= 2:
            return self._get(method) or _json(200, self.model_metadata())
        if action == "ready" and len(parts) == 2:
            return self._get(method) or self._ready()
        if action == "infer" and len(parts) == 2:
            if method != "POST":
                return _error(405, "use POST")
            return self.infer(body)
        return _error(404, f"no route /v2/models/{rest!r}: see /openapi.json")

    def model_metadata(self) -> dict[str, Any]:
        runner = self.runner
        return {
            "name": self.options.name,
            "versions": [self.options.version],
            "platform": "onnxruntime",
            "inputs": [t.meta() for t in runner.inputs] if runner else [],
            "outputs": [t.meta() for t in runner.outputs] if runner else [],
            "parameters": dict(self.options.labels),
        }

    def infer(self, body: bytes) -> Response | Any:
        assert self.runner is not None
        try:
            request = _loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, f"the request body is not valid JSON: {_short(exc)}")
        try:
            feeds, n, wanted = self.runner.parse(request)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        request_id = request.get("id") if isinstance(request.get("id"), str) else None
        if self.batcher is None:
            try:
                flats, (share,) = self.runner.predict(feeds, (n,))
            except Exception as exc:
                return _error(400, f"the model refused the input: {_short(exc)}")
            self._on_batch(n, flats)
            return self._respond(feeds, share, wanted, request_id)
        answer = _Inference(self, feeds, wanted, request_id)
        self.batcher.submit(feeds, n, answer)
        return answer

    def noop_json(self, body: bytes) -> Response:
        """The JSON peer of the no-op (benchmarks): decode the body, answer in the OIP shape.

        No validation and no model: the response has the model's outputs (names, datatypes,
        shapes for the request's batch size) filled with placeholder values, so its size is that
        of a real inference response.
        """
        try:
            request = _loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, f"the request body is not valid JSON: {_short(exc)}")
        try:
            n = int(request["inputs"][0]["shape"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            n = 1
        outputs = self.runner.outputs if self.runner is not None else ()
        tensors = []
        for spec in outputs:
            shape = [n, *(d if d >= 0 else 1 for d in spec.shape[1:])]
            zero: Any = (
                "" if spec.datatype == "BYTES" else 0 if "INT" in spec.datatype else _FILLER_FLOAT
            )
            tensors.append(
                {
                    "name": spec.name,
                    "datatype": spec.datatype,
                    "shape": shape,
                    "data": [zero] * math.prod(shape),
                }
            )
        return _json(
            200,
            {
                "model_name": self.options.name,
                "model_version": self.options.version,
                "outputs": tensors,
            },
        )

    def _on_batch(self, rows: int, flats: list[_Flat]) -> None:
        """Metrics once per ONNX Runtime call: the batch size and the predictions' distribution."""
        assert self.runner is not None
        self.metrics.batch(rows)
        self.metrics.predictions(self.runner.outputs, flats, rows)

    def _respond(
        self,
        feeds: Mapping[str, Any],
        share: _Share,
        wanted: list[str] | None,
        request_id: str | None,
    ) -> Response:
        """The inference response, encoded piece by piece around the constant parts."""
        if self.log is not None:
            self._log(feeds, share)
        dumps = _dumps
        tensors = [
            b'%s%s,"data":%s}' % (head, dumps(shape), dumps(data))
            for (name, head), (data, shape) in zip(self._output_heads, share, strict=False)
            if wanted is None or name in wanted
        ]
        tail = b"]}" if request_id is None else b'],"id":%s}' % dumps(request_id)
        return 200, _JSON, b"%s%s%s" % (self._response_head, b",".join(tensors), tail)

    def _log(self, feeds: Mapping[str, Any], share: _Share) -> None:
        assert self.runner is not None and self.log is not None
        now = time.time()
        ins = {k: _rows(v) for k, v in feeds.items()}
        outs = {}
        for spec, (data, shape) in zip(self.runner.outputs, share, strict=False):
            width = math.prod(shape[1:])
            outs[spec.name] = (
                data if width == 1 else [data[i * width : (i + 1) * width] for i in range(shape[0])]
            )
        n = len(next(iter(ins.values())))
        lines = []
        for i in range(n):
            record = {
                "ts": now,
                "model": self.options.name,
                "version": self.options.version,
                "inputs": {k: v[i] for k, v in ins.items()},
                "outputs": {k: v[i] for k, v in outs.items()},
            }
            lines.append(_dumps(record).decode())
        with self.log_lock:
            self.log.write("\n".join(lines) + "\n")
            self.log.flush()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.batcher is not None:
            self.batcher.closed = True
            self.batcher.executor.shutdown(wait=False)


def _rows(array: Any) -> list[Any]:
    """One JSON value per row: a scalar for a single value, else a flat list."""
    rows = []
    for row in array.reshape(array.shape[0], -1).tolist() if array.ndim else [array.tolist()]:
        row = [v.decode() if isinstance(v, bytes) else v for v in row]
        rows.append(row[0] if len(row) == 1 else row)
    return rows


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _json(status: int, payload: Any) -> Response:
    return status, _JSON, _dumps(payload)


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


# --- HTTP/1.1 over asyncio -----------------------------------------------------------------


_MAX_HEADER = 64 * 1024
_HEADS: dict[tuple[int, str, bool], bytes] = {}  # response heads up to the Content-Length value
_ENDPOINTS = frozenset(
    ("infer", "/v2/noop", "/v2/noop/json", "/v2/health/live", "/v2/health/ready", "/metrics")
)


class _Connection(asyncio.Protocol):
    """Keep-alive HTTP/1.1; requests on one connection are answered in order."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closing = False
        self.continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while not self.closing and self.transport is not None:
            try:
                request = self._parse()
            except HttpError as exc:
                self._send(exc.status, _JSON, _dumps({"error": exc.message}), True)
                return
            if request is None:
                return
            method, path, body, keep_alive, start = request
            result = self._dispatch(method, path, body)
            if isinstance(result, tuple):
                if method == "HEAD":  # the head of the GET answer, without its body
                    self._finish(path, result, keep_alive, start, body=False)
                else:
                    self._finish(path, result, keep_alive, start)
                continue
            self.busy = True
            if isinstance(result, Pending):
                result.then(self._answered, path, keep_alive, start)
                return
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t, p=path, k=keep_alive, s=start: self._done(t, p, k, s))
            return

    def _dispatch(self, method: str, path: str, body: bytes) -> Response | Any:
        try:
            return self.app.handle(method, path, body)
        except Exception as exc:  # never let one request take the server down
            return _error(500, f"internal error: {type(exc).__name__}: {_short(exc)}")

    def _done(
        self, task: asyncio.Future[Response], path: str, keep_alive: bool, start: float
    ) -> None:
        self.busy = False
        if task.cancelled():  # the server is shutting down
            return
        try:
            result = task.result()
        except Exception as exc:
            result = _error(500, f"internal error: {type(exc).__name__}: {_short(exc)}")
        self._finish(path, result, keep_alive, start)
        if self.buffer:
            self._process()

    def _answered(self, result: Response, path: str, keep_alive: bool, start: float) -> None:
        self.busy = False
        self._finish(path, result, keep_alive, start)
        if self.buffer:
            self._process()

    def _finish(
        self, path: str, result: Response, keep_alive: bool, start: float, body: bool = True
    ) -> None:
        status, content_type, payload = result
        endpoint = "infer" if path.endswith("/infer") else path.split("?", 1)[0]
        if endpoint not in _ENDPOINTS:
            endpoint = "other"
        self.app.metrics.request(endpoint, status, time.perf_counter() - start)
        self._send(status, content_type, payload, not keep_alive, body)

    def _send(
        self, status: int, content_type: str, payload: bytes, close: bool, body: bool = True
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        key = (status, content_type, close)
        prefix = _HEADS.get(key)
        if prefix is None:
            prefix = _HEADS[key] = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                + ("Connection: close\r\n" if close else "")
                + f"Content-Type: {content_type}\r\nContent-Length: "
            ).encode("latin-1")
        self.transport.write(b"%s%d\r\n\r\n%s" % (prefix, len(payload), payload if body else b""))
        if close:
            self.closing = True
            self.transport.close()

    def _parse(self) -> tuple[str, str, bytes, bool, float] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEADER:
                raise HttpError(431, "request headers too large")
            return None
        start = time.perf_counter()
        try:
            request_line, *header_lines = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ")
        except ValueError:
            raise HttpError(400, "malformed request line") from None
        headers: dict[str, str] = {}
        for line in header_lines:
            key, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, "malformed header line")
            headers[key.strip().lower()] = value.strip()
        get = headers.get
        encoding = get("transfer-encoding")
        if encoding is not None and "chunked" in encoding.lower():
            raise HttpError(411, "send a Content-Length; chunked bodies are not accepted")
        try:
            length = int(get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "Content-Length must be a number") from None
        if length < 0:
            raise HttpError(400, "Content-Length must be >= 0")
        if length > self.app.options.max_body_bytes:
            raise HttpError(
                413,
                f"the request body has {length} bytes; the limit is "
                f"{self.app.options.max_body_bytes} (max_body_bytes)",
            )
        if len(self.buffer) < end + 4 + length:
            if get("expect", "").lower() == "100-continue" and not self.continued:
                self.continued = True  # curl waits for this before sending a large body
                if self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        self.continued = False
        stop = end + 4 + length
        body = bytes(self.buffer[end + 4 : stop])
        if stop == len(self.buffer):
            self.buffer.clear()
        else:
            del self.buffer[:stop]
        connection = get("connection")
        if version == "HTTP/1.1":
            keep_alive = connection is None or connection.lower() != "close"
        else:
            keep_alive = connection is not None and connection.lower() == "keep-alive"
        return method, target, body, keep_alive, start


# --- OpenAPI -------------------------------------------------------------------------------


def openapi_document(name: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the server (paths and the OIP request/response schemas)."""
    error = {
        "description": "error",
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    ok = {"description": "ok", "content": {_JSON: {"schema": {"type": "object"}}}}

    def get(summary: str, *codes: int) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": ok}
        responses.update({str(c): error for c in codes})
        return {"get": {"summary": summary, "responses": responses}}

    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": sorted(_OIP_TO_NUMPY)},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"pytest-mlops serving: {name}", "version": "2"},
        "paths": {
            "/v2/health/live": get("liveness"),
            "/v2/health/ready": get("readiness", 503),
            "/v2": get("server metadata"),
            "/v2/models/{model_name}": {
                "parameters": [name_param],
                **get("model metadata", 404),
            },
            "/v2/models/{model_name}/ready": {
                "parameters": [name_param],
                **get("model readiness", 404, 503),
            },
            "/v2/models/{model_name}/infer": {
                "parameters": [name_param],
                "post": {
                    "summary": "inference",
                    "requestBody": {
                        "required": True,
                        "content": {
                            _JSON: {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "predictions",
                            "content": {
                                _JSON: {
                                    "schema": {"$ref": "#/components/schemas/InferenceResponse"}
                                }
                            },
                        },
                        "400": error,
                        "404": error,
                        "413": error,
                    },
                },
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Tensor": tensor,
                "InferenceRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tensor"},
                        },
                        "outputs": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                        },
                        "parameters": {"type": "object"},
                    },
                },
                "InferenceResponse": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tensor"},
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            }
        },
    }


# --- running -------------------------------------------------------------------------------


async def build_server(options: ServingOptions) -> tuple[asyncio.Server, App]:
    """Load the model and listen; the caller runs the loop (``server.serve_forever()``)."""
    app = App(options)
    app.start()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(app), options.host, options.port, backlog=1024
    )
    return server, app


async def _serve(options: ServingOptions, announce: Callable[[str], None]) -> None:
    import signal

    server, app = await build_server(options)
    stop = asyncio.get_running_loop().create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(sig, finish)
    host, port = server.sockets[0].getsockname()[:2]
    announce(f"serving {options.name!r} version {options.version} on http://{host}:{port}")
    async with server:
        await stop
    app.close()


@contextlib.contextmanager
def serve_in_thread(options: ServingOptions) -> Iterator[tuple[str, App]]:
    """Run the server on its own event loop in a daemon thread; yield ``(base_url, app)``.

    For tests and benchmarks in one process; production runs :func:`main` in its own process.
    """
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            server, app = loop.run_until_complete(build_server(options))
        except BaseException as exc:
            state["error"] = exc
            started.set()
            return
        host, port = server.sockets[0].getsockname()[:2]
        state.update(url=f"http://{host}:{port}", app=app)
        started.set()
        loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        app.close()
        loop.close()

    thread = threading.Thread(target=run, name="mlops-serving", daemon=True)
    thread.start()
    started.wait(60)
    if "error" in state:
        raise state["error"]
    try:
        yield state["url"], state["app"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def run_server(options: ServingOptions, announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (blocking)."""
    asyncio.run(_serve(options, announce or (lambda line: print(line, flush=True))))


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(f"MLOPS_SERVE_{name.upper()}", default)


def parse_args(argv: Sequence[str] | None = None) -> ServingOptions:
    """Options from the command line, falling back to ``MLOPS_SERVE_*`` environment variables."""
    p = argparse.ArgumentParser(prog="serving", description="Serve an ONNX model over OIP v2 REST.")
    p.add_argument("--model", default=_env("model", "model.onnx"))
    p.add_argument("--name", default=_env("name", "model"))
    p.add_argument("--model-version", dest="version", default=_env("version", "1"))
    p.add_argument("--host", default=_env("host", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("port", "8080") or 8080))
    p.add_argument(
        "--max-body-bytes", type=int, default=int(_env("max_body_bytes", str(8 << 20)) or 0)
    )
    p.add_argument("--max-batch-rows", type=int, default=int(_env("max_batch_rows", "256") or 256))
    p.add_argument("--batch-delay-ms", type=float, default=float(_env("batch_delay_ms", "0") or 0))
    p.add_argument(
        "--no-batching", dest="batching", action="store_false", default=_env("batching", "1") != "0"
    )
    p.add_argument("--threads", type=int, default=int(_env("threads", "0") or 0))
    p.add_argument("--prediction-log", default=_env("prediction_log", None) or None)
    p.add_argument("--noop", action="store_true", help="serve only the no-op endpoint (benchmarks)")
    a = p.parse_args(argv)
    return ServingOptions(
        model=a.model,
        name=a.name,
        version=a.version,
        host=a.host,
        port=a.port,
        max_body_bytes=a.max_body_bytes,
        max_batch_rows=a.max_batch_rows,
        batch_delay_ms=a.batch_delay_ms,
        batching=a.batching,
        threads=a.threads,
        prediction_log=a.prediction_log,
        noop=a.noop,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python serving.py``."""
    options = parse_args(argv)
    try:
        run_server(options)
    except OSError as exc:
        print(f"serving: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(
            f"serving: cannot serve {options.model!r}: {type(exc).__name__}: {_short(exc)}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
