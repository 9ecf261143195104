"""Graceful shutdown under load: SIGTERM to a server that a load generator keeps busy.

Readiness fails at once, every request accepted before that is answered (queued ones too),
connections are refused after the drain period, and the process exits with status 0.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raw_http import Client, exchange, request, serving_process

INFER = "/v2/models/tiny/infer"
BODY = json.dumps(
    {"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": [0.5] * 8}]}
).encode()


@dataclass(frozen=True)
class Sent:
    at: float  # when the request was written
    outcome: str  # "200", another status, "refused" (could not connect) or an error


def _worker(address: tuple[str, int], stop: threading.Event, log: list[Sent]) -> None:
    """Keep-alive requests in a loop; reconnect when the server closes; stop when refused."""
    client: Client | None = None
    while not stop.is_set():
        if client is None:
            try:
                client = Client(address, timeout=15)
            except ConnectionRefusedError:
                log.append(Sent(time.monotonic(), "refused"))
                return
            except OSError as exc:
                log.append(Sent(time.monotonic(), f"connect: {exc}"))
                return
        at = time.monotonic()
        try:
            client.send(request("POST", INFER, BODY))
            answer = client.read(len(client.answer.responses) + 1)
            status = answer.responses[-1][0] if len(answer.responses) else None
            outcome = str(status) if status is not None else "closed without an answer"
            closing = answer.closed or answer.responses[-1][1].get("connection") == "close"
        except OSError as exc:
            outcome, closing = f"error: {exc}", True
        log.append(Sent(at, outcome))
        if closing:
            client.close()
            client = None
    if client is not None:
        client.close()


def _readiness(address: tuple[str, int], stop: threading.Event, dropped: list[float]) -> None:
    """Poll readiness; record when the first 503 came back."""
    while not stop.is_set() and not dropped:
        try:
            answer = exchange(address, request("GET", "/v2/health/ready"), expect=1)
        except OSError:
            return
        if answer.statuses == [503]:
            dropped.append(time.monotonic())
        time.sleep(0.01)


def test_sigterm_under_load_fails_no_accepted_request(tiny_template: Path) -> None:
    args = ("--drain-seconds", "3", "--shutdown-timeout", "15", "--batch-delay-ms", "50")
    with serving_process(tiny_template / "model.onnx", "tiny", *args) as server:
        stop = threading.Event()
        log: list[Any] = []
        dropped: list[Any] = []
        workers = [
            threading.Thread(target=_worker, args=(server.address, stop, log)) for _ in range(8)
        ]
        poller = threading.Thread(target=_readiness, args=(server.address, stop, dropped))
        for thread in (*workers, poller):
            thread.start()
        time.sleep(1.5)
        term = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(30)
        stop.set()
        for thread in (*workers, poller):
            thread.join(30)
        output = server.process.stdout.read() if server.process.stdout else ""
    assert code == 0, output
    assert dropped, "readiness never failed"
    assert term < dropped[0] < term + 2, "readiness did not fail at once"
    before = [s for s in log if s.at < dropped[0]]
    failed = [s for s in before if s.outcome != "200"]
    assert len(before) > 20
    assert not failed, failed[:5]
    in_flight = [s for s in before if s.at > term - 0.2]
    assert in_flight, "no request was in flight when SIGTERM came"
    during = [s for s in log if dropped[0] <= s.at < term + 1.5]  # well inside the 3 s drain
    assert during
    assert all(s.outcome == "200" for s in during)
    assert any(s.outcome == "refused" for s in log)  # after it, connecting is refused
    odd = [s for s in log if s.outcome not in ("200", "refused", "closed without an answer")]
    assert not odd, odd[:5]
    assert "draining" in output
    assert "stopped" in output


def test_queued_requests_finish_after_the_listener_closed(tiny_template: Path) -> None:
    """A request queued in a batch that runs 5 s later: SIGTERM, the drain period (0.5 s) ends,
    new connections are refused, and the queued request is still answered with its predictions."""
    args = ("--drain-seconds", "0.5", "--batch-delay-ms", "5000")
    with serving_process(tiny_template / "model.onnx", "tiny", *args) as server:
        client = Client(server.address, timeout=30)
        client.send(request("POST", INFER, BODY))
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        refused = False
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and not refused:
            try:
                socket.create_connection(server.address, timeout=1).close()
            except ConnectionRefusedError:
                refused = server.process.poll() is None  # refused while the process still runs
            time.sleep(0.05)
        answer = client.read(1)
        client.close()
        code = server.process.wait(30)
    assert refused, "new connections were still accepted after the drain period"
    assert answer.statuses == [200]
    assert answer.responses[0][1]["connection"] == "close"
    outputs = json.loads(answer.responses[0][2])["outputs"]
    assert outputs[0]["shape"] == [2]
    assert code == 0
