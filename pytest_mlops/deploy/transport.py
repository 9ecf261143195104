"""HTTP(S) to registries as teams run them: TLS, proxies, timeouts and retries, on ``httpx``.

Every call the OCI and MLflow backends make goes through :func:`send`:

* TLS is verified against the system trust store (OpenSSL's default paths, which honour
  ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``) plus, when given, a CA bundle: the deploy setting
  ``ca_bundle``, ``MLOPS_REGISTRY_CA_BUNDLE``, or ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``;
* ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` are honoured (httpx reads them);
* each call is bounded (connect, read, write and pool timeouts) and retried, with exponential
  backoff and jitter, on connection errors, timeouts, 429 and 5xx answers, ``Retry-After``
  honoured, a bounded number of times;
* what still fails becomes one :class:`~pytest_mlops.errors.DeployError` paragraph that names the
  host and what to do: the CA setting for an untrusted certificate, the proxy in use, the address
  that refused the connection, the name that did not resolve.
"""

from __future__ import annotations

import email.utils
import os
import random
import socket
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_mlops.errors import ConfigError, DeployError

if TYPE_CHECKING:
    import httpx

    from pytest_mlops.deploy.settings import DeploySettings

__all__ = [
    "RETRY_STATUSES",
    "HttpOptions",
    "TlsOptions",
    "http_client",
    "http_options",
    "is_loopback",
    "read_bounded",
    "save_stream",
    "send",
    "transport_error",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CA_ENV = ("MLOPS_REGISTRY_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class TlsOptions:
    """What a client trusts: the system store plus *ca_bundle* (named by *ca_source*)."""

    ca_bundle: Path | None = None
    ca_source: str = ""
    verify: bool = True
    client_cert: Path | None = None

    @classmethod
    def from_settings(
        cls, ca_bundle: str | None, base_dir: Path, *, extra_env: tuple[str, ...] = ()
    ) -> TlsOptions:
        """The deploy setting ``ca_bundle`` (relative to *base_dir*), else a CA variable.

        The CA variable is the first of the CA environment variables (*extra_env* first) that is
        set.
        """
        if ca_bundle:
            path = Path(ca_bundle).expanduser()
            return cls(
                path if path.is_absolute() else base_dir / path, "the deploy setting 'ca_bundle'"
            )
        for var in (*extra_env, *_CA_ENV):
            if os.environ.get(var):
                return cls(Path(os.environ[var]).expanduser(), var)
        return cls()

    def describe(self) -> str:
        """What is trusted, in words."""
        if not self.verify:
            return "certificates are not verified"
        store = "the system's trust store"
        if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
            store += " (SSL_CERT_FILE/SSL_CERT_DIR)"
        if self.ca_bundle is not None:
            return f"{store} and {self.ca_bundle} ({self.ca_source})"
        return store

    def context(self) -> ssl.SSLContext:
        """An SSL context: the system's trust store plus the CA bundle.

        A ConfigError when the bundle cannot be read.
        """
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.ca_bundle is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{self.ca_source}: cannot read the CA bundle {str(self.ca_bundle)!r} "
                    f"({exc}); expected a PEM file of CA certificates"
                ) from None
        if self.client_cert is not None:
            try:
                context.load_cert_chain(str(self.client_cert))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot read the client certificate {str(self.client_cert)!r} ({exc}); "
                    "expected a PEM file with the certificate and its key"
                ) from None
        return context


@dataclass(frozen=True)
class HttpOptions:
    """How calls are bounded.

    *timeout* seconds per call, *retries* more tries of a call that failed in a way that may
    pass.
    """

    tls: TlsOptions = TlsOptions()
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0


def http_client(options: HttpOptions) -> httpx.Client:
    """An httpx client: verified TLS, proxies from the environment, every phase timed out."""
    import httpx

    from pytest_mlops._version import __version__

    timeout = httpx.Timeout(options.timeout, connect=min(options.timeout, 15.0))
    return httpx.Client(
        verify=options.tls.context(),
        timeout=timeout,
        trust_env=True,
        follow_redirects=False,
        headers={"User-Agent": f"pytest-mlops/{__version__}"},
    )


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost`` (a ``host[:port]`` string)."""
    import ipaddress

    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def send(
    client: httpx.Client,
    build: Callable[[], httpx.Request],
    options: HttpOptions,
    *,
    stream: bool = False,
    retry_statuses: frozenset[int] = RETRY_STATUSES,
) -> httpx.Response:
    """Send the request *build* makes (again for each try: a streamed body starts over).

    Retries connection errors, timeouts and *retry_statuses* answers up to ``options.retries``
    times, waiting ``Retry-After`` when the server says so, else an exponential backoff with
    jitter. The last answer is returned whatever its status; a connection that never worked
    raises :func:`transport_error`'s DeployError.
    """
    import httpx

    for attempt in range(options.retries + 1):
        request = build()
        last = attempt == options.retries
        try:
            response = client.send(request, stream=stream)
        except httpx.TransportError as exc:
            if last or not _retryable(exc):
                raise transport_error(exc, request.url, options, attempts=attempt + 1) from None
            time.sleep(_backoff(options, attempt))
            continue
        except UnicodeError as exc:  # a host name the resolver refuses to encode
            raise DeployError(f"cannot resolve the host name {request.url.host!r}: {exc}") from None
        if response.status_code not in retry_statuses or last:
            return response
        wait = _retry_after(response.headers.get("Retry-After"), options)
        response.close()
        time.sleep(wait if wait is not None else _backoff(options, attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _retryable(exc: Exception) -> bool:
    """Timeouts, dropped and refused connections: yes; TLS and name resolution failures: no."""
    import httpx

    if _cause(exc, ssl.SSLError, socket.gaierror) is not None:
        return False
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _backoff(options: HttpOptions, attempt: int) -> float:
    """Exponential, capped, with jitter: half fixed, half random (so retries spread out)."""
    step = min(options.max_backoff, options.backoff * 2.0**attempt)
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - retry jitter, not a secret


def _retry_after(value: str | None, options: HttpOptions) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), capped at ``max_backoff``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = float(when.timestamp()) - time.time()
    return min(max(seconds, 0.0), options.max_backoff)


def _cause(exc: BaseException, *kinds: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds) and seen is not exc:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def proxy_for(url: httpx.URL) -> str | None:
    """The proxy the environment names for *url* (``None``: a direct connection), for messages.

    ``NO_PROXY`` entries match the host, its domain, or ``host:port``.
    """
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy:
        return None
    host = (url.host or "").lower()
    for entry in (e.strip().lower() for e in proxies.get("no", "").split(",")):
        name = entry.lstrip(".")
        if entry == "*" or (url.port and entry == f"{host}:{url.port}"):
            return None
        if name and (host == name or host.endswith("." + name)):
            return None
    return proxy


def transport_error(
    exc: Exception, url: httpx.URL, options: HttpOptions, *, attempts: int = 1
) -> DeployError:
    """One paragraph saying what failed talking to *url*, and what to do about it."""
    import httpx

    where = f"{url.host}:{url.port}" if url.port else url.host
    proxy = proxy_for(url)
    via = (
        f" through the proxy {_redact(proxy)} (from the proxy environment variables)"
        if proxy
        else ""
    )
    tries = f" ({attempts} tries)" if attempts > 1 else ""
    tls = _cause(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return DeployError(
            f"TLS: the certificate of {where} is not trusted ({tls.verify_message or tls.reason}); "
            f"trusted now: {options.tls.describe()}. Give the CA that signed it in the deploy "
            "setting 'ca_bundle' (or MLOPS_REGISTRY_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)"
        )
    if isinstance(tls, ssl.SSLError):
        return DeployError(
            f"TLS: the handshake with {where}{via} failed ({tls.reason or tls}): is it an HTTPS "
            "port? (plain HTTP is used only for loopback addresses, or with the deploy setting "
            "'insecure')"
        )
    if isinstance(exc, httpx.ProxyError):
        return DeployError(f"the proxy {_redact(proxy or '?')} failed to reach {where}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return DeployError(
            f"{where}{via} did not answer within {options.timeout:g} s{tries}: {type(exc).__name__}"
            " (the deploy setting 'timeout' sets the limit)"
        )
    text = str(exc) or type(exc).__name__
    if _cause(exc, socket.gaierror) is not None:
        return DeployError(
            f"cannot resolve the host name {url.host!r}{via}: {text}; check the registry address"
        )
    if isinstance(_cause(exc, ConnectionRefusedError), ConnectionRefusedError):
        if proxy:
            return DeployError(f"the proxy {_redact(proxy)} refused the connection{tries}: {text}")
        return DeployError(
            f"{where} refused the connection{tries}: nothing listens there; check the registry "
            "address and that the server runs"
        )
    return DeployError(f"cannot connect to {where}{via}{tries}: {text}")


def _redact(url: str) -> str:
    """A URL without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def basic_auth(username: str, password: str) -> str:
    """An ``Authorization: Basic`` header value."""
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """``'Bearer realm="x",service="y"'`` -> ``("bearer", {"realm": "x", "service": "y"})``."""
    import re

    scheme, _, rest = value.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(r'([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', rest)
    }
    return scheme.lower(), params


def merge_headers(*parts: Mapping[str, str] | None) -> dict[str, str]:
    """Header mappings, later ones winning."""
    out: dict[str, str] = {}
    for part in parts:
        out.update(part or {})
    return out


def http_options(
    settings: DeploySettings, *, ca_env: tuple[str, ...] = (), verify: bool = True
) -> HttpOptions:
    """The transport options the deploy settings give (``ca_bundle``, ``timeout``, ``retries``).

    *ca_env* names more CA bundle variables, looked at before the common ones.
    """
    tls = TlsOptions.from_settings(settings.ca_bundle, settings.base_dir, extra_env=ca_env)
    if not verify:
        tls = TlsOptions(tls.ca_bundle, tls.ca_source, verify=False)
    return HttpOptions(tls=tls, timeout=settings.timeout, retries=settings.retries)


def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """At most *limit* bytes of a (streamed) response's body, else a DeployError.

    The response is closed.
    """
    out = bytearray()
    try:
        for piece in response.iter_bytes():
            out += piece
            if len(out) > limit:
                request = response.request
                raise DeployError(
                    f"{request.url.host} answered {request.method} {request.url.path} with more "
                    f"than {limit} bytes"
                )
    finally:
        response.close()
    return bytes(out)


def save_stream(
    response: httpx.Response,
    dest: Path,
    what: str,
    *,
    limit: int | None = None,
    digest: str | None = None,
) -> int:
    """Stream a response's body into *dest*; the number of bytes.

    The body goes to a temporary file beside *dest*, renamed once complete (and, given
    *digest*, once its sha256 matches).
    """
    import hashlib
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
    hasher, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in response.iter_bytes(1 << 20):
                size += len(piece)
                if limit is not None and size > limit:
                    raise DeployError(f"{what} is larger than the {limit} bytes expected")
                hasher.update(piece)
                out.write(piece)
        if digest is not None and "sha256:" + hasher.hexdigest() != digest:
            raise DeployError(f"{what} does not match its digest {digest[:19]}...")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
