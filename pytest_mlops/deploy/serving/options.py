"""How the server runs: the model, batching, and the limits that keep it up under hostile clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LIMITS", "ServingOptions"]


@dataclass(frozen=True)
class ServingOptions:
    """How the server runs. Every field has an ``MLOPS_SERVE_<FIELD>`` environment twin.

    The limits (see :data:`LIMITS`) have safe defaults for a server on the open internet; each
    is a command-line option too (``--header-timeout 5``).
    """

    model: str
    name: str = "model"
    version: str = "1"
    host: str = "127.0.0.1"
    port: int = 8080
    max_batch_rows: int = 256
    batch_delay_ms: float = 0.0
    batching: bool = True
    threads: int = 0
    prediction_log: str | None = None
    noop: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    # limits: what a client may send, for how long, and how many at once
    max_body_bytes: int = 8 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    send_timeout: float = 30.0
    max_connections: int = 512
    max_in_flight: int = 256
    retry_after: int = 1
    # SIGTERM: readiness fails at once, connections are still accepted for drain_seconds, then
    # the listener closes and requests in flight get up to shutdown_timeout to finish
    drain_seconds: float = 5.0
    shutdown_timeout: float = 25.0

    @property
    def grace_seconds(self) -> float:
        """How long a SIGTERM may take at most: the drain period plus the shutdown timeout."""
        return self.drain_seconds + self.shutdown_timeout


# field -> what it bounds (the command-line help of the limits)
LIMITS: dict[str, str] = {
    "max_body_bytes": "largest request body; larger ones get a 413",
    "max_header_bytes": "largest request line plus headers; larger ones get a 431 (414 for the URL)",
    "max_headers": "most header lines in a request; more get a 431",
    "header_timeout": "seconds a client has to send a request's line and headers (408 after)",
    "body_timeout": "seconds a client has to send a request's body once its headers came (408)",
    "keepalive_timeout": "seconds an idle keep-alive connection is kept open",
    "send_timeout": "seconds a response may wait for a client that does not read it",
    "max_connections": "open connections at most; more get a 503 with Retry-After and a close",
    "max_in_flight": "inference requests queued or running at most; more get a 503 + Retry-After",
    "retry_after": "the Retry-After seconds of a 503",
    "drain_seconds": "after SIGTERM: seconds connections are still accepted (readiness fails)",
    "shutdown_timeout": "after the drain: seconds requests in flight get to finish",
}
