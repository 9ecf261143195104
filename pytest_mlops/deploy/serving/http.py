"""HTTP/1.1 under the app: llhttp (through httptools) parses, this module enforces the rest.

llhttp, the parser of Node.js, refuses malformed framing: a duplicate or malformed
``Content-Length``, ``Content-Length`` with ``Transfer-Encoding``, obsolete line folding, a bare
LF, unknown transfer codings, invalid versions, header names with spaces. On top of it, each
connection enforces what a parser cannot know:

- ``Host`` exactly once on HTTP/1.1; HTTP/1.0 and 1.1 only (505 otherwise); ``Transfer-Encoding``
  only ``chunked`` (501) and never on HTTP/1.0; an unknown method is a 501, ``CONNECT`` a 405;
- limits: request line and headers (``max_header_bytes``, ``max_headers``: 431, a URL alone 414),
  the body (``max_body_bytes``: 413, chunked bodies counted as they come), open connections
  (``max_connections``: 503 with ``Retry-After``);
- timeouts: the line and headers must arrive within ``header_timeout`` of the request's first
  byte (slowloris gets a 408), the body within ``body_timeout``, an idle keep-alive connection is
  closed after ``keepalive_timeout``, a response not read for ``send_timeout`` aborts the
  connection;
- backpressure: pipelined requests are answered in order, one at a time, and reading pauses
  while one waits behind another or while the transport's write buffer is full;
- after a refusal the connection never reads another request: the response goes out with
  ``Connection: close``, the write side is shut, and what the client still sends is read and
  dropped for a bounded time and size (a lingering close), so it sees the response, not a reset.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import time
from typing import TYPE_CHECKING, Any

import httptools

from .responses import JSON, HttpError, Response, dumps, short

if TYPE_CHECKING:
    from .app import App
    from .options import ServingOptions

__all__ = ["Connection", "Listener"]

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_ENDPOINTS = frozenset(
    ("infer", "/v2/noop", "/v2/noop/json", "/v2/health/live", "/v2/health/ready", "/metrics")
)
# where a connection is: waiting for a request, reading its head or body, answering, closing
_IDLE, _HEAD, _BODY, _WAIT, _LINGER = range(5)
_LINGER_SECONDS = 2.0  # how long a closing connection reads and drops what the client still sends
_SWEEP_SECONDS = 0.25  # how often deadlines are checked
_now = time.monotonic
# the request headers the connection reads itself, in their usual spellings first
_HOST, _LENGTH, _CODING, _EXPECT = range(1, 5)
_NAMES = {b"host": _HOST, b"content-length": _LENGTH, b"transfer-encoding": _CODING}
_NAMES[b"expect"] = _EXPECT
_WATCHED = {**_NAMES, **{name.title(): key for name, key in _NAMES.items()}}
_WATCHED_SIZES = frozenset(map(len, _NAMES))


class Listener:
    """What the connections of one server share: the app, the limits, the open connections.

    A sweep every quarter second closes the connections whose deadline passed (one timer for
    all of them, instead of one per request).
    """

    def __init__(self, app: App, options: ServingOptions) -> None:
        self.app = app
        self.options = options
        self.connections: set[Connection] = set()
        self.serving = 0  # open connections under max_connections
        self.draining = False  # SIGTERM came: every response closes its connection
        self.heads: dict[tuple[int, str, bool], bytes] = {}
        self.date = b""
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self) -> Connection:
        return Connection(self)

    def start(self) -> None:
        """Start the sweep on the running loop."""
        self._sweep()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _sweep(self) -> None:
        now = _now()
        self.date = b"Date: %s\r\n" % email.utils.formatdate(usegmt=True).encode()
        for connection in list(self.connections):
            connection.check(now)
        self._timer = asyncio.get_running_loop().call_later(_SWEEP_SECONDS, self._sweep)

    def close_idle(self) -> None:
        """Close the connections that wait for a request and have none in progress."""
        for connection in list(self.connections):
            if connection.idle:
                connection.close()

    @property
    def quiet(self) -> bool:
        """No request in progress on any connection."""
        return all(c.idle or c.lingering for c in self.connections)

    def abort_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()


def _status_of(exc: httptools.HttpParserError) -> tuple[int, str]:
    """The status of a request llhttp refused.

    501 for an unknown method or coding, 505 for a version, 400 for the rest.
    """
    text = str(exc)
    if isinstance(exc, httptools.HttpParserInvalidMethodError) and "Invalid method" in text:
        return 501, f"unknown method: {text}"
    if "Transfer-Encoding" in text and "Content-Length" not in text:
        return 501, f"unsupported Transfer-Encoding: {text}"
    if "HTTP version" in text:
        return 505, f"{text}: use HTTP/1.1"
    return 400, f"malformed request: {text}"


class Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, requests answered in order."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.app = listener.app
        self.options = listener.options
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self.phase = _IDLE
        self.deadline = 0.0  # when the client's current wait runs out (0: none)
        self.send_deadline = 0.0  # when a response the client does not read runs out
        self.busy = False  # a request waits for its response (the batcher has it)
        self.done = False  # the parser takes no more data: refused, upgraded or closing
        self.closed = False
        self.refused = False  # over max_connections: answered 503 and closed
        self.read_paused = self.write_paused = self.eof = False
        self.served = 0
        self.dropped = 0  # bytes read and dropped while closing
        # the limits read on every request, as attributes of their own (the hot path)
        options = self.options
        self.max_head, self.max_headers = options.max_header_bytes, options.max_headers
        self.max_body = options.max_body_bytes
        self.header_timeout, self.body_timeout = options.header_timeout, options.body_timeout
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.head_bytes = self.raw_head = self.headers = self.hosts = self.body_size = 0
        self.chunks: list[bytes] = []
        self.coding: bytes | None = None
        self.length = -1
        self.expect: bytes | None = None
        self.method = ""
        self.keep_alive = True
        self.start = 0.0

    @property
    def idle(self) -> bool:
        """Waiting for a request, none in progress."""
        return self.phase == _IDLE and not self.busy and not self.queue

    @property
    def lingering(self) -> bool:
        """Answered for the last time, closing."""
        return self.phase == _LINGER

    # --- the transport's callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        listener = self.listener
        listener.connections.add(self)
        if listener.serving >= self.options.max_connections:
            self.refused = True
            message = f"too many connections (max_connections={self.options.max_connections})"
            self._answer_refusal(503, message, b"Retry-After: %d\r\n" % self.options.retry_after)
            return
        listener.serving += 1
        self.deadline = _now() + self.options.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.done = True
        self.listener.connections.discard(self)
        if not self.refused:
            self.listener.serving -= 1

    def eof_received(self) -> bool:
        if self.phase != _LINGER and (self.busy or self.queue):
            self.eof = True  # half-closed: answer what came, then close
            return True
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        self.send_deadline = _now() + self.options.send_timeout
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.send_deadline = 0.0
        self._process()

    def data_received(self, data: bytes) -> None:
        if self.done:
            self._drop(len(data))
            return
        if self.phase == _HEAD:
            self.raw_head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.done = True  # the request was answered (or refused); nothing after it is read
        except httptools.HttpParserCallbackError:
            if not self.done:  # not one of our refusals: a bug of ours, answered as such
                self._refuse(500, "internal error while reading the request", stop=False)
        except httptools.HttpParserError as exc:
            self._refuse(*_status_of(exc), stop=False)
        else:
            if self.phase == _HEAD and self.raw_head > self.max_head:
                self._refuse(431, self._too_large_head(), stop=False)
        if self.busy and self.queue:
            self._pause_reading()

    # --- the parser's callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self.phase = _HEAD
        if self.served:  # the first request's clock started when the connection was accepted
            self.deadline = _now() + self.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_head:
            self._refuse(414, f"the URL is longer than {self.max_head} bytes (max_header_bytes)")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers += 1
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > self.max_head or self.headers > self.max_headers:
            self._refuse(431, self._too_large_head())
        key = _WATCHED.get(name)
        if key is None:
            if len(name) not in _WATCHED_SIZES:
                return
            key = _WATCHED.get(name.lower())
        if key == _HOST:
            self.hosts += 1
        elif key == _LENGTH:
            self.length = int(value)  # llhttp checked its digits and that it came once
        elif key == _CODING:
            self.coding = value
        elif key == _EXPECT:
            self.expect = value.lower()

    def on_headers_complete(self) -> None:
        self.start = start = _now()
        self.phase = _BODY
        self.deadline = start + self.body_timeout
        parser = self.parser
        self.method = parser.get_method().decode("ascii")
        if self.hosts == 1 and self.coding is None and parser.get_http_version() == "1.1":
            # the common request: only an Upgrade is left to look at
            keep = not parser.should_upgrade() and bool(parser.should_keep_alive())
            if not keep:
                keep = self._check_head()
        else:
            keep = self._check_head()
        self.keep_alive = keep and not self.listener.draining
        if self.length > self.max_body:
            self._refuse(413, self._too_large_body(self.length))
        if self.expect is not None:
            if self.expect != b"100-continue":
                self._refuse(417, f"unsupported Expect: {self.expect.decode('latin-1')!r}")
            if not self.busy and not self.queue and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, data: bytes) -> None:
        self.body_size += len(data)
        if self.body_size > self.max_body:
            self._refuse(413, self._too_large_body(self.body_size))
        self.chunks.append(data)

    def on_message_complete(self) -> None:
        self.phase = _WAIT
        self.deadline = 0.0
        if self.done:
            return
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        path = self.url.decode("latin-1")
        if self.busy or self.queue or self.write_paused:
            self.queue.append((self.method, path, body, self.keep_alive, self.start))
        else:
            self._dispatch(self.method, path, body, self.keep_alive, self.start)

    def _check_head(self) -> bool:
        """Refuse what llhttp lets through; whether the connection may be kept alive."""
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            self._refuse(505, f"HTTP/{version} is not supported: use HTTP/1.1")
        if self.hosts != 1 and (version == "1.1" or self.hosts > 1):
            self._refuse(400, f"a request needs exactly one Host header, got {self.hosts}")
        if self.coding is not None:
            if version == "1.0":
                self._refuse(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            if self.coding.lower() != b"chunked":
                coding = self.coding.decode("latin-1")
                self._refuse(501, f"Transfer-Encoding {coding!r} is not supported: use chunked")
        if self.parser.should_upgrade():
            if self.method == "CONNECT":
                self._refuse(405, "CONNECT is not allowed", b"Allow: GET, HEAD, POST, OPTIONS\r\n")
            if self.length > 0 or self.coding is not None:
                self._refuse(400, "a request asking for an Upgrade cannot carry a body here")
            return False  # answered over HTTP/1.1, then the connection closes
        return version == "1.1" and bool(self.parser.should_keep_alive())

    def _too_large_head(self) -> str:
        if self.headers > self.max_headers:
            return f"more than {self.max_headers} header lines (max_headers)"
        return f"the request line and headers exceed {self.max_head} bytes (max_header_bytes)"

    def _too_large_body(self, size: int) -> str:
        limit = self.max_body
        return f"the request body has {size} bytes or more; the limit is {limit} (max_body_bytes)"

    # --- answering ---------------------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, body: bytes, keep_alive: bool, start: float
    ) -> None:
        try:
            result = self.app.handle(method, path, body)
        except Exception as exc:  # never let one request take the server down
            result = (
                500,
                JSON,
                dumps({"error": f"internal error: {type(exc).__name__}: {short(exc)}"}),
            )
        if type(result) is tuple:
            self._finish(result, method, path, keep_alive, start)
            return
        self.busy = True
        result.then(self._answered, method, path, keep_alive, start)  # type: ignore[union-attr]

    def _answered(
        self, result: Response, method: str, path: str, keep_alive: bool, start: float
    ) -> None:
        self.busy = False
        self._finish(result, method, path, keep_alive, start)
        self._process()

    def _process(self) -> None:
        """Answer the queued requests in order, one at a time, while the client reads."""
        queue = self.queue
        while queue and not self.busy and not self.write_paused and not self.closed:
            item = queue.popleft()
            if item[0] is None:  # a refusal: the last thing this connection says
                self._answer_refusal(*item[1:])
                return
            self._dispatch(*item)
        if not queue and not self.write_paused and not self.closed:
            self._resume_reading()

    def _finish(
        self, result: Response, method: str, path: str, keep_alive: bool, start: float
    ) -> None:
        now = _now()
        endpoint = "infer" if path.endswith("/infer") else path.split("?", 1)[0]
        self.app.metrics.request(
            endpoint if endpoint in _ENDPOINTS else "other", result[0], now - start
        )
        self.served += 1
        close = not keep_alive or self.eof or self.listener.draining
        self._send(result, close, method != "HEAD")
        if close:
            self.queue.clear()  # what was sent after a request that closes is not answered
            self._linger()
        elif self.phase == _WAIT and not self.busy and not self.queue:
            self.phase = _IDLE
            self.deadline = now + self.options.keepalive_timeout

    def _send(self, result: Response, close: bool, body: bool = True) -> None:
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            return
        status, content_type, payload = result[0], result[1], result[2]
        extra = result[3] if len(result) == 4 else b""
        if status == 204:
            head = b"HTTP/1.1 204 No Content\r\n%s%s" % (
                b"Connection: close\r\n" if close else b"",
                extra,
            )
            transport.write(head + self.listener.date + b"\r\n")
            return
        key = (status, content_type, close)
        prefix = self.listener.heads.get(key)
        if prefix is None:
            prefix = self.listener.heads[key] = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                + ("Connection: close\r\n" if close else "")
                + f"Content-Type: {content_type}\r\nContent-Length: "
            ).encode("latin-1")
        transport.write(
            b"%s%d\r\n%s%s\r\n%s"
            % (prefix, len(payload), extra, self.listener.date, payload if body else b"")
        )

    # --- refusing and closing ----------------------------------------------------------------

    def _refuse(self, status: int, message: str, extra: bytes = b"", stop: bool = True) -> None:
        """Answer *status* once the requests before this one are answered, then close.

        Inside a parser callback (*stop*), also stop the parser.
        """
        if not self.done:
            self.done = True
            self.deadline = 0.0
            self.queue.append((None, status, message, extra))
            self._pause_reading()
            self._process()
        if stop:
            raise HttpError(status, message)

    def _answer_refusal(self, status: int, message: str, extra: bytes = b"") -> None:
        self.done = True
        self.app.metrics.request("http", status, 0.0)
        self._send((status, JSON, dumps({"error": message}), extra), close=True)
        self._linger()

    def _linger(self) -> None:
        """Shut the write side once the response is out; read and drop what still comes."""
        self.done = True
        self.phase = _LINGER
        self.deadline = _now() + _LINGER_SECONDS
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._resume_reading()

    def _drop(self, size: int) -> None:
        self.dropped += size
        if self.dropped > max(self.options.max_body_bytes, 1 << 20):
            self.close()

    def check(self, now: float) -> None:
        """Act on a passed deadline (the listener's sweep calls this)."""
        if self.send_deadline and now > self.send_deadline:
            self.abort()  # the client stopped reading its responses
        elif self.deadline and now > self.deadline:
            if self.phase in (_HEAD, _BODY):
                part = "headers" if self.phase == _HEAD else "body"
                self._refuse(408, f"the request's {part} did not arrive in time", stop=False)
            else:
                self.close()

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = True
            if self.phase != _LINGER:
                self.deadline = 0.0  # the client waits for us now
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.read_paused or self.write_paused or self.transport is None or self.closed:
            return
        self.read_paused = False
        timeouts = {_HEAD: self.options.header_timeout, _BODY: self.options.body_timeout}
        if self.phase in timeouts and not self.done:
            self.deadline = _now() + timeouts[self.phase]
        self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
