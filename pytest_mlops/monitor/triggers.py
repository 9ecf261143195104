"""What the monitor does on drift: run a command, or POST to a webhook; never lose a trigger.

A trigger that cannot be delivered (the command fails, the webhook keeps failing after its
retries) is written to a pending file in the monitor's state directory, and the next run delivers
it first. Secrets are never written there: a token is read from its environment variable when the
trigger is sent.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import email.utils
import json
import os
import random
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pytest_mlops._files import write_atomic
from pytest_mlops.errors import ConfigError, MlopsError, OutputError

__all__ = [
    "PendingStore",
    "Trigger",
    "TriggerError",
    "WebhookFormat",
    "deliver",
    "github_dispatch_confirmer",
    "post_json",
    "stamped",
    "webhook_request",
]

WebhookFormat = Literal["generic", "github", "gitlab"]
WEBHOOK_FORMATS: tuple[WebhookFormat, ...] = ("generic", "github", "gitlab")

#: statuses worth retrying: the server is busy or failing, not refusing the request
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class TriggerError(MlopsError):
    """A retraining trigger could not be delivered (it is kept as pending)."""


@dataclass(frozen=True)
class Trigger:
    """One retraining trigger: a command to run or a webhook to call, with its drift summary.

    Parameters
    ----------
    kind:
        ``"command"`` or ``"webhook"``.
    target:
        The command line, or the webhook URL.
    summary:
        What was detected: ``status``, ``message``, ``drifted_columns``, ``report``...
    webhook_format, token_env, ref:
        For webhooks: the body's shape, the variable holding the token, the git ref to run on.
    """

    kind: Literal["command", "webhook"]
    target: str
    summary: Mapping[str, Any]
    webhook_format: WebhookFormat = "generic"
    token_env: str | None = None
    ref: str = "main"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    attempts: int = 0
    last_error: str = ""
    sent_at: str = ""  # when it was first sent: a lost answer is looked for from then on

    @property
    def describe(self) -> str:
        return f"command {self.target!r}" if self.kind == "command" else f"webhook {self.target}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


# --- delivery ------------------------------------------------------------------------------------


def deliver(
    trigger: Trigger,
    *,
    retries: int = 4,
    timeout_s: float = 10.0,
    backoff_s: float = 1.0,
    command_timeout_s: float | None = None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Deliver *trigger* once (a command) or with retries (a webhook); raise TriggerError."""
    if trigger.kind == "command":
        run_command(trigger, timeout_s=command_timeout_s, log=log)
        return
    url, body, headers = webhook_request(trigger)
    confirm = None
    if trigger.webhook_format == "github":  # a dispatch is not idempotent: look before resending
        confirm = github_dispatch_confirmer(trigger, headers, timeout_s)
    post_json(
        url,
        body,
        headers,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
        log=log,
        sleep=sleep,
        confirm=confirm,
        sent_before=trigger.attempts > 0,
    )


def run_command(
    trigger: Trigger, *, timeout_s: float | None = None, log: Callable[[str], None] = print
) -> None:
    """Run the trigger's command (no shell) with the drift summary in ``MLOPS_DRIFT_*``."""
    try:
        argv = shlex.split(trigger.target)
    except ValueError as exc:
        raise ConfigError(f"--on-drift-run {trigger.target!r}: cannot split it: {exc}") from None
    if not argv:
        raise ConfigError("--on-drift-run: the command is empty")
    summary = trigger.summary
    env = {
        **os.environ,
        "MLOPS_DRIFT_STATUS": str(summary.get("status", "")),
        "MLOPS_DRIFT_MESSAGE": str(summary.get("message", "")),
        "MLOPS_DRIFT_COLUMNS": ",".join(str(c) for c in summary.get("drifted_columns", ())),
        "MLOPS_DRIFT_REPORT": str(summary.get("report") or ""),
        "MLOPS_TRIGGER_ID": trigger.id,
    }
    log(f"monitor: running {argv[0]} (trigger {trigger.id[:8]})")
    try:
        done = subprocess.run(argv, env=env, timeout=timeout_s, check=False)  # noqa: S603 - an argument list, no shell
    except FileNotFoundError:
        raise TriggerError(f"--on-drift-run: the command {argv[0]!r} was not found") from None
    except PermissionError:
        raise TriggerError(f"--on-drift-run: {argv[0]!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise TriggerError(
            f"--on-drift-run {trigger.target!r} did not finish within {timeout_s:g} s"
        ) from None
    if done.returncode != 0:
        raise TriggerError(
            f"--on-drift-run {trigger.target!r} exited with status {done.returncode}"
        )


def webhook_request(trigger: Trigger) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The URL, JSON body and headers of a webhook trigger in its format.

    ``generic``: the drift summary as JSON (with ``id`` for de-duplication). ``github``: a
    ``workflow_dispatch`` body ``{"ref"}`` for ``.../actions/workflows/<file>/dispatches``, with
    ``Authorization: Bearer`` from *token_env*. ``gitlab``: a pipeline-trigger body ``{"token",
    "ref", "variables": {"MLOPS_RETRAIN": "1", ...}}`` for ``.../projects/<id>/trigger/pipeline``.
    """
    token = None
    if trigger.token_env:
        token = os.environ.get(trigger.token_env)
        if not token:
            raise TriggerError(
                f"--webhook-token-env: the environment variable {trigger.token_env!r} is not set"
            )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pytest-mlops-monitor",
        "X-Pytest-Mlops-Trigger": trigger.id,
    }
    summary = dict(trigger.summary)
    body: dict[str, Any]
    if trigger.webhook_format == "github":
        body = {"ref": trigger.ref}
        headers["Accept"] = "application/vnd.github+json"
    elif trigger.webhook_format == "gitlab":
        body = {
            "ref": trigger.ref,
            "variables": {
                "MLOPS_RETRAIN": "1",
                "MLOPS_DRIFT_SUMMARY": str(summary.get("message", ""))[:1000],
                "MLOPS_TRIGGER_ID": trigger.id,
            },
        }
        if token:
            body["token"] = token
            token = None
    else:
        body = {
            "event": "pytest-mlops.drift",
            "id": trigger.id,
            "created": trigger.created,
            **summary,
        }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return trigger.target, body, headers


def post_json(
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    retries: int = 4,
    timeout_s: float = 10.0,
    backoff_s: float = 1.0,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    confirm: Callable[[], bool] | None = None,
    sent_before: bool = False,
    rng: random.Random | None = None,
) -> int:
    """POST *body* as JSON; retry failures and timeouts with jittered exponential backoff.

    A 2xx answer is success. Timeouts, connection errors and 408/425/429/5xx are retried
    *retries* times, waiting ``backoff_s * 2**k`` times a random factor in ``[0.5, 1]`` (at most
    60 s), or what the server's ``Retry-After`` asks (seconds or an HTTP date). Other 4xx
    answers are not retried: the request itself is wrong. Redirects are never followed (the
    body and the token would go to where the answer points).

    A request that timed out or lost its connection may have been received: for a target that
    is not idempotent (a GitHub workflow dispatch), *confirm* is asked before sending it again
    (also before the first attempt when *sent_before*: an earlier run's attempt) and, when it
    says the request took effect, nothing is sent (returns 0).

    Raises
    ------
    TriggerError
        After the last attempt, naming the URL, the attempts and the last error.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--on-drift-webhook: {url!r} is not an http(s) URL")
    data = json.dumps(body).encode("utf-8")
    attempts = retries + 1
    jitter = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
    maybe_sent = sent_before
    last = ""
    for attempt in range(1, attempts + 1):
        if _took_effect(maybe_sent, confirm, url, log):
            return 0
        wait = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S) * (0.5 + jitter.random() / 2)
        outcome = _attempt(url, data, headers, timeout_s)
        if isinstance(outcome, int):
            return outcome
        last, retry_after, ambiguous = outcome
        maybe_sent = maybe_sent or ambiguous
        wait = wait if retry_after is None else retry_after
        if attempt < attempts:
            log(
                f"monitor: POST {url} attempt {attempt}/{attempts} failed ({last}); retry in {wait:.3g} s"
            )
            sleep(wait)
    if _took_effect(maybe_sent, confirm, url, log):
        return 0
    raise TriggerError(f"POST {url} failed after {attempts} attempts; last error: {last}")


def _took_effect(
    maybe_sent: bool, confirm: Callable[[], bool] | None, url: str, log: Callable[[str], None]
) -> bool:
    if not maybe_sent or confirm is None or not confirm():
        return False
    log(f"monitor: POST {url} had taken effect before its answer was lost: not sent again")
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect.

    urllib would re-send the headers (the token) to the new place, for 301/302/303 even as a
    GET to another host.
    """

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _attempt(
    url: str, data: bytes, headers: Mapping[str, str], timeout_s: float
) -> int | tuple[str, float | None, bool]:
    """One POST: the 2xx status, or ``(error, Retry-After in seconds or None, maybe sent)``."""
    request = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")  # noqa: S310 - checked to be http(s)
    try:
        with _OPENER.open(request, timeout=timeout_s) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", errors="replace").strip()
        last = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "?")
            raise TriggerError(
                f"POST {url} was answered with a redirect ({exc.code}) to {where}: not "
                "followed, so that the body and token go nowhere else; configure the final URL"
            ) from None
        if exc.code not in RETRY_STATUSES:
            raise TriggerError(
                f"POST {url} was refused: {last} (not retried: fix the URL, token or body)"
            ) from None
        return last, _retry_after(exc.headers.get("Retry-After")), False
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"timed out after {timeout_s:g} s", None, True
        refused = isinstance(reason, ConnectionRefusedError | socket.gaierror)
        return f"{reason}", None, not refused


def _retry_after(header: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), capped."""
    if header is None:
        return None
    value = header.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        seconds = (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_BACKOFF_S)


def github_dispatch_confirmer(
    trigger: Trigger, headers: Mapping[str, str], timeout_s: float
) -> Callable[[], bool]:
    """Whether a run of the dispatched workflow started since the trigger was first sent.

    Asks ``GET .../actions/workflows/<file>/runs?event=workflow_dispatch&created=>=<time>`` (the
    dispatch URL with ``/runs`` for ``/dispatches``), one minute before the first attempt to
    allow for clock skew. A run another dispatch started in that minute counts as this one:
    one retraining rather than two. When GitHub cannot be asked, a TriggerError says so and
    nothing is sent again (the trigger stays pending; the next run asks first).
    """
    since = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=1)
    if trigger.sent_at:
        since = _dt.datetime.fromisoformat(trigger.sent_at) - _dt.timedelta(minutes=1)

    def confirm() -> bool:
        base = trigger.target.rstrip("/").removesuffix("/dispatches")
        query = urllib.parse.urlencode(
            {"event": "workflow_dispatch", "created": ">=" + since.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )
        ask = {k: v for k, v in headers.items() if k != "Content-Type"}
        request = urllib.request.Request(f"{base}/runs?{query}", headers=ask, method="GET")  # noqa: S310 - checked to be http(s)
        try:
            with _OPENER.open(request, timeout=timeout_s) as answer:
                runs = json.loads(answer.read(1 << 20))
            return int(runs["total_count"]) > 0
        except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError) as exc:
            raise TriggerError(
                f"POST {trigger.target} may have started the workflow (its answer was lost) and "
                f"GitHub could not be asked whether it did ({exc}): not sent again, so that the "
                "workflow does not run twice; kept pending"
            ) from None

    return confirm


# --- pending triggers ----------------------------------------------------------------------------


class PendingStore:
    """Triggers not yet delivered, in ``<state>/pending-triggers.json`` (written atomically)."""

    FILE = "pending-triggers.json"

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / self.FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``<state>/.lock`` so that overlapping runs cannot deliver a trigger twice."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = (self.path.parent / ".lock").open("a")
        except OSError as exc:
            raise MlopsError(
                f"--state: cannot use {str(self.path.parent)!r}: {exc.strerror or exc}"
            ) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise MlopsError(
                    f"another pytest-mlops monitor is running with the state {str(self.path.parent)!r}"
                    "; nothing done (a scheduler should not overlap runs)"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> list[Trigger]:
        """The pending triggers, oldest first; a corrupt file is an error naming it."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise MlopsError(
                f"cannot read the pending triggers {str(self.path)!r}: {exc}"
            ) from None
        try:
            data = json.loads(text)
            return [Trigger.from_dict(t) for t in data["triggers"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MlopsError(
                f"the pending-trigger file {str(self.path)!r} is corrupt ({exc}); fix or delete it "
                "(it lists retraining triggers not yet delivered)"
            ) from None

    def save(self, triggers: list[Trigger]) -> None:
        """Replace the pending list.

        An emptied list is written, not deleted, so a CI cache of the state directory is saved
        with it and never brings back triggers that were delivered since.
        """
        if not triggers and not self.path.exists():
            return
        text = json.dumps({"version": 1, "triggers": [t.to_dict() for t in triggers]}, indent=2)
        try:
            write_atomic(self.path, text, what="the pending triggers")
        except OutputError as exc:
            raise TriggerError(str(exc)) from None


def failed(trigger: Trigger, error: str) -> Trigger:
    """The trigger with one more failed attempt recorded."""
    return replace(trigger, attempts=trigger.attempts + 1, last_error=error)


def stamped(trigger: Trigger) -> Trigger:
    """The trigger with the time it is first sent (kept by later attempts)."""
    if trigger.sent_at:
        return trigger
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return replace(trigger, sent_at=now)
