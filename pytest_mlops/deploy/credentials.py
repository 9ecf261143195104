"""Registry credentials from where people keep them.

:func:`registry_credentials` looks, in this order, for the credentials of a registry host:

1. ``MLOPS_REGISTRY_USERNAME`` and ``MLOPS_REGISTRY_PASSWORD`` in the environment;
2. Docker's configuration (``$DOCKER_CONFIG/config.json``, default ``~/.docker/config.json``), as
   ``docker login`` leaves it: a ``credHelpers`` entry for the host, else the ``credsStore``
   (both run ``docker-credential-<helper> get``, as Docker does), else the ``auths`` entry
   (``auth``, ``username``/``password`` or ``identitytoken``);
3. the job tokens CI hands out: ``GITHUB_TOKEN`` for ``ghcr.io``, ``CI_REGISTRY_USER`` and
   ``CI_REGISTRY_PASSWORD`` for ``$CI_REGISTRY`` on GitLab.

They are looked up only when a registry asks for credentials, and each result says where it came
from, so that an error can name the source.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlops.errors import DeployError

__all__ = ["ANONYMOUS", "Credentials", "docker_config_path", "registry_credentials"]

# Docker Hub's credentials are stored under its index's address
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token; *source* says where from."""

    username: str | None
    password: str | None
    source: str
    identity_token: str | None = None

    @property
    def present(self) -> bool:
        return bool(self.identity_token or (self.username and self.password is not None))

    def describe(self) -> str:
        """``"the credentials from X (user 'u')"``, for messages."""
        if not self.present:
            return "no credentials"
        who = f" (user {self.username!r})" if self.username and not self.identity_token else ""
        return f"the credentials from {self.source}{who}"

    def docker_auth(self) -> dict[str, str]:
        """The ``auth_config`` the Docker SDK sends the daemon (empty: none)."""
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        if self.present:
            return {"username": str(self.username), "password": str(self.password)}
        return {}


ANONYMOUS = Credentials(None, None, "nowhere")


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, default ``~/.docker/config.json``."""
    env = os.environ if env is None else env
    folder = env.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(folder).expanduser() / "config.json"


def registry_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials for registry *host* (``host[:port]``); :data:`ANONYMOUS` if none."""
    env = os.environ if env is None else env
    if env.get("MLOPS_REGISTRY_USERNAME") and env.get("MLOPS_REGISTRY_PASSWORD") is not None:
        return Credentials(
            env["MLOPS_REGISTRY_USERNAME"],
            env["MLOPS_REGISTRY_PASSWORD"],
            "MLOPS_REGISTRY_USERNAME/MLOPS_REGISTRY_PASSWORD",
        )
    found = _from_docker_config(host, env)
    if found.present:
        return found
    if _hostname(host) == "ghcr.io" and env.get("GITHUB_TOKEN"):
        return Credentials(
            env.get("GITHUB_ACTOR") or "github-actions", env["GITHUB_TOKEN"], "GITHUB_TOKEN"
        )
    ci_registry = env.get("CI_REGISTRY")
    if ci_registry and _hostname(ci_registry) == _hostname(host) and env.get("CI_REGISTRY_USER"):
        return Credentials(
            env["CI_REGISTRY_USER"],
            env.get("CI_REGISTRY_PASSWORD", ""),
            "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD",
        )
    return ANONYMOUS


def _hostname(address: str) -> str:
    """``"https://host:5000/v1/"`` or ``"host:5000"`` -> ``"host:5000"``.

    Docker Hub's aliases become ``docker.io``.
    """
    text = address.strip()
    netloc = urllib.parse.urlsplit(text if "://" in text else f"//{text}").netloc.lower()
    return "docker.io" if netloc in _DOCKER_HUB else netloc


def _from_docker_config(host: str, env: Mapping[str, str]) -> Credentials:
    path = docker_config_path(env)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ANONYMOUS
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read Docker's configuration {path}: {exc}") from None
    if not isinstance(config, dict):
        raise DeployError(f"Docker's configuration {path} is not a JSON object")
    wanted = _hostname(host)
    shown = str(path).replace(str(Path.home()), "~", 1)
    helpers = config.get("credHelpers") or {}
    entry = _auths_entry(config.get("auths") or {}, wanted, shown)
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _hostname(key) == wanted:
                return _from_helper(
                    str(helper), key, f"docker-credential-{helper} (credHelpers in {shown})"
                )
    if config.get("credsStore"):
        store = str(config["credsStore"])
        key = _DOCKER_HUB_KEY if wanted == "docker.io" else host
        found = _from_helper(store, key, f"docker-credential-{store} (credsStore in {shown})")
        if found.present:
            return found
    return entry


def _auths_entry(auths: Any, wanted: str, shown: str) -> Credentials:
    if not isinstance(auths, dict):
        return ANONYMOUS
    for key, entry in auths.items():
        if _hostname(key) != wanted or not isinstance(entry, dict):
            continue
        source = f"{shown} (auths {key!r})"
        if entry.get("identitytoken"):
            return Credentials(None, None, source, identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise DeployError(
                    f"{source}: 'auth' is not base64 of USER:PASSWORD; run docker login again"
                )
            return Credentials(user, password, source)
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")), source)
    return ANONYMOUS


def _from_helper(helper: str, server: str, source: str) -> Credentials:
    """``docker-credential-HELPER get`` with *server* on stdin, as Docker runs it."""
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(  # noqa: S603 - an argument list, no shell
            [program, "get"], input=server, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise DeployError(
            f"Docker's configuration names the credential helper {program!r} ({source}), which "
            "is not installed (not on PATH): install it, or remove it from the configuration"
        ) from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"the credential helper {program} did not answer within 30 s") from None
    if done.returncode != 0:
        if "not found" in (done.stdout + done.stderr).lower():
            return ANONYMOUS
        raise DeployError(
            f"the credential helper {program} failed for {server}: "
            f"{(done.stderr or done.stdout).strip()[:300]}"
        )
    try:
        answer = json.loads(done.stdout)
        user, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise DeployError(
            f"the credential helper {program} answered something else than "
            '{"Username": ..., "Secret": ...} for ' + server
        ) from None
    if user == "<token>":
        return Credentials(None, None, source, identity_token=secret)
    return Credentials(user, secret, source)
