"""A small Open Inference Protocol v2 client: tensors to requests, HTTP calls, output comparison."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlops.errors import DeployError

__all__ = ["HttpResult", "compare_outputs", "feeds_to_request", "http_call", "outputs_to_json"]

_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
    "object": "BYTES",
}


def feeds_to_request(feeds: Mapping[str, Any]) -> dict[str, Any]:
    """ONNX Runtime feeds (name -> array) as an OIP v2 inference request body."""
    inputs = []
    for name, value in feeds.items():
        array = np.asarray(value)
        datatype = _DATATYPES.get(str(array.dtype), "BYTES" if array.dtype.kind in "OUS" else "")
        if not datatype:
            raise DeployError(f"input {name!r}: no OIP datatype for {array.dtype}")
        data = array.ravel().tolist()
        if datatype == "BYTES":
            data = [str(v) for v in data]
        inputs.append(
            {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}
        )
    return {"inputs": inputs}


def outputs_to_json(names: Sequence[str], outputs: Sequence[Any]) -> list[dict[str, Any]]:
    """Session outputs as OIP output tensors (ZipMap lists become 2-D arrays)."""
    tensors = []
    for name, out in zip(names, outputs, strict=True):
        if isinstance(out, list) and out and isinstance(out[0], dict):
            out = [[row[k] for k in row] for row in out]
        array = np.asarray(out)
        data = array.ravel().tolist()
        if array.dtype.kind in "OUS":
            data = [str(v) for v in data]
        tensors.append({"name": name, "shape": list(array.shape), "data": data})
    return tensors


def compare_outputs(
    got: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    atol: float = 1e-5,
) -> list[str]:
    """Differences between served and expected output tensors (empty when they agree)."""
    problems: list[str] = []
    by_name = {t.get("name"): t for t in got}
    for want in expected:
        name = want["name"]
        have = by_name.get(name)
        if have is None:
            problems.append(f"output {name!r} is missing")
            continue
        if list(have.get("shape", [])) != list(want["shape"]):
            problems.append(
                f"output {name!r} has shape {have.get('shape')}, expected {want['shape']}"
            )
            continue
        a, b = np.asarray(have.get("data")), np.asarray(want["data"])
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            diff = np.abs(a.astype(float) - b.astype(float))
            if diff.size and float(diff.max()) > atol:
                problems.append(
                    f"output {name!r} differs by up to {float(diff.max()):.3g} (atol {atol:g})"
                )
        elif a.astype(str).tolist() != b.astype(str).tolist():
            mismatched = int((a.astype(str) != b.astype(str)).sum())
            problems.append(f"output {name!r} differs in {mismatched} of {a.size} values")
    return problems


@dataclass(frozen=True)
class HttpResult:
    """A response: status, content type and body."""

    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_call(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> HttpResult:
    """One HTTP(S) request (a JSON body unless *body* is bytes).

    Connection errors raise DeployError.
    """
    parsed = urllib.parse.urlsplit(url)
    connection = (
        http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    )
    conn = connection(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout)
    payload = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    sent = {"Content-Type": "application/json"} if payload is not None else {}
    sent.update(headers or {})
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    try:
        conn.request(method, target, body=payload, headers=sent)
        response = conn.getresponse()
        return HttpResult(response.status, response.getheader("Content-Type", ""), response.read())
    except (OSError, http.client.HTTPException) as exc:
        raise DeployError(f"{method} {url} failed: {exc}") from None
    finally:
        conn.close()
