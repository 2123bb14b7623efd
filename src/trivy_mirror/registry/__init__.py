"""Async OCI Distribution client: credentials, authentication, retries and streaming (see ``client``).

The names load on first use: importing a light module of the package (``registry.credentials``, which the client
configuration writer needs) does not load the HTTP client and aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trivy_mirror.lazy import lazy_names

if TYPE_CHECKING:
    from trivy_mirror.http.transport import RetryPolicy, Timeouts
    from trivy_mirror.registry.client import USER_AGENT, RegistryClient
    from trivy_mirror.registry.credentials import Credentials, Keychain
    from trivy_mirror.registry.repository import RemoteRepository

_LAZY = {
    "RetryPolicy": "trivy_mirror.http.transport", "Timeouts": "trivy_mirror.http.transport",
    "USER_AGENT": "trivy_mirror.registry.client", "RegistryClient": "trivy_mirror.registry.client",
    "Credentials": "trivy_mirror.registry.credentials", "Keychain": "trivy_mirror.registry.credentials",
    "RemoteRepository": "trivy_mirror.registry.repository",
}


__getattr__ = lazy_names(__name__, _LAZY)


__all__ = ["USER_AGENT", "Credentials", "Keychain", "RegistryClient", "RemoteRepository", "RetryPolicy", "Timeouts"]
