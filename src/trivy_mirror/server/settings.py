"""Everything ``serve`` is configured with, checked before anything starts."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.errors import InvalidReference, UsageError
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE
from trivy_mirror.oci.reference import validate_repository

DEFAULT_ALIASES: Mapping[str, str] = {
    "aquasecurity/trivy-db": "aquasec/trivy-db",
    "aquasecurity/trivy-java-db": "aquasec/trivy-java-db",
    "aquasecurity/trivy-checks": "aquasec/trivy-checks",
}
"""The ghcr.io names Trivy knows, served from the mirror.gcr.io paths the store keeps."""

DEFAULT_PORT = 5000
LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class ServerSettings:
    """Settings of the embedded server, valid once built: a bad value or combination raises :class:`UsageError`
    from the constructor, so every rule lives here once and the CLI, the runner and the app need not check again."""

    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    public_url: str | None = None
    """Base URL clients use (behind a proxy); the token realm is built on it. Default: the request's Host."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    htpasswd: Path | None = None
    token_file: Path | None = None
    anonymous_pull: bool = False
    allow_push: bool = False
    allow_delete: bool = False
    """Accept DELETE of manifests, tags and blobs from push-capable credentials (with ``allow_push``); the
    version a catalog tag serves is never deleted."""
    push_users: frozenset[str] = frozenset()
    """htpasswd users who may push (with ``allow_push``); every other credential only pulls. Static tokens
    push only when their line in the token file says ``push``."""
    sync_every: float = 6 * 3600.0
    """Seconds between two syncs (``serve --sync-every``, 6h), earlier when a served NextUpdate passes."""
    keep: int = 2
    """Versions of each repository kept by the prune that follows a sync."""
    gc_grace: float = 600.0
    """Unreferenced blobs younger than this survive garbage collection, so running downloads finish."""
    log_format: LogFormat = "text"
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))
    client_max_size: int = MAX_MANIFEST_SIZE + 1024
    """Largest body read into memory (manifests, token forms); blob uploads stream to disk."""
    shutdown_timeout: float = 30.0
    first_request_timeout: float = 30.0
    """A connection that has not sent one complete request by then is closed (slow or silent clients), and so is
    one whose request headers, on any request, are not complete that long after their first byte."""
    token_ttl: int = 300
    token_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False, compare=False)
    """What ``/token`` signs with: made once per serve and handed to every worker process (never written to disk),
    so a token one worker issued is good on all of them."""
    upload_dir: Path | None = None
    """Where unfinished chunked uploads wait; default: a private temporary directory."""
    max_uploads: int = 64
    max_uploads_per_user: int = 8
    """Unfinished upload sessions one credential may hold (of ``max_uploads``)."""
    workers: int = 1
    """Processes serving the port (``SO_REUSEPORT``; the kernel spreads connections); the first one syncs."""
    max_spool_per_user: int = 4 << 30
    """Bytes the unfinished chunked uploads of one credential may spool (Trivy's largest asset is under 1 GiB)."""
    trust: TrustSettings = DEFAULT_TRUST
    """The publish holds (pin, ``--max-shrink``, the archive check, ``--hold``) and ``--provenance``/``--sign``
    also apply to pushes into the catalog's tags (``--quorum`` does not: a push is one source)."""

    @property
    def auth_enabled(self) -> bool:
        return self.htpasswd is not None or self.token_file is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        if self.allow_push and not self.auth_enabled:
            raise UsageError("pushing needs authentication: give an htpasswd file or a token file as well")
        if self.allow_push and not self.push_users and self.token_file is None:
            raise UsageError("nobody may push: name the users allowed to with --push-user NAME "
                             "(or mark tokens with 'push' in a token file)")
        if self.allow_delete and not self.allow_push:
            raise UsageError("--allow-delete needs --allow-push (the push users and push tokens may delete)")
        if self.push_users and not self.allow_push:
            raise UsageError("--push-user needs --allow-push")
        if self.push_users and self.htpasswd is None:
            raise UsageError("--push-user names users of the htpasswd file: give --htpasswd as well")
        if self.anonymous_pull and not self.auth_enabled:
            raise UsageError("anonymous pull only makes sense with an htpasswd file or a token file")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UsageError("TLS needs both a certificate and a key")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise UsageError(f"invalid public URL {self.public_url!r}: expected http(s)://host[:port][/path]")
        if self.sync_every <= 0:
            raise UsageError("the sync interval must be positive")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}")
        if self.workers > 1 and self.allow_push:
            raise UsageError("--workers N runs N processes that do not share upload sessions: not with --allow-push "
                             "(push into a single-process serve, or run replicas behind a load balancer)")
        if self.keep < 1:
            raise UsageError("keep must be at least 1")
        for alias, target in self.aliases.items():
            try:
                validate_repository(alias)
                validate_repository(target)
            except InvalidReference as err:
                raise UsageError(f"invalid alias {alias!r} -> {target!r}: {err}") from None


MAX_WORKERS = 64


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``PORT`` (loopback) into a host and a port."""
    text = listen.strip()
    if text.isascii() and text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise UsageError(f"invalid listen address {listen!r}: expected [IPV6]:PORT")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(f"invalid listen address {listen!r}: expected HOST:PORT (IPv6 as [::1]:PORT)")
    if not host:
        raise UsageError(f"invalid listen address {listen!r}: give a host (0.0.0.0:PORT for every interface)")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"invalid listen address {listen!r}: bad port {port_text!r}")
    return host, int(port_text)
