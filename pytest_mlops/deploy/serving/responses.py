"""Responses as data: ``(status, content type, body[, extra header lines])``, and the JSON codec."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["JSON", "HttpError", "Response", "dumps", "error", "json_response", "loads", "short"]

# (status, content type, body) or, when the response needs more headers (Allow, Retry-After),
# (status, content type, body, header lines each ending in CRLF)
Response = tuple[int, str, bytes] | tuple[int, str, bytes, bytes]
JSON = "application/json"


class HttpError(Exception):
    """A request the server refuses, with its status code and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_codec() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """Use orjson when installed (several times faster), else the standard library."""
    try:
        import orjson
    except ImportError:
        return json.loads, lambda obj: json.dumps(obj, separators=(",", ":")).encode()
    return orjson.loads, orjson.dumps


loads, dumps = _json_codec()


def short(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    return " ".join(str(exc).split())[:300]


def json_response(status: int, payload: Any) -> Response:
    """*payload* as a JSON response with *status*."""
    return status, JSON, dumps(payload)


def error(status: int, message: str, headers: bytes = b"") -> Response:
    """``{"error": message}`` with *status* (and extra header lines, if any)."""
    if headers:
        return status, JSON, dumps({"error": message}), headers
    return status, JSON, dumps({"error": message})
