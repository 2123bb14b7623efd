"""Fixtures for the registry client's unit tests: an in-memory registry on a loopback port, fast clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from ssl import SSLContext
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from trivy_mirror.registry import Keychain, RegistryClient, RetryPolicy, Timeouts

from .fake_registry import FakeRegistry

FAST_RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05, retry_after_floor=0.01,
                         retry_after_cap=5.0)
FAST_TIMEOUTS = Timeouts(connect=2.0, read=1.0, probe=1.0)

Serve = Callable[..., Awaitable[TestServer]]
"""``serve(app, ssl=None)``."""
MakeClient = Callable[..., RegistryClient]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp app on a free 127.0.0.1 port; stopped after the test."""
    servers: list[TestServer] = []

    async def start(app: web.Application, ssl: SSLContext | None = None) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=ssl)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
async def fake_host(fake: FakeRegistry, serve: Serve) -> str:
    server = await serve(fake.app())
    return f"127.0.0.1:{server.port}"


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(host, credentials=None, **options)``: a client with fast retries and no keychain."""
    clients: list[RegistryClient] = []

    def make(host: str, *args: Any, **options: Any) -> RegistryClient:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeouts", FAST_TIMEOUTS)
        options.setdefault("keychain", Keychain())
        client = RegistryClient(host, *args, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
