"""GitLab's REST API, as much of it as the pipeline calls, on 127.0.0.1.

- merge-request notes: ``GET/POST /api/v4/projects/:id/merge_requests/:iid/notes`` and
  ``PUT .../notes/:note_id``, authenticated by the ``PRIVATE-TOKEN`` header;
- the pipeline trigger: ``POST /api/v4/projects/:id/trigger/pipeline`` with ``token``, ``ref`` and
  ``variables`` in a JSON body.

Every request is recorded (method, path, headers, parsed body) for the tests to check. Like GitLab,
a wrong or missing token gets 401 (notes) or 404 (trigger), an unknown path 404, a body that is
not a JSON object 400; bodies over 1 MiB are refused unread.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20
NOTES = re.compile(r"^/api/v4/projects/(\d+)/merge_requests/(\d+)/notes(?:/(\d+))?$")
TRIGGER = re.compile(r"^/api/v4/projects/(\d+)/trigger/pipeline$")


@dataclass(frozen=True)
class Request:
    """One request the API received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class FakeGitlab:
    """The API's state: what was asked, the notes and the triggered pipelines."""

    project_id: str
    notes_token: str
    trigger_token: str
    requests: list[Request] = field(default_factory=list)
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)  # note id -> note
    triggers: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeGitlab:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.handle(self, "GET")

            def do_POST(self) -> None:
                api.handle(self, "POST")

            def do_PUT(self) -> None:
                api.handle(self, "PUT")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.timeout = 10
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/v4"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def calls(self, method: str | None = None, kind: str = "") -> list[Request]:
        """Recorded requests, optionally of one method and with *kind* in the path."""
        return [
            r for r in self.requests if (method is None or r.method == method) and kind in r.path
        ]

    # --- the handler -----------------------------------------------------------------------

    def handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        path, _, query = http.path.partition("?")
        length = int(http.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(http, 413, {"message": "413 Request Entity Too Large"})
        raw = http.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._answer(http, 400, {"message": "400 Bad request - body is not JSON"})
        if raw and not isinstance(body, dict):
            return self._answer(http, 400, {"message": "400 Bad request - not a JSON object"})
        with self.lock:
            headers = {k.lower(): v for k, v in http.headers.items()}  # names are case-insensitive
            self.requests.append(Request(method, path, query, headers, body))
            status, answer = self._route(method, path, http.headers.get("PRIVATE-TOKEN"), body)
        self._answer(http, status, answer)

    def _route(self, method: str, path: str, token: str | None, body: Any) -> tuple[int, Any]:
        if match := NOTES.match(path):
            if match.group(1) != self.project_id:
                return 404, {"message": "404 Project Not Found"}
            if token != self.notes_token:
                return 401, {"message": "401 Unauthorized"}
            return self._notes(method, int(match.group(2)), match.group(3), body)
        if (match := TRIGGER.match(path)) and method == "POST":
            return self._trigger(match.group(1), body)
        return 404, {"message": "404 Not Found"}

    def _notes(self, method: str, iid: int, note_id: str | None, body: Any) -> tuple[int, Any]:
        mine = {k: v for k, v in self.notes.items() if v["noteable_iid"] == iid}
        if method == "GET" and note_id is None:
            return 200, list(mine.values())
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return 400, {"message": "400 Bad request - body is missing"}
        if method == "POST" and note_id is None:
            note = {"id": 100 + len(self.notes), "body": body["body"], "noteable_iid": iid}
            self.notes[note["id"]] = note
            return 201, note
        if method == "PUT" and note_id is not None and int(note_id) in mine:
            mine[int(note_id)]["body"] = body["body"]
            return 200, mine[int(note_id)]
        return 404, {"message": "404 Note Not Found"}

    def _trigger(self, project: str, body: Any) -> tuple[int, Any]:
        if project != self.project_id or not isinstance(body, dict):
            return 404, {"message": "404 Not Found"}
        if body.get("token") != self.trigger_token:
            return 404, {"message": "404 Not Found"}
        variables = body.get("variables") or {}
        if not isinstance(body.get("ref"), str) or not isinstance(variables, dict):
            return 400, {"message": "400 Bad request - ref or variables is invalid"}
        pipeline = {"id": 500 + len(self.triggers), "ref": body["ref"], "status": "created"}
        self.triggers.append({**pipeline, "variables": variables})
        return 201, pipeline

    @staticmethod
    def _answer(http: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)
