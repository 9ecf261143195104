"""The OCI distribution API (v2) of one repository, over :mod:`~pytest_mlops.deploy.transport`.

What a registry a team runs asks of a client:

* HTTPS (plain HTTP only for a loopback address that does not speak TLS, or with ``insecure``);
* authentication as the registry's ``WWW-Authenticate`` challenge says: HTTP basic, or the
  distribution token flow (``Bearer realm=...,service=...``: a token for the repository's
  ``pull`` or ``pull,push`` scope from the realm, with basic credentials or an identity token;
  a new token when the registry answers 401 to a cached one);
* blobs streamed from and to files, never held whole in memory: uploads in chunks (``PATCH``
  with ``Content-Range``, at least the registry's ``OCI-Chunk-Min-Length``), a small blob in one
  ``PUT``; a blob another repository of the registry holds is mounted rather than sent; downloads
  verified against their digest before they land; ``Location`` headers resolved against the
  request they answer (absolute or relative), credentials sent only to the registry's own origin.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pytest_mlops.deploy.credentials import ANONYMOUS, Credentials, registry_credentials
from pytest_mlops.deploy.transport import (
    RETRY_STATUSES,
    HttpOptions,
    basic_auth,
    header_params,
    http_client,
    is_loopback,
    read_bounded,
    save_stream,
    send,
)
from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    import httpx

__all__ = ["Answer", "DistributionClient", "sha256_file"]

Action = Literal["pull", "push"]
MANIFEST_LIMIT = 4 << 20  # what registries accept as the largest manifest
_READ = 1 << 20
_DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class Answer:
    """A registry's answer: status, headers (lower-case names) and a bounded body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Token:
    scopes: frozenset[str]
    value: str
    expires: float


@dataclass
class Stats:
    """What a client did: bytes uploaded, blobs mounted, tokens fetched."""

    uploaded: int = 0
    mounted: int = 0
    tokens: int = 0
    chunks: int = 0


def sha256_file(path: Path) -> tuple[str, int]:
    """The ``sha256:`` digest and size of a file, read in 1 MiB pieces."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(_READ), b""):
            digest.update(piece)
            size += len(piece)
    return "sha256:" + digest.hexdigest(), size


class DistributionClient:
    """One repository of a distribution (OCI) registry."""

    def __init__(
        self,
        host: str,
        repository: str,
        options: HttpOptions,
        *,
        insecure: bool = False,
        chunk_size: int = 32 << 20,
        credentials: Callable[[str], Credentials] = registry_credentials,
    ) -> None:
        self.host = host
        self.api_host = _DOCKER_HUB_API if host in ("docker.io", "index.docker.io") else host
        self.repository = repository
        self.options = options
        self.insecure = insecure
        self.chunk_size = chunk_size
        self.stats = Stats()
        self._lookup = credentials
        self._creds: Credentials | None = None
        self._client: httpx.Client | None = None
        self._base = ""
        self._challenge: tuple[str, dict[str, str]] = ("", {})
        self._tokens: list[_Token] = []

    # --- the connection ---

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            options = self.options
            if self.insecure:
                options = replace(options, tls=replace(options.tls, verify=False))
            self._client = http_client(options)
        return self._client

    def base(self) -> str:
        """``https://HOST``, or ``http://`` for a loopback or insecure registry without TLS.

        It is found by asking ``GET /v2/`` as Docker does; the answer's challenge is kept.
        """
        if not self._base:
            self._ping()
        return self._base

    def _ping(self) -> None:
        import httpx

        schemes = ["https", "http"] if self.insecure or is_loopback(self.api_host) else ["https"]
        client = self._http()
        for scheme in schemes:
            url = f"{scheme}://{self.api_host}/v2/"
            if scheme == "https" and len(schemes) > 1:
                try:
                    client.send(client.build_request("GET", url)).close()
                except httpx.TransportError as exc:
                    if _not_tls(exc):
                        continue  # a plain HTTP server: try http://
                except UnicodeError:
                    pass  # send says what is wrong with the name
            response = send(
                client, functools.partial(client.build_request, "GET", url), self.options
            )
            self._check_api(response, url)
            self._base = f"{scheme}://{self.api_host}"
            if response.status_code == 401:
                self._challenge = header_params(response.headers.get("www-authenticate", ""))
            return

    def _check_api(self, response: httpx.Response, url: str) -> None:
        body = response.read()[:80]
        versioned = "docker-distribution-api-version" in response.headers
        json_body = response.headers.get("content-type", "").startswith("application/json")
        if response.status_code == 401 or (
            response.status_code == 200 and (versioned or json_body)
        ):
            return
        if response.status_code in RETRY_STATUSES:
            said = _error_text(body)
            raise DeployError(
                f"the registry {self.host} answered GET {url} with HTTP {response.status_code}"
                f"{' ' + said if said else ''}, {self.options.retries + 1} tries in a row: it is "
                "not working now; try again later"
            )
        raise DeployError(
            f"{self.host} does not speak the OCI distribution API: GET {url} answered HTTP "
            f"{response.status_code} {body!r} (a registry answers 200 or 401); check the "
            "address in the deploy setting 'registry' (oci://HOST[:PORT]/REPOSITORY)"
        )

    # --- authentication ---

    @property
    def asks_for_credentials(self) -> bool:
        """Whether the registry answered with an authentication challenge (known after ``base()``)."""
        return bool(self._challenge[0])

    def credentials(self) -> Credentials:
        """The credentials for this registry (looked up once, when first asked for)."""
        if self._creds is None:
            self._creds = self._lookup(self.host)
        return self._creds

    def scopes(self, action: Action, *extra: str) -> frozenset[str]:
        actions = "pull" if action == "pull" else "pull,push"
        return frozenset({f"repository:{self.repository}:{actions}", *extra})

    def _authorization(self, scopes: frozenset[str], *, fresh: bool) -> dict[str, str]:
        scheme, params = self._challenge
        if scheme == "basic":
            creds = self.credentials()
            if creds.present and creds.password is not None:
                return {"Authorization": basic_auth(str(creds.username), creds.password)}
            return {}
        if scheme != "bearer":
            return {}
        now = time.monotonic()
        if fresh:
            self._tokens = [t for t in self._tokens if not _covers(t.scopes, scopes)]
        for token in self._tokens:
            if token.expires > now and _covers(token.scopes, scopes):
                return {"Authorization": f"Bearer {token.value}"}
        wanted = scopes | frozenset(params.get("scope", "").split())
        token = self._fetch_token(wanted, params)
        self._tokens.append(token)
        return {"Authorization": f"Bearer {token.value}"}

    def _fetch_token(self, scopes: frozenset[str], params: dict[str, str]) -> _Token:
        """A token for *scopes* from the challenge's realm (the distribution token flow)."""
        realm = params.get("realm", "")
        target = urllib.parse.urlsplit(realm)
        if target.scheme not in ("https", "http") or not target.netloc:
            raise DeployError(f"the registry {self.host} named no usable token service: {realm!r}")
        creds = self.credentials()
        if (
            target.scheme == "http"
            and creds.present
            and not (is_loopback(target.netloc) or self.insecure)
        ):
            raise DeployError(
                f"the registry {self.host} asks for its tokens at {realm}, over plain HTTP: "
                f"refusing to send {creds.describe()} there (set 'insecure' to allow it)"
            )
        client = self._http()
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in sorted(scopes)]
        if creds.identity_token:
            form = {**dict(query[:1]), "scope": " ".join(sorted(scopes)), "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token, "client_id": "pytest-mlops"}  # fmt: skip
            build = functools.partial(client.build_request, "POST", realm, data=form)
        else:
            headers = {}
            if creds.present:
                headers["Authorization"] = basic_auth(str(creds.username), str(creds.password))
                query.append(("account", str(creds.username)))
            url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
            build = functools.partial(client.build_request, "GET", url, headers=headers)
        response = send(client, build, self.options)
        body = read_bounded(response, 1 << 20)
        if response.status_code in (401, 403):
            raise DeployError(
                f"the token service of {self.host} ({realm}) refused {creds.describe()} "
                f"(HTTP {response.status_code} {_error_text(body)}): check the user name and "
                "password or token" + self._hint(creds)
            )
        value, lifetime = _token_of(body) if response.status_code == 200 else ("", 0.0)
        if not value:
            raise DeployError(
                f"the token service of {self.host} ({realm}) answered HTTP "
                f"{response.status_code} without a token: {body[:200]!r}"
            )
        self.stats.tokens += 1
        return _Token(scopes, value, time.monotonic() + max(lifetime, 1.0) - 5)

    def _hint(self, creds: Credentials) -> str:
        if creds.present:
            return ""
        return (
            f". No credentials were found for {self.host}: set MLOPS_REGISTRY_USERNAME and "
            f"MLOPS_REGISTRY_PASSWORD, or run `docker login {self.host}` (pytest-mlops reads "
            "~/.docker/config.json and its credential helpers); in CI, GITHUB_TOKEN serves "
            "ghcr.io and CI_REGISTRY_USER/CI_REGISTRY_PASSWORD serve $CI_REGISTRY"
        )

    def _refused(self, response: httpx.Response, action: Action, body: bytes) -> DeployError:
        """The paragraph for a 401 or 403 that a fresh token or the credentials did not cure."""
        creds = self.credentials() if self._challenge[0] else ANONYMOUS
        _, params = header_params(response.headers.get("www-authenticate", ""))
        what = f"{action} access to repository {self.repository!r}"
        said = _error_text(body)
        detail = f"HTTP {response.status_code}" + (f" {said}" if said else "")
        if not creds.present:
            return DeployError(
                f"the registry {self.host} needs credentials for {what} "
                f"({detail})" + self._hint(creds)
            )
        if response.status_code == 403 or params.get("error") == "insufficient_scope":
            granted = self._granted()
            return DeployError(
                f"the registry {self.host} refused {creds.describe()} for {what}: {action} scope "
                f"needed{granted} ({detail}); use credentials that "
                f"may {action} there (on ghcr.io a token with packages: write, on GitLab the "
                "job token of a project with the container registry)"
            )
        if params.get("error") == "invalid_token":
            return DeployError(
                f"the registry {self.host} refused the tokens its token service "
                f"({self._challenge[1].get('realm', '?')}) issued for {creds.describe()}, "
                f"a fresh one too (expired or not valid for this registry: check the clocks "
                f"and the token service's configuration); {what} needed ({detail})"
            )
        return DeployError(
            f"the registry {self.host} refused {creds.describe()} for {what} "
            f"({detail}): check the user name and password"
        )

    def _granted(self) -> str:
        """What the last token says it grants on this repository (JWT tokens only)."""
        for token in reversed(self._tokens):
            with contextlib.suppress(ValueError, IndexError, TypeError, AttributeError):
                payload = token.value.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                for entry in claims.get("access", []):
                    if entry.get("name") == self.repository:
                        actions = ",".join(entry.get("actions") or []) or "nothing"
                        return f"; the token service granted {actions}"
                return "; the token service granted nothing on it"
        return ""

    # --- requests ---

    def request(
        self,
        method: str,
        target: str,
        *,
        action: Action,
        headers: dict[str, str] | None = None,
        content: Callable[[], Any] | None = None,
        stream: bool = False,
        extra_scopes: tuple[str, ...] = (),
        retry: bool = True,
    ) -> httpx.Response:
        """One authenticated call.

        *target* is a path under the registry or an absolute URL (a ``Location``). A 401 gets
        one more try with fresh authentication; a refusal that remains raises a DeployError
        naming the credentials and the scope needed.
        """
        url = target if "://" in target else self.base() + target
        scopes = self.scopes(action, *extra_scopes)
        client = self._http()
        for fresh in (False, True):
            auth = self._authorization(scopes, fresh=fresh) if self._same_origin(url) else {}
            sent = {**(headers or {}), **auth}

            def build(sent: dict[str, str] = sent) -> httpx.Request:
                body = content() if content else None  # a new stream for each try
                return client.build_request(method, url, headers=sent, content=body)

            response = send(
                client,
                build,
                self.options,
                stream=stream,
                retry_statuses=RETRY_STATUSES if retry else frozenset(),
            )
            if response.status_code != 401 or fresh:
                break
            challenge = header_params(response.headers.get("www-authenticate", ""))
            if challenge[0] not in ("basic", "bearer"):
                break
            self._challenge = challenge
            if challenge[0] == "basic" and (auth or not self.credentials().present):
                break  # the credentials were refused, or there are none
            response.close()
        if response.status_code in (401, 403):
            raise self._refused(response, action, read_bounded(response, 4096))
        return response

    def _same_origin(self, url: str) -> bool:
        mine, theirs = urllib.parse.urlsplit(self.base()), urllib.parse.urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)

    def call(
        self, method: str, target: str, *, action: Action, limit: int = 1 << 20, **kw: Any
    ) -> Answer:
        """:meth:`request`, its body read (at most *limit* bytes)."""
        response = self.request(method, target, action=action, stream=True, **kw)
        body = read_bounded(response, limit)
        return Answer(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, body
        )

    def fail(self, what: str, answer: Answer) -> DeployError:
        """A refusal: *what* was refused, with the registry's own words."""
        return DeployError(
            f"the OCI registry {self.host} refused {what}: HTTP {answer.status} "
            f"{_error_text(answer.body)}"
        )

    # --- manifests ---

    def get_manifest(self, reference: str, accept: str, *, method: str = "GET") -> Answer:
        path = f"/v2/{self.repository}/manifests/{urllib.parse.quote(reference, safe=':')}"
        return self.call(
            method, path, action="pull", headers={"Accept": accept}, limit=MANIFEST_LIMIT
        )

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> None:
        path = f"/v2/{self.repository}/manifests/{urllib.parse.quote(reference, safe=':')}"
        answer = self.call(
            "PUT", path, action="push", headers={"Content-Type": media_type}, content=lambda: body
        )
        if answer.status not in (200, 201):
            raise self.fail(f"the manifest {reference!r}", answer)

    # --- blobs ---

    def blob_exists(self, digest: str) -> bool:
        answer = self.call("HEAD", f"/v2/{self.repository}/blobs/{digest}", action="pull")
        if answer.status in (200, 404):
            return answer.status == 200
        raise self.fail(f"a look at blob {digest[:19]}...", answer)

    def check_push(self) -> None:
        """Start an upload and cancel it: the credentials may push here (else a DeployError)."""
        answer = self.call("POST", f"/v2/{self.repository}/blobs/uploads/", action="push")
        if answer.status != 202:
            raise self.fail("a blob upload", answer)
        with contextlib.suppress(DeployError):
            self.call("DELETE", self._location(answer, self.base()), action="push", retry=False)

    def upload_bytes(self, data: bytes) -> tuple[str, int]:
        """Store *data* as a blob (skipped if it is there); its digest and size."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._upload(lambda: io.BytesIO(data), digest, len(data), ())
        return digest, len(data)

    def upload_file(self, path: Path, *, mount_from: tuple[str, ...] = ()) -> tuple[str, int]:
        """Stream a file into a blob; its digest and size.

        The blob is mounted from *mount_from* if one of those repositories has it, and skipped
        if this one has.
        """
        digest, size = sha256_file(path)
        self._upload(lambda: path.open("rb"), digest, size, mount_from)
        return digest, size

    def _upload(
        self, opener: Callable[[], IO[bytes]], digest: str, size: int, mount_from: tuple[str, ...]
    ) -> None:
        if self.blob_exists(digest):
            return
        uploads = f"/v2/{self.repository}/blobs/uploads/"
        answer = None
        for source in (s for s in mount_from if s != self.repository):
            query = urllib.parse.urlencode({"mount": digest, "from": source})
            answer = self.call(
                "POST",
                f"{uploads}?{query}",
                action="push",
                extra_scopes=(f"repository:{source}:pull",),
            )
            if answer.status == 201:
                self.stats.mounted += 1
                return
            if answer.status == 202:
                break
        if answer is None or answer.status != 202:
            answer = self.call("POST", uploads, action="push")
        if answer.status != 202:
            raise self.fail("a blob upload", answer)
        location = self._location(answer, self.base() + uploads)
        minimum = int(answer.headers.get("oci-chunk-min-length", "0") or 0)
        chunk = max(self.chunk_size, minimum)
        offset = 0
        while size - offset > chunk:
            location, offset = self._patch(location, opener, offset, min(chunk, size - offset))
        done = self.call(
            "PUT",
            _with_query(location, digest=digest),
            action="push",
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size - offset),
            },
            content=lambda: _stream(opener, offset, size - offset),
        )
        if done.status != 201:
            raise self.fail(f"blob {digest[:19]}...", done)
        if done.headers.get("docker-content-digest", digest) != digest:
            raise DeployError(
                f"the OCI registry {self.host} stored blob {digest[:19]}... under another digest "
                f"({done.headers['docker-content-digest'][:19]}...)"
            )
        self.stats.uploaded += size

    def _patch(
        self, location: str, opener: Callable[[], IO[bytes]], offset: int, length: int
    ) -> tuple[str, int]:
        """Send one chunk; the next Location and offset (what the registry says it holds)."""
        answer = self.call(
            "PATCH",
            location,
            action="push",
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
                "Content-Length": str(length),
            },
            content=lambda: _stream(opener, offset, length),
        )
        if answer.status == 416:  # a retried chunk the registry had part of: ask where it stands
            answer = self.call("GET", location, action="push")
            if answer.status != 204:
                raise self.fail("the upload's status", answer)
        elif answer.status != 202:
            raise self.fail(f"a chunk at offset {offset}", answer)
        self.stats.chunks += 1
        held = answer.headers.get("range", "")
        end = held.rpartition("-")[2]
        next_offset = int(end) + 1 if end.isdigit() else offset + length
        return self._location(answer, location), next_offset

    def _location(self, answer: Answer, request_url: str) -> str:
        """The answer's Location, resolved against the URL it answers (RFC 3986)."""
        import httpx

        location = answer.headers.get("location", "")
        if not location:
            raise DeployError(
                f"the OCI registry {self.host} answered HTTP {answer.status} without a Location"
            )
        return str(httpx.URL(request_url).join(location))

    def download(self, digest: str, dest: Path, *, limit: int | None = None) -> int:
        """Stream blob *digest* into *dest*; its size.

        The blob goes to a temporary file first, renamed once its digest verifies. Storage
        redirects are followed, without the credentials.
        """
        import httpx

        path = f"/v2/{self.repository}/blobs/{digest}"
        for attempt in range(self.options.retries + 1):
            response = self.request("GET", path, action="pull", stream=True)
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    response = self._redirected(response)
                if response.status_code != 200:
                    raise self.fail(
                        f"blob {digest[:19]}...",
                        Answer(response.status_code, {}, read_bounded(response, 4096)),
                    )
                return save_stream(
                    response,
                    dest,
                    f"blob {digest[:19]}... from {self.host}",
                    limit=limit,
                    digest=digest,
                )
            except (httpx.TransportError, httpx.StreamError) as exc:
                if attempt == self.options.retries:
                    raise DeployError(
                        f"downloading blob {digest[:19]}... from {self.host} failed "
                        f"{attempt + 1} times: {exc}"
                    ) from None
            finally:
                response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _redirected(self, response: httpx.Response) -> httpx.Response:
        target = self._location(
            Answer(response.status_code, {"location": response.headers.get("location", "")}, b""),
            str(response.request.url),
        )
        response.close()
        client = self._http()
        auth = (
            self._authorization(self.scopes("pull"), fresh=False)
            if self._same_origin(target)
            else {}
        )
        return send(
            client,
            lambda: client.build_request("GET", target, headers=auth),
            self.options,
            stream=True,
        )

    def fetch(self, digest: str, *, limit: int) -> bytes:
        """A small blob's bytes (at most *limit*), verified against its digest."""
        with tempfile.TemporaryDirectory(prefix="mlops-blob-") as tmp:
            target = Path(tmp) / "blob"
            self.download(digest, target, limit=limit)
            return target.read_bytes()


def _stream(opener: Callable[[], Any], offset: int, length: int) -> Iterator[bytes]:
    """*length* bytes from *offset*, 1 MiB at a time (a new pass for each try)."""
    with opener() as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            piece = handle.read(min(_READ, left))
            if not piece:
                raise DeployError(
                    f"the file being uploaded shrank while it was read ({left} bytes short)"
                )
            left -= len(piece)
            yield piece


def _covers(held: frozenset[str], wanted: frozenset[str]) -> bool:
    """Every wanted ``repository:NAME:actions`` is within a held one."""
    have: dict[str, set[str]] = {}
    for scope in held:
        kind_name, _, actions = scope.rpartition(":")
        have.setdefault(kind_name, set()).update(actions.split(","))
    for scope in wanted:
        kind_name, _, actions = scope.rpartition(":")
        if not set(actions.split(",")) <= have.get(kind_name, set()):
            return False
    return True


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _error_text(body: bytes) -> str:
    """A registry's ``{"errors": [{"code", "message"}]}`` in words, else the body's start."""
    try:
        errors = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return repr(body[:200]) if body else ""


def _not_tls(exc: Exception) -> bool:
    """The server answered the TLS hello with something else than TLS (a plain HTTP port)."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _token_of(body: bytes) -> tuple[str, float]:
    """The token and its lifetime in seconds (60 when not given) of a token service's answer."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "", 0.0
    if not isinstance(answer, dict):
        return "", 0.0
    value = answer.get("token") or answer.get("access_token")
    try:
        lifetime = float(answer.get("expires_in") or 60)
    except (TypeError, ValueError):
        lifetime = 60.0
    return (value, lifetime) if isinstance(value, str) else ("", 0.0)
