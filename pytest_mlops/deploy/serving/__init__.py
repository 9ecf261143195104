"""The serving app: an ONNX model behind the Open Inference Protocol v2 (REST).

This package is self-contained on purpose: it is copied as-is into every bundle and container
image (as ``serving/``, run with ``python -m serving``), where only the Python standard library,
NumPy, ONNX Runtime and httptools are installed (orjson when present). It imports nothing else
of pytest-mlops, never unpickles anything, and the only model format it loads is ONNX.

Endpoints::

    GET  /v2/health/live              200 while the process runs
    GET  /v2/health/ready             200 once the model is loaded and the batcher runs; 503
                                      from the moment a SIGTERM arrives
    GET  /v2                          server metadata
    GET  /v2/models/{name}            model metadata: inputs and outputs with datatypes and shapes
    GET  /v2/models/{name}/ready      200 when that model is ready
    POST /v2/models/{name}/infer      inference (``[/versions/{version}]`` is accepted too)
    GET  /metrics                     Prometheus text: request latency histogram, prediction
                                      distribution, batch sizes, errors, connections
    GET  /openapi.json                the OpenAPI 3 document of the above
    *    /v2/noop                     benchmark peer: a constant, the body is not used
    *    /v2/noop/json                benchmark peer: decodes the body as JSON and answers in the
                                      OIP response shape (placeholders), no validation, no model

Where each concern lives::

    http.py        HTTP/1.1 on asyncio: llhttp parsing, strict framing, limits, timeouts,
                   backpressure, lingering close
    server.py      listening, the SIGTERM drain, a server in a thread for tests
    app.py         routes and responses; the prediction log in predlog.py
    validation.py  requests checked against the model's signature (a fast path for common ones)
    model.py       the ONNX Runtime session; tensors.py the datatypes
    batcher.py     dynamic batching
    metrics.py     Prometheus metrics
    openapi.py     the OpenAPI document
    options.py     every setting and limit; cli.py the command line
"""

from __future__ import annotations

from .app import App
from .cli import main, parse_args
from .openapi import openapi_document
from .options import ServingOptions
from .server import Server, run_server, serve_in_thread, start_server

__all__ = [
    "App",
    "Server",
    "ServingOptions",
    "main",
    "openapi_document",
    "parse_args",
    "run_server",
    "serve_in_thread",
    "start_server",
]
