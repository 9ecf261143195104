"""The server against a hostile client, over raw sockets: every request gets its exact status (or
a close), a refused request never lets a second one through, and the server keeps answering
``/v2/health/live`` after each case.

The server runs in its own process (``python -m pytest_mlops.deploy.serving``) with small limits
and short timeouts, so the cases that wait for a timeout take about a second.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from raw_http import Client, RunningServer, exchange, live, request, serving_process

INFER = "/v2/models/tiny/infer"
ROW = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0.5, -1.0, 2.0, 0.0]}
BODY = json.dumps({"inputs": [ROW]}).encode()
LIMITS = (
    "--max-body-bytes", "65536", "--max-header-bytes", "4096", "--max-headers", "20",
    "--header-timeout", "1", "--body-timeout", "1", "--keepalive-timeout", "1",
    "--send-timeout", "2", "--max-connections", "24", "--drain-seconds", "0",
)  # fmt: skip


@pytest.fixture(scope="module")
def server(tiny_template: Path) -> Iterator[RunningServer]:
    with serving_process(tiny_template / "model.onnx", "tiny", *LIMITS) as running:
        yield running


def infer_with(**changes: object) -> bytes:
    return request("POST", INFER, json.dumps({"inputs": [{**ROW, **changes}]}).encode())


def raw_infer(data: bytes) -> bytes:
    return request("POST", INFER, data)


def chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


H = "Host: t\r\n"
POST = f"POST {INFER} HTTP/1.1\r\n"

# (case, raw request, the statuses answered in order, whether the server then closes)
CASES: list[tuple[str, bytes, list[int], bool]] = [
    # framing: what smuggles a second request past a proxy
    ("two Content-Length, 0 then 5", f"{POST}{H}Content-Length: 0\r\nContent-Length: 5\r\n\r\nGET /".encode(), [400], True),
    ("Content-Length +5", f"{POST}{H}Content-Length: +5\r\n\r\nhello".encode(), [400], True),
    ("Content-Length 1_0", f"{POST}{H}Content-Length: 1_0\r\n\r\nhelloworld".encode(), [400], True),
    ("Content-Length -1", f"{POST}{H}Content-Length: -1\r\n\r\n".encode(), [400], True),
    ("Content-Length 0x5", f"{POST}{H}Content-Length: 0x5\r\n\r\nhello".encode(), [400], True),
    ("Content-Length list 5, 5", f"{POST}{H}Content-Length: 5, 5\r\n\r\nhello".encode(), [400], True),
    ("whitespace before the colon", f"{POST}{H}Content-Length : 5\r\n\r\nhello".encode(), [400], True),
    ("bare LF folds the next line", f"{POST}Host: t\nContent-Length: 5\r\n\r\nhello".encode(), [400], True),
    ("obsolete line folding", f"GET /v2 HTTP/1.1\r\n{H}X-A: a\r\n Content-Length: 5\r\n\r\nhello".encode(), [400], True),
    ("Transfer-Encoding gzip", f"{POST}{H}Transfer-Encoding: gzip\r\n\r\nhello".encode(), [501], True),
    ("Transfer-Encoding gzip, chunked", f"{POST}{H}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode(), [501], True),
    ("Transfer-Encoding xchunked", f"{POST}{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n".encode(), [501], True),
    ("Content-Length with chunked", f"{POST}{H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(), [400], True),
    ("chunked on HTTP/1.0", f"POST {INFER} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(), [400], True),
    ("HTTP/9.9", f"GET /v2 HTTP/9.9\r\n{H}\r\n".encode(), [505], True),
    ("HTTP/2.0 request line", f"GET /v2 HTTP/2.0\r\n{H}\r\n".encode(), [505], True),
    ("HTTP/1.1 without Host", b"GET /v2 HTTP/1.1\r\n\r\n", [400], True),
    ("two Host headers", f"GET /v2 HTTP/1.1\r\n{H}{H}\r\n".encode(), [400], True),
    ("NUL in a header value", f"GET /v2 HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n".encode(), [400], True),
    ("space in a header name", f"GET /v2 HTTP/1.1\r\n{H}X A: b\r\n\r\n".encode(), [400], True),
    ("space in the target", f"GET /v2 x HTTP/1.1\r\n{H}\r\n".encode(), [400], True),
    ("bad chunk size", f"{POST}{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".encode(), [400], True),
    ("chunk without its CRLF", f"{POST}{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n".encode(), [400], True),
    # methods
    ("unknown method", f"FOO /v2 HTTP/1.1\r\n{H}\r\n".encode(), [501], True),
    ("CONNECT", f"CONNECT example.com:443 HTTP/1.1\r\n{H}\r\n".encode(), [405], True),
    ("an Upgrade with a body", f"{POST}{H}Connection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello".encode(), [400], True),
    ("an Upgrade without a body is answered over 1.1", f"GET /v2/health/live HTTP/1.1\r\n{H}Connection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /v2 HTTP/1.1\r\n{H}\r\n".encode(), [200], True),
    ("DELETE on infer", request("DELETE", INFER), [405], False),
    ("GET on infer", request("GET", INFER), [405], False),
    ("POST on a GET route", request("POST", "/v2/health/ready", b"{}"), [405], False),
    ("OPTIONS on infer", request("OPTIONS", INFER), [204], False),
    ("unknown route", request("GET", "/admin"), [404], False),
    ("unknown model", request("POST", "/v2/models/other/infer", BODY), [404], False),
    ("unknown version", request("POST", "/v2/models/tiny/versions/7/infer", BODY), [404], False),
    # limits
    ("a header over max_header_bytes", f"GET /v2 HTTP/1.1\r\n{H}X-Big: {'a' * 5000}\r\n\r\n".encode(), [431], True),
    ("more headers than max_headers", (f"GET /v2 HTTP/1.1\r\n{H}" + "".join(f"X-{i}: 1\r\n" for i in range(30)) + "\r\n").encode(), [431], True),
    ("a URL over max_header_bytes", f"GET /{'a' * 5000} HTTP/1.1\r\n{H}\r\n".encode(), [414], True),
    ("1 GiB declared body", f"{POST}{H}Content-Length: {1 << 30}\r\n\r\n".encode() + b"[" * 4096, [413], True),
    ("chunked body over max_body_bytes", f"{POST}{H}Transfer-Encoding: chunked\r\n\r\n".encode() + chunked(b" " * 70000, 8192), [413], True),
    ("Expect: something else", f"{POST}{H}Expect: 200-ok\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY, [417], True),
    # bodies the model must not see
    ("malformed JSON", raw_infer(b'{"inputs": [}'), [400], False),
    ("JSON nested 10,000 deep", raw_infer(b"[" * 10000 + b"]" * 10000), [400], False),
    ("a JSON array, not an object", raw_infer(b"[1, 2]"), [400], False),
    ("wrong shape", infer_with(shape=[1, 3], data=[1.0, 2.0, 3.0]), [400], False),
    ("wrong datatype", infer_with(datatype="INT64", data=[1, 2, 3, 4]), [400], False),
    ("strings in the data", infer_with(data=["a", "b", "c", "d"]), [400], False),
    ("NaN in the data", raw_infer(BODY.replace(b"0.5", b"NaN")), [400], False),
    ("Infinity in the data", raw_infer(BODY.replace(b"0.5", b"Infinity")), [400], False),
    ("1e999 in the data", raw_infer(BODY.replace(b"0.5", b"1e999")), [400], False),
    ("1e39 does not fit FP32", raw_infer(BODY.replace(b"0.5", b"1e39")), [400], False),
    ("more values than the shape", infer_with(data=[1.0] * 5), [400], False),
    ("a negative batch size", infer_with(shape=[-1, 4]), [400], False),
    ("a huge declared batch", infer_with(shape=[10**12, 4]), [400], False),
    # what a well-behaved client does
    ("chunked body", f"{POST}{H}Transfer-Encoding: chunked\r\n\r\n".encode() + chunked(BODY, 7), [200], False),
    ("chunked body with an extension and a trailer", f"{POST}{H}Transfer-Encoding: chunked\r\n\r\n{len(BODY):x};x=y\r\n".encode() + BODY + b"\r\n0\r\nX-T: 1\r\n\r\n", [200], False),
    ("pipelined requests answered in order", request("POST", INFER, BODY) + request("GET", "/v2/health/ready") + request("POST", INFER, BODY), [200, 200, 200], False),
    ("a good request, then a smuggled one: the second is refused", request("POST", INFER, BODY) + f"{POST}{H}Content-Length: 0\r\nContent-Length: 5\r\n\r\n".encode(), [200, 400], True),
    ("Connection: close", request("GET", "/v2/health/live", headers="Connection: close\r\n") + request("GET", "/v2"), [200], True),
    ("HTTP/1.0 closes after the answer", b"GET /v2/health/live HTTP/1.0\r\n\r\n", [200], True),
    ("HEAD has no body", request("HEAD", "/v2/health/ready"), [200], False),
    ("Expect: 100-continue", f"{POST}{H}Expect: 100-continue\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY, [100, 200], False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "statuses", "closes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_raw_request_gets_its_exact_answer(
    server: RunningServer, raw: bytes, statuses: list[int], closes: bool
) -> None:
    head_only = [raw.startswith(b"HEAD")]
    answer = exchange(
        server.address, raw, expect=len([s for s in statuses if s != 100]), head_only=head_only
    )
    assert answer.statuses == statuses, answer.responses
    assert answer.closed is closes, answer.responses
    assert not answer.reset
    for status, headers, body in answer.responses:
        if status >= 400:
            assert json.loads(body)["error"], body  # every refusal says why
        if status == 405 or status == 204:
            assert "allow" in headers
    assert live(server.address), "the server stopped answering /v2/health/live"


def test_there_are_at_least_thirty_raw_request_cases() -> None:
    assert len(CASES) >= 30


def test_a_body_over_the_limit_sent_in_full_gets_a_413_not_a_reset(server: RunningServer) -> None:
    """A client that writes its whole body before reading (http.client, requests) must read the
    413: the server reads and drops the rest instead of closing on unread data."""
    body = b" " * 200_000
    client = Client(server.address)
    client.send(request("POST", INFER, body))
    answer = client.read_to_close()
    client.close()
    assert answer.statuses == [413]
    assert not answer.reset
    assert "limit is 65536" in json.loads(answer.responses[0][2])["error"]
    assert live(server.address)


def test_slowloris_gets_a_408_before_its_headers_are_in(server: RunningServer) -> None:
    client = Client(server.address)
    sent = b""
    for byte in b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Slow: 1234567890\r\n\r\n":
        try:
            client.send(bytes([byte]))
        except OSError:
            break
        sent += bytes([byte])
        time.sleep(0.1)
        if client.closes_within(0.001):
            break
    answer = client.read_to_close()
    client.close()
    assert answer.statuses == [408]
    assert answer.closed
    assert not sent.endswith(b"\r\n\r\n")  # cut off after header_timeout (1 s), not 6.5 s
    assert live(server.address)


def test_a_body_that_trickles_gets_a_408(server: RunningServer) -> None:
    client = Client(server.address)
    client.send(f"{POST}{H}Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:5])
    answer = client.read_to_close()
    client.close()
    assert answer.statuses == [408]
    assert live(server.address)


def test_idle_connections_are_closed(server: RunningServer) -> None:
    silent = Client(server.address)  # connects, never sends: closed after the header timeout
    kept = Client(server.address)  # one request, then idle: closed after the keep-alive timeout
    kept.send(request("GET", "/v2/health/live"))
    assert kept.read(1).statuses == [200]
    assert silent.closes_within(5)
    assert kept.closes_within(5)
    assert silent.answer.statuses == []
    assert kept.answer.statuses == [200]
    silent.close()
    kept.close()


def test_a_client_that_never_reads_is_cut_off(server: RunningServer) -> None:
    """Pipelined requests whose answers are never read: the server stops reading once its send
    buffer is full (the client's sends block), and aborts the connection after send_timeout."""
    sock = socket.create_connection(server.address, timeout=1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    padding = f"X-Pad: {'p' * 900}\r\n"
    # 64 MiB of requests, each answered by a few KiB: far more than the socket buffers hold
    pipelined = request("GET", "/openapi.json", headers=padding) * 70_000
    sent, blocked = 0, False
    deadline = time.monotonic() + 20
    while sent < len(pipelined) and time.monotonic() < deadline:
        try:
            sent += sock.send(pipelined[sent : sent + 65536])
        except TimeoutError:
            blocked = True
            break
        except OSError:
            break
    assert blocked or sent < len(pipelined), "the server read everything without backpressure"
    assert live(server.address)  # others are served meanwhile
    cut = False
    sock.settimeout(0.5)
    while time.monotonic() < deadline and not cut:
        try:
            sock.send(b"x")
        except TimeoutError:
            continue
        except OSError:
            cut = True
        time.sleep(0.2)
    sock.close()
    assert cut, "the connection was never cut"
    assert live(server.address)


def test_connections_over_the_limit_get_a_503_with_retry_after(server: RunningServer) -> None:
    held = [Client(server.address) for _ in range(24)]
    try:
        for client in held:  # each answered once: all 24 are open and counted
            client.send(request("GET", "/v2/health/live"))
            assert client.read(1).statuses == [200]
        extra = Client(server.address)
        answer = extra.read_to_close()
        extra.close()
        assert answer.statuses == [503]
        assert not answer.reset
        assert answer.responses[0][1]["retry-after"] == "1"
    finally:
        for client in held:
            client.close()
    deadline = time.monotonic() + 10
    while not live(server.address) and time.monotonic() < deadline:
        time.sleep(0.1)  # the server sees the closes
    assert live(server.address)


def test_requests_over_max_in_flight_are_shed_with_a_503(tiny_template: Path) -> None:
    """With batches that wait 3 s and max_in_flight=2, four concurrent requests: two are queued
    and answered, two get a 503 with Retry-After at once."""
    args = ("--batch-delay-ms", "3000", "--max-in-flight", "2", "--drain-seconds", "0")
    with serving_process(tiny_template / "model.onnx", "tiny", *args) as running:
        results: list[tuple[int, float]] = []
        lock = threading.Lock()

        def call() -> None:
            started = time.monotonic()
            answer = exchange(running.address, request("POST", INFER, BODY), expect=1)
            with lock:
                results.append((answer.statuses[0], time.monotonic() - started))
                if answer.statuses[0] == 503:
                    assert answer.responses[0][1]["retry-after"] == "1"

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
    assert sorted(s for s, _ in results) == [200, 200, 503, 503]
    assert all(seconds < 2.5 for status, seconds in results if status == 503)  # shed, not queued


def test_liveness_after_all_of_it(server: RunningServer) -> None:
    assert live(server.address)
    assert server.process.poll() is None
