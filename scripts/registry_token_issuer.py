"""A small token issuer for distribution's ``auth: token``, for the tests (TLS, 127.0.0.1 only).

It implements the two ways a client gets a registry token:

* ``GET /token?service=S&scope=repository:NAME:pull,push`` with HTTP basic credentials (the
  docker token flow), answered ``{"token", "access_token", "expires_in", "issued_at"}``;
* ``POST /token`` (OAuth2): ``grant_type=password`` (with ``access_type=offline`` it also hands
  out a refresh token, what ``docker login`` keeps as ``identitytoken``) or
  ``grant_type=refresh_token``.

Tokens are JWTs signed (RS256) with the test key, whose certificate goes in the ``x5c`` header;
the registry trusts the test CA that signed it. Users and what they may do:

* ``mlops`` (``MLOPS_TEST_REGISTRY_PASSWORD``): pull and push;
* ``reader`` (``MLOPS_TEST_REGISTRY_READER_PASSWORD``): pull only;
* ``stale`` (the ``mlops`` password): pull and push, but every other token it gets for the same
  repositories has already expired, the first one too (a clock-skewed issuer: the client must fetch a
  new token when the registry says 401);
* ``expired`` (the ``mlops`` password): every token has expired.

Anonymous requests get a token with no access. ``GET /stats`` counts the tokens issued per user.
Run: ``python registry_token_issuer.py --port P --pki DIR --service S --issuer I``.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

LIFETIME = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, pki: Path, service: str, issuer: str) -> None:
        env = dict(
            line.split("=", 1) for line in (pki / "credentials.env").read_text().splitlines()
        )
        writer = env["MLOPS_TEST_REGISTRY_PASSWORD"]
        self.users: dict[str, tuple[str, set[str]]] = {
            env["MLOPS_TEST_REGISTRY_USER"]: (writer, {"pull", "push", "delete"}),
            env["MLOPS_TEST_REGISTRY_READER"]: (
                env["MLOPS_TEST_REGISTRY_READER_PASSWORD"],
                {"pull"},
            ),
            "stale": (writer, {"pull", "push", "delete"}),
            "expired": (writer, {"pull", "push", "delete"}),
        }
        self.key = serialization.load_pem_private_key((pki / "token.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((pki / "token.pem").read_bytes())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.service, self.issuer = service, issuer
        self.refresh: dict[str, str] = {}
        self.issued: dict[str, int] = {}
        self.asked: dict[str, int] = {}
        self.lock = threading.Lock()

    def check(self, user: str, password: str) -> bool:
        known = self.users.get(user)
        return known is not None and secrets.compare_digest(known[0], password)

    def token(self, user: str | None, scopes: list[str]) -> dict[str, Any]:
        allowed = self.users[user][1] if user else set()
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            granted = sorted(set(parts[2].split(",")) & allowed)
            access.append({"type": "repository", "name": parts[1], "actions": granted})
        key = f"{user or ''} {' '.join(sorted({a['name'] for a in access}))}"
        with self.lock:
            self.issued[user or ""] = self.issued.get(user or "", 0) + 1
            count = self.asked[key] = self.asked.get(key, 0) + 1
        now = int(time.time())
        expired = user == "expired" or (user == "stale" and count % 2 == 1)
        exp = now - 600 if expired else now + LIFETIME
        claims = {
            "iss": self.issuer, "sub": user or "", "aud": self.service, "exp": exp,
            "nbf": now - 700 if expired else now - 10, "iat": now, "jti": secrets.token_hex(8),
            "access": access,
        }  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
        token = f"{signing_input}.{b64url(signature)}"
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": LIFETIME, "issued_at": issued}


class Handler(BaseHTTPRequestHandler):
    server_version = "pytest-mlops-token-issuer"
    timeout = 30
    issuer: Issuer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, message: str) -> None:
        self.answer(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
            {"WWW-Authenticate": 'Basic realm="pytest-mlops-token-issuer"'},
        )

    def basic_user(self) -> tuple[str | None, bool]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, False
        return user, self.issuer.check(user, password)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/stats":
            self.answer(200, dict(self.issuer.issued))
            return
        if url.path != "/token":
            self.answer(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            return
        user, ok = self.basic_user()
        if not ok:
            self.refuse("wrong user name or password")
            return
        if query.get("service", [""])[0] != self.issuer.service:
            self.answer(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
            return
        self.answer(200, self.issuer.token(user, query.get("scope", [])))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(min(length, 65536)).decode())
        field = lambda name: form.get(name, [""])[0]  # noqa: E731
        if self.path.split("?")[0] != "/token" or field("service") != self.issuer.service:
            self.answer(400, {"error": "invalid_request"})
            return
        scopes = " ".join(form.get("scope", [])).split()
        if field("grant_type") == "password":
            user = field("username")
            if not self.issuer.check(user, field("password")):
                self.answer(401, {"error": "invalid_grant"})
                return
        elif field("grant_type") == "refresh_token":
            found = self.issuer.refresh.get(field("refresh_token"))
            if found is None:
                self.answer(401, {"error": "invalid_grant"})
                return
            user = found
        else:
            self.answer(400, {"error": "unsupported_grant_type"})
            return
        body = self.issuer.token(user, scopes)
        body.pop("token")
        if field("access_type") == "offline":
            refresh = secrets.token_urlsafe(24)
            self.issuer.refresh[refresh] = user
            body["refresh_token"] = refresh
        self.answer(200, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pki", type=Path, required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--issuer", required=True)
    args = parser.parse_args()
    Handler.issuer = Issuer(args.pki, args.service, args.issuer)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.pki / "server.pem", args.pki / "server.key")
    # the handshake happens in the request's thread, so a silent client blocks nobody
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
