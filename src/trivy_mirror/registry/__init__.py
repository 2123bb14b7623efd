"""Async OCI Distribution client: credentials, authentication, retries and streaming (see ``client``)."""

from trivy_mirror.registry.client import USER_AGENT, RegistryClient
from trivy_mirror.registry.credentials import Credentials, Keychain
from trivy_mirror.registry.repository import RemoteRepository
from trivy_mirror.registry.transport import RetryPolicy, Timeouts

__all__ = ["USER_AGENT", "Credentials", "Keychain", "RegistryClient", "RemoteRepository", "RetryPolicy", "Timeouts"]
