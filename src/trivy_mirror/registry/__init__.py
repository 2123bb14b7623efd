"""Async OCI Distribution client: credentials, authentication, retries and streaming (see ``client``)."""

from trivy_mirror.http.transport import RetryPolicy, Timeouts
from trivy_mirror.registry.client import USER_AGENT, RegistryClient
from trivy_mirror.registry.credentials import Credentials, Keychain
from trivy_mirror.registry.repository import RemoteRepository

__all__ = ["USER_AGENT", "Credentials", "Keychain", "RegistryClient", "RemoteRepository", "RetryPolicy", "Timeouts"]
