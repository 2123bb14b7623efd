"""Image references, parsed with Docker's rules (the places that hold them are :mod:`trivy_mirror.oci.place`).

``aquasec/trivy-db`` is a Docker Hub repository; the first path component names a registry only when it is
``localhost`` or contains ``.`` or ``:`` (as go-containerregistry and Trivy decide).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from trivy_mirror.errors import InvalidDigest, InvalidReference
from trivy_mirror.oci.digest import Digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
MAX_NAME_LENGTH = 255


def is_registry_component(component: str) -> bool:
    """Whether the first path component names a registry (``localhost``, or with ``.`` or ``:``)."""
    return component == "localhost" or "." in component or ":" in component


def validate_registry(host: str) -> str:
    """Return the canonical registry host, or raise for something that is not ``host[:port]``."""
    if not _HOST_RE.fullmatch(host):
        raise InvalidReference(f"invalid registry host {host!r}")
    return DOCKER_HUB if host in _HUB_ALIASES else host


def validate_repository(repository: str) -> str:
    if len(repository) > MAX_NAME_LENGTH or not REPOSITORY_RE.fullmatch(repository):
        raise InvalidReference(
            f"invalid repository name {repository[:100]!r}: lower-case path components of letters, digits and . _ -"
        )
    return repository


def validate_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise InvalidReference(f"invalid tag {tag[:140]!r}")
    return tag


def is_plain_http_allowed(registry: str) -> bool:
    """True for hosts Trivy reaches over plain HTTP without ``--insecure``.

    That is ``localhost``, ``*.localhost``, loopback (127.0.0.0/8, ::1) and RFC 1918 addresses.
    """
    host = host_of(registry)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return is_rfc1918(address)


PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
"""RFC 1918's private IPv4 networks, which Trivy (go-containerregistry) reaches over plain HTTP."""


def is_rfc1918(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    """Whether ``address`` is a private IPv4 address of RFC 1918."""
    return isinstance(address, ipaddress.IPv4Address) and any(address in net for net in PRIVATE_NETWORKS)


def host_of(registry: str) -> str:
    """``host`` of ``host:port`` (brackets stripped from IPv6 literals)."""
    if registry.startswith("["):
        return registry[1 : registry.index("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def api_host(registry: str) -> str:
    """The host that serves the API for a registry name (Docker Hub's differs from its name)."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and is_registry_component(first):
        return validate_registry(first), rest
    return DOCKER_HUB, name


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, default_tag: str | None = "latest") -> Reference:
        if not text or text != text.strip():
            raise InvalidReference(f"invalid reference {text!r}")
        name, at, digest_text = text.partition("@")
        digest = None
        if at:
            try:
                digest = Digest.parse(digest_text)
            except InvalidDigest as err:
                raise InvalidReference(f"invalid reference {text!r}: {err}") from None
        tag = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], validate_tag(name[colon + 1 :])
        registry, repository = _split_registry(name)
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        validate_repository(repository)
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repository, tag, digest)

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
