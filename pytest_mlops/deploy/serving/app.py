"""The OIP v2 application: routes, inference through the batcher, and response encoding.

Responses are encoded around their constant parts. The application knows nothing of HTTP
framing: :mod:`.http` calls :meth:`App.handle`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .batcher import Batcher
from .metrics import Metrics
from .model import Flat, ModelRunner, Share
from .openapi import openapi_document
from .options import ServingOptions
from .predlog import PredictionLog
from .responses import JSON, HttpError, Response, dumps, error, json_response, loads, short

__all__ = ["App", "Pending"]

# float32(0.1) as JSON writes it: the digits of a typical probability in a real response
_FILLER_FLOAT = 0.10000000149011612
_ALLOW_GET = b"Allow: GET, HEAD, OPTIONS\r\n"
_ALLOW_POST = b"Allow: POST, OPTIONS\r\n"


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

    def __call__(self, share: Share | None, exc: BaseException | None) -> None:
        self.app.in_flight -= 1
        if exc is not None or share is None:
            reason = short(exc) if exc is not None else "no outputs"
            self.resolve(error(400, f"the model refused the input: {reason}"))
            return
        try:
            response = self.app.respond(self.feeds, share, self.wanted, self.request_id)
        except Exception as problem:  # a bug in our encoding must still answer
            response = error(500, f"internal error: {type(problem).__name__}: {short(problem)}")
        self.resolve(response)


def _allow(method: str, allow: bytes, verb: str) -> Response:
    if method == "OPTIONS":
        return 204, JSON, b"", allow
    return error(405, f"{method} is not allowed here: use {verb}", allow)


class App:
    """Routes requests; :meth:`handle` returns a response or a :class:`Pending` one."""

    def __init__(self, options: ServingOptions) -> None:
        self.options = options
        self.runner = None if options.noop else ModelRunner(options.model, options.threads)
        self.metrics = Metrics(options.name, options.version)
        self.batcher: Batcher | None = None
        self.draining = False  # SIGTERM came: readiness fails, requests are still answered
        self.in_flight = 0  # inference requests queued in the batcher or running
        self.log = (
            PredictionLog(options.prediction_log, options.name, options.version)
            if options.prediction_log
            else None
        )
        self._openapi = dumps(openapi_document(options.name))
        outputs = self.runner.outputs if self.runner is not None else ()
        # the constant parts of an inference response
        self._response_head = b'{"model_name":%s,"model_version":%s,"outputs":[' % (
            dumps(options.name),
            dumps(options.version),
        )
        self._output_heads = [
            (t.name, b'{"name":%s,"datatype":"%s","shape":' % (dumps(t.name), t.datatype.encode()))
            for t in outputs
        ]
        base = f"/v2/models/{options.name}"
        self._infer_paths = (
            frozenset((f"{base}/infer", f"{base}/versions/{options.version}/infer"))
            if self.runner is not None
            else frozenset()
        )
        self._busy = error(
            503,
            f"too many requests in flight (max_in_flight={options.max_in_flight}): retry later",
            b"Retry-After: %d\r\n" % options.retry_after,
        )

    def start(self) -> None:
        """Start the batcher on the running event loop."""
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
        if self.draining:
            return False
        if self.options.noop:
            return True
        return self.runner is not None and (self.batcher is None or self.batcher.alive)

    def handle(self, method: str, path: str, body: bytes) -> Response | Pending:
        """The response to a request (the path may carry a query, which is ignored)."""
        if method == "POST" and path in self._infer_paths:  # the hot route, without splitting
            return self.infer(body)
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/v2/noop":
            return 200, JSON, b'{"ok":true}'
        if path == "/v2/noop/json":
            return self.noop_json(body)
        if path.startswith("/v2/models/"):
            return self._model_route(method, path[len("/v2/models/") :], body)
        return self._server_route(method, path)

    def _server_route(self, method: str, path: str) -> Response:
        if path == "/v2/health/live":
            return self._get(method) or (200, JSON, b'{"live":true}')
        if path == "/v2/health/ready":
            return self._get(method) or self._ready()
        if path == "/v2":
            meta = {"name": "pytest-mlops", "version": "1", "extensions": []}
            return self._get(method) or json_response(200, meta)
        if path == "/metrics":
            metrics = "text/plain; version=0.0.4"
            return self._get(method) or (200, metrics, self.metrics.render().encode())
        if path == "/openapi.json":
            return self._get(method) or (200, JSON, self._openapi)
        return error(404, f"no route {path!r}: see /openapi.json")

    def _get(self, method: str) -> Response | None:
        return None if method in ("GET", "HEAD") else _allow(method, _ALLOW_GET, "GET")

    def _ready(self) -> Response:
        if self.ready:
            return 200, JSON, b'{"ready":true}'
        reason = "the server is shutting down" if self.draining else "the model is not ready"
        return error(503, reason, b"Retry-After: %d\r\n" % self.options.retry_after)

    def _model_route(self, method: str, rest: str, body: bytes) -> Response | Pending:
        name, version = self.options.name, self.options.version
        parts = rest.split("/")
        if parts[0] != name:
            return error(404, f"unknown model {parts[0]!r}; this server serves {name!r}")
        if len(parts) >= 3 and parts[1] == "versions":
            if parts[2] != version:
                message = f"unknown version {parts[2]!r} of {name!r}; serving {version!r}"
                return error(404, message)
            parts = [parts[0], *parts[3:]]
        action = parts[1] if len(parts) > 1 else ""
        if action == "" and len(parts) <= 2:
            return self._get(method) or json_response(200, self.model_metadata())
        if action == "ready" and len(parts) == 2:
            return self._get(method) or self._ready()
        if action == "infer" and len(parts) == 2:
            if method != "POST":
                return _allow(method, _ALLOW_POST, "POST")
            return self.infer(body)
        return error(404, f"no route /v2/models/{rest!r}: see /openapi.json")

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

    def infer(self, body: bytes) -> Response | Pending:
        """Validate and queue an inference request (or run it at once without batching)."""
        if self.runner is None:
            return error(404, "this server serves no model (--noop)")
        try:
            request = loads(body)
        except (ValueError, RecursionError) as exc:
            return error(400, f"the request body is not valid JSON: {short(exc)}")
        try:
            feeds, n, wanted = self.runner.parse(request)
        except HttpError as exc:
            return error(exc.status, exc.message)
        request_id = request.get("id") if isinstance(request.get("id"), str) else None
        if self.batcher is None:
            try:
                flats, (share,) = self.runner.predict(feeds, (n,))
            except Exception as exc:
                return error(400, f"the model refused the input: {short(exc)}")
            self._on_batch(n, flats)
            return self.respond(feeds, share, wanted, request_id)
        if self.in_flight >= self.options.max_in_flight:
            return self._busy
        answer = _Inference(self, feeds, wanted, request_id)
        self.in_flight += 1
        self.batcher.submit(feeds, n, answer)
        return answer

    def noop_json(self, body: bytes) -> Response:
        """The JSON peer of the no-op (benchmarks): decode the body, answer in the OIP shape.

        No validation and no model: the response has the model's outputs (names, datatypes,
        shapes for the request's batch size) filled with placeholder values, so its size is that
        of a real inference response.
        """
        try:
            request = loads(body)
        except (ValueError, RecursionError) as exc:
            return error(400, f"the request body is not valid JSON: {short(exc)}")
        try:
            n = int(request["inputs"][0]["shape"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            n = 1
        n = min(max(n, 0), self.options.max_batch_rows)
        tensors = []
        for spec in self.runner.outputs if self.runner is not None else ():
            shape = [n, *(d if d >= 0 else 1 for d in spec.shape[1:])]
            kind = spec.datatype
            zero: Any = "" if kind == "BYTES" else 0 if "INT" in kind else _FILLER_FLOAT
            tensors.append({"name": spec.name, "datatype": kind, "shape": shape})
            tensors[-1]["data"] = [zero] * math.prod(shape)
        name, version = self.options.name, self.options.version
        return json_response(
            200, {"model_name": name, "model_version": version, "outputs": tensors}
        )

    def _on_batch(self, rows: int, flats: list[Flat]) -> None:
        """Metrics once per ONNX Runtime call: the batch size and the predictions' distribution."""
        assert self.runner is not None  # noqa: S101 - a type the caller guarantees
        self.metrics.batch(rows)
        self.metrics.predictions(self.runner.outputs, flats, rows)

    def respond(
        self,
        feeds: Mapping[str, Any],
        share: Share,
        wanted: list[str] | None,
        request_id: str | None,
    ) -> Response:
        """The inference response, encoded piece by piece around the constant parts."""
        if self.log is not None and self.runner is not None:
            self.log.write(feeds, self.runner.outputs, share)
        tensors = [
            b'%s%s,"data":%s}' % (head, dumps(shape), dumps(data))
            for (name, head), (data, shape) in zip(self._output_heads, share, strict=False)
            if wanted is None or name in wanted
        ]
        tail = b"]}" if request_id is None else b'],"id":%s}' % dumps(request_id)
        return 200, JSON, b"%s%s%s" % (self._response_head, b",".join(tensors), tail)

    def close(self) -> None:
        """Close the prediction log and stop the batcher's worker."""
        if self.log is not None:
            self.log.close()
        if self.batcher is not None:
            self.batcher.closed = True
            self.batcher.executor.shutdown(wait=False)
