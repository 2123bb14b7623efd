"""Registry credentials: what to log in with, looked up the way docker, podman and Trivy do.

Explicit credentials (from CLI flags or environment, resolved by the caller) win. Otherwise a
:class:`Keychain` reads docker's ``config.json`` (``auths``, ``credHelpers``, ``credsStore``) and then
podman's ``auth.json``; nothing matching means anonymous access.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivy_mirror.oci.reference import DOCKER_HUB

log = logging.getLogger(__name__)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
"""The key docker writes Docker Hub credentials under (and asks credential helpers for)."""

IDENTITY_TOKEN_USER = "<token>"  # noqa: S105 - a marker user name, not a secret
"""A credential helper answering this user name is handing out an identity (refresh) token."""

HELPER_TIMEOUT = 30.0

_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    """Log-in material for one registry. ``repr()`` never shows the secrets.

    ``identity_token`` is an OAuth2 refresh token exchanged at the token endpoint; ``token`` is a registry
    token sent as ``Authorization: Bearer`` as is, with no exchange (Trivy's ``--registry-token``).
    """

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)

    def __bool__(self) -> bool:
        """Whether there is anything to log in with (a client configuration for an open mirror has nothing)."""
        return bool(self.has_basic or self.identity_token or self.token)


def authorization_header(credentials: Credentials | None) -> str | None:
    """What a trivy-mirror serve accepts on every request: the static token as Bearer, else Basic."""
    if credentials is None:
        return None
    if credentials.token:
        return f"Bearer {credentials.token}"
    if credentials.username:
        pair = f"{credentials.username}:{credentials.password or ''}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"
    return None


def _hostname(key: str) -> str:
    """Canonical form of a config key: docker hub aliases collapse to ``docker.io``, schemes and URL paths go.

    Keys written with a scheme (``https://host/v1/``) name a host, as docker's ``ConvertToHostname`` reads
    them; keys without one may carry a repository path (``host/namespace``), as podman allows.
    """
    key = key.strip()
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]
    key = key.rstrip("/")
    host, sep, path = key.partition("/")
    if host in _HUB_HOSTS:
        host = DOCKER_HUB
    return f"{host}{sep}{path}"


def lookup_keys(registry: str, repository: str | None) -> list[str]:
    """Keys to try, most specific first: ``host/a/b``, ``host/a``, ``host``."""
    host = _hostname(registry)
    keys = [host]
    if repository:
        parts = repository.split("/")
        keys = [f"{host}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + keys
    return keys


def _server_url(registry: str) -> str:
    """What docker asks a credential helper for: the host, or docker's historical URL for Docker Hub."""
    return DOCKER_HUB_KEY if _hostname(registry) == DOCKER_HUB else registry


def _from_entry(entry: Any, where: str) -> Credentials | None:
    """Credentials from one ``auths`` entry; None for an empty or unusable entry."""
    if not isinstance(entry, dict):
        return None
    username = entry.get("username") if isinstance(entry.get("username"), str) else ""
    password = entry.get("password") if isinstance(entry.get("password"), str) else ""
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            log.warning("ignoring an unreadable auth entry in %s", where)
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            log.warning("ignoring an auth entry without a user:password pair in %s", where)
            return None
    identity = entry.get("identitytoken") if isinstance(entry.get("identitytoken"), str) else None
    token = entry.get("registrytoken") if isinstance(entry.get("registrytoken"), str) else None
    if not (username or password or identity or token):
        return None
    return Credentials(username or "", password or "", identity or None, token or None)


def run_helper(helper: str, server_url: str, env: Mapping[str, str]) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` for ``server_url``; None when it has nothing or fails."""
    program = shutil.which(f"docker-credential-{helper}", path=env.get("PATH"))
    if program is None:
        log.warning("credential helper docker-credential-%s is not on PATH; continuing without it", helper)
        return None
    try:
        result = subprocess.run(
            [program, "get"], input=server_url.encode(), capture_output=True, timeout=HELPER_TIMEOUT,
            env=dict(env), check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("credential helper docker-credential-%s failed: %s", helper, type(err).__name__)
        return None
    if result.returncode != 0:
        # "credentials not found in native keychain" is the normal "nothing stored" answer; its output is
        # not logged because a misbehaving helper could echo a secret.
        log.debug("docker-credential-%s has no credentials for %s", helper, server_url)
        return None
    try:
        answer = json.loads(result.stdout)
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("credential helper docker-credential-%s printed something that is not JSON", helper)
        return None
    if not isinstance(answer, dict):
        return None
    username = answer.get("Username") if isinstance(answer.get("Username"), str) else ""
    secret = answer.get("Secret") if isinstance(answer.get("Secret"), str) else ""
    if not secret:
        return None
    if username == IDENTITY_TOKEN_USER:
        return Credentials("", "", identity_token=secret)
    return Credentials(username or "", secret)


class AuthFile:
    """One docker ``config.json`` or podman ``auth.json``: ``auths``, ``credHelpers`` and ``credsStore``."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self._env = env
        self._loaded = False
        self._lock = threading.Lock()
        self._auths: dict[str, Any] = {}
        self._helpers: dict[str, str] = {}
        self._store: str | None = None

    def _load(self) -> None:
        with self._lock:
            if not self._loaded:
                self._parse()
                self._loaded = True

    def _parse(self) -> None:
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            log.warning("ignoring unreadable registry auth file %s: %s", self.path, type(err).__name__)
            return
        if not isinstance(doc, dict):
            log.warning("ignoring registry auth file %s: not a JSON object", self.path)
            return
        auths = doc.get("auths")
        if isinstance(auths, dict):
            for key, entry in auths.items():
                self._auths.setdefault(_hostname(key), entry)
        helpers = doc.get("credHelpers")
        if isinstance(helpers, dict):
            for key, name in helpers.items():
                if isinstance(name, str) and name:
                    self._helpers.setdefault(_hostname(key), name)
        store = doc.get("credsStore")
        self._store = store if isinstance(store, str) and store else None

    def lookup(self, registry: str, repository: str | None) -> Credentials | None:
        self._load()
        for key in lookup_keys(registry, repository):
            helper = self._helpers.get(key)
            if helper is not None:
                found = run_helper(helper, _server_url(key), self._env)
                if found is not None:
                    return found
            found = _from_entry(self._auths.get(key), str(self.path))
            if found is not None:
                return found
        if self._store is not None:
            return run_helper(self._store, _server_url(registry), self._env)
        return None


class Keychain:
    """Credential files consulted in order; the first file with a match wins."""

    def __init__(self, files: Sequence[AuthFile] = ()) -> None:
        self.files = tuple(files)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Keychain:
        """Docker's config (``$DOCKER_CONFIG`` or ``~/.docker``), then podman's ``auth.json`` locations."""
        env = dict(os.environ if env is None else env)
        return cls([AuthFile(path, env) for path in _auth_file_paths(env)])

    def resolve(self, registry: str, repository: str | None = None) -> Credentials | None:
        """Credentials for ``registry`` (and ``repository`` within it), or None for anonymous access.

        Blocking (reads files, may run a credential helper): call it from a worker thread in async code.
        """
        for auth_file in self.files:
            found = auth_file.lookup(registry, repository)
            if found is not None:
                log.debug("using credentials for %s from %s", registry, auth_file.path)
                return found
        return None


def _auth_file_paths(env: Mapping[str, str]) -> Iterable[Path]:
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    yield docker_dir / "config.json"
    if env.get("REGISTRY_AUTH_FILE"):
        yield Path(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        yield Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    yield config_home / "containers" / "auth.json"
