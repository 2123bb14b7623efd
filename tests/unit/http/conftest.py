"""The transport is exercised through a registry client against the in-memory registry: the same fixtures as
the registry client's tests."""

from __future__ import annotations

from tests.unit.registry.conftest import MakeClient, Serve, fake, fake_host, make_client, serve

__all__ = ["MakeClient", "Serve", "fake", "fake_host", "make_client", "serve"]
