"""What the registry clients parse from a server that may be broken or hostile: challenges,
Retry-After, token answers, error bodies, scopes; and what they say about a URL's proxy."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from pytest_mlops.deploy.distribution import _covers, _error_text, _token_of, _with_query
from pytest_mlops.deploy.transport import (
    HttpOptions,
    _retry_after,
    header_params,
    is_loopback,
    proxy_for,
)


def test_challenges_are_parsed_and_junk_is_ignored() -> None:
    scheme, params = header_params(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/credit:pull,push",error="insufficient_scope"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:team/credit:pull,push",
        "error": "insufficient_scope",
    }
    assert header_params('Basic realm="x \\" y"') == ("basic", {"realm": 'x \\" y'})
    assert header_params("") == ("", {})
    assert header_params("Bearer ,,,=,realm") == ("bearer", {})


def test_retry_after_seconds_dates_and_garbage() -> None:
    options = HttpOptions(max_backoff=30.0)
    assert _retry_after("3", options) == 3.0
    assert _retry_after("-5", options) == 0.0
    assert _retry_after("86400", options) == 30.0  # capped: every call is bounded
    soon = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 5.0 < (_retry_after(soon, options) or 0.0) <= 10.0
    assert _retry_after("soon, please", options) is None
    assert _retry_after(None, options) is None


def test_token_answers() -> None:
    assert _token_of(b'{"token": "abc", "expires_in": 300}') == ("abc", 300.0)
    assert _token_of(b'{"access_token": "abc"}') == ("abc", 60.0)  # the spec's default
    assert _token_of(b'{"token": "abc", "expires_in": "soon"}') == ("abc", 60.0)
    for junk in (b"", b"<html>", b"[]", b'{"token": 5}', b'{"token": ""}'):
        assert _token_of(junk)[0] == "", junk


def test_registry_error_bodies() -> None:
    body = b'{"errors": [{"code": "DENIED", "message": "requested access is denied"}]}'
    assert _error_text(body) == "DENIED: requested access is denied"
    assert _error_text(b"") == ""
    assert _error_text(b"<html>oops</html>") == "b'<html>oops</html>'"
    assert _error_text(b'{"errors": "no"}').startswith("b'")


def test_scopes_held_cover_what_is_wanted() -> None:
    push = frozenset({"repository:a:pull,push"})
    assert _covers(push, frozenset({"repository:a:pull"}))
    assert not _covers(frozenset({"repository:a:pull"}), push)
    assert not _covers(push, frozenset({"repository:b:pull"}))
    mount = frozenset({"repository:a:pull,push", "repository:b:pull"})
    assert _covers(mount, frozenset({"repository:b:pull", "repository:a:push"}))


def test_upload_locations_keep_their_query() -> None:
    url = _with_query("https://r.example/v2/x/blobs/uploads/u?_state=abc%3D", digest="sha256:1")
    assert url == "https://r.example/v2/x/blobs/uploads/u?_state=abc%3D&digest=sha256%3A1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("127.8.9.1", True), ("[::1]:443", True), ("localhost:80", True),
     ("10.0.0.1:5000", False), ("ghcr.io", False), ("localhost.example", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_proxy_a_url_goes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    url = httpx.URL("https://registry.example.com:5000/v2/")
    assert proxy_for(url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert proxy_for(url) == "http://proxy:3128"
    for bypass in (
        "example.com",
        ".example.com",
        "registry.example.com:5000",
        "*",
        "a,registry.example.com",
    ):
        monkeypatch.setenv("NO_PROXY", bypass)
        assert proxy_for(url) is None, bypass
    monkeypatch.setenv("NO_PROXY", "other.example.com,registry.example.com:6000")
    assert proxy_for(url) == "http://proxy:3128"
