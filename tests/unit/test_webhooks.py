"""Webhook delivery against servers on 127.0.0.1: redirects, Retry-After, jitter, idempotency."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_mlops.monitor.triggers import (
    Trigger,
    TriggerError,
    deliver,
    failed,
    post_json,
    stamped,
)


class Server:
    """A scripted HTTP server: *answer(handler, method, path, body)* -> (status, headers, body)."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                server.requests.append((method, self.path, dict(self.headers), body))
                status, headers, payload = answer(server, method, self.path, body)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                self._serve("POST")

            def do_GET(self) -> None:
                self._serve("GET")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _quiet(line: str) -> None:
    pass


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(code):
    with Server(lambda s, m, p, b: (204, {}, b"")) as elsewhere:
        target = f"{elsewhere.base}/steal"
        expected = rf"redirect \({code}\) to {target}: not followed"
        with (
            Server(lambda s, m, p, b: (code, {"Location": target}, b"")) as hook,
            pytest.raises(TriggerError, match=expected),
        ):
            post_json(
                f"{hook.base}/hook",
                {"x": 1},
                {"Authorization": "Bearer s3cret"},
                retries=2,
                backoff_s=0.0,
                log=_quiet,
            )
    assert len(hook.requests) == 1  # not retried either
    assert elsewhere.requests == []


def test_retry_after_as_an_http_date_is_honoured():
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    stamp = email.utils.format_datetime(when, usegmt=True)
    answers = iter([(503, {"Retry-After": stamp}, b""), (204, {}, b"")])
    waits: list[float] = []
    with Server(lambda s, m, p, b: next(answers)) as hook:
        assert (
            post_json(
                f"{hook.base}/h", {}, {}, retries=1, backoff_s=0.01, log=_quiet, sleep=waits.append
            )
            == 204
        )
    assert len(waits) == 1
    assert 25.0 <= waits[0] <= 30.0


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("-3", 0.0), ("1e9", 60.0)])
def test_retry_after_in_seconds_is_bounded(header, expected):
    answers = iter([(429, {"Retry-After": header}, b""), (204, {}, b"")])
    waits: list[float] = []
    with Server(lambda s, m, p, b: next(answers)) as hook:
        post_json(f"{hook.base}/h", {}, {}, retries=1, log=_quiet, sleep=waits.append)
    assert waits == [expected]


def test_backoff_is_jittered_and_exponential():
    def run(seed: int) -> list[float]:
        waits: list[float] = []
        with Server(lambda s, m, p, b: (500, {}, b"")) as hook, pytest.raises(TriggerError):
            post_json(
                f"{hook.base}/h",
                {},
                {},
                retries=4,
                backoff_s=1.0,
                log=_quiet,
                sleep=waits.append,
                rng=random.Random(seed),
            )
        return waits

    first, second = run(1), run(2)
    for waits in (first, second):
        assert [1.0 * 2**k * 0.5 <= w <= 1.0 * 2**k for k, w in enumerate(waits)] == [True] * 4
    assert first != second  # two monitors failing together do not retry in lockstep


def _github(*, lose_first_answer: bool, runs_status: int = 200):
    """A fake GitHub: dispatches start runs; the first dispatch's answer can be held back."""
    runs: list[str] = []

    def answer(server: Server, method: str, path: str, body: Any):
        if method == "POST" and path.endswith("/dispatches"):
            runs.append(body["ref"])
            if lose_first_answer and len(runs) == 1:
                server.release.wait(30)  # the client times out meanwhile
            return 204, {}, b""
        if method == "GET" and "/runs?" in path:
            if runs_status != 200:
                return runs_status, {}, b""
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "total_count": len(runs),
                        "workflow_runs": [{"id": i} for i in range(len(runs))],
                    }
                ).encode(),
            )
        return 404, {}, b""

    return answer, runs


def _dispatch(base: str) -> Trigger:
    url = f"{base}/repos/o/r/actions/workflows/retrain.yml/dispatches"
    return stamped(Trigger("webhook", url, {"status": "failed"}, webhook_format="github"))


def test_a_dispatch_whose_answer_was_lost_is_not_sent_twice():
    answer, runs = _github(lose_first_answer=True)
    lines: list[str] = []
    with Server(answer) as github:
        deliver(
            _dispatch(github.base),
            retries=3,
            timeout_s=0.3,
            backoff_s=0.0,
            log=lines.append,
            sleep=lambda s: None,
        )
        asked = [p for m, p, _, _ in github.requests if m == "GET"]
    assert runs == ["main"]  # one workflow run
    assert len(asked) == 1
    assert "event=workflow_dispatch" in asked[0]
    assert "created=%3E%3D" in asked[0]
    assert any("had taken effect before its answer was lost" in line for line in lines)


def test_a_generic_hook_is_retried_after_a_timeout_with_the_same_trigger_id():
    seen: list[str] = []

    def answer(server: Server, method: str, path: str, body: Any):
        seen.append(body["id"])
        if len(seen) == 1:
            server.release.wait(30)
        return 204, {}, b""

    with Server(answer) as hook:
        trigger = stamped(Trigger("webhook", f"{hook.base}/h", {"status": "failed"}))
        deliver(trigger, retries=2, timeout_s=0.3, backoff_s=0.0, log=_quiet, sleep=lambda s: None)
    assert len(seen) == 2
    assert len(set(seen)) == 1


def test_when_github_cannot_be_asked_the_dispatch_is_kept_and_asked_about_first_next_time():
    answer, runs = _github(lose_first_answer=True, runs_status=502)
    with Server(answer) as github:
        trigger = _dispatch(github.base)
        with pytest.raises(TriggerError, match="could not be asked whether it did") as caught:
            deliver(
                trigger, retries=3, timeout_s=0.3, backoff_s=0.0, log=_quiet, sleep=lambda s: None
            )
    assert runs == ["main"]
    pending = failed(trigger, str(caught.value))
    assert pending.sent_at == trigger.sent_at
    assert pending.attempts == 1
    # next run: GitHub answers again, shows the run, and nothing is dispatched
    answer, runs = _github(lose_first_answer=False)
    runs.append("main")  # the run the lost dispatch started
    with Server(answer) as github:
        pending = Trigger.from_dict({**pending.to_dict(), "target": _dispatch(github.base).target})
        deliver(pending, retries=1, timeout_s=2.0, backoff_s=0.0, log=_quiet)
        posts = [p for m, p, _, _ in github.requests if m == "POST"]
    assert posts == []
    assert runs == ["main"]
