"""Fixtures for the server tests: a real store, apps served on loopback through aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.clock import SYSTEM
from trivy_mirror.server.app import create_app, runner_options
from trivy_mirror.server.scheduler import SyncScheduler
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .helpers import Artifact, populate

USER, PASSWORD = "alice", "s3cret-pw"
PULL_USER, PULL_PASSWORD = "bob", "bob-reads-only"
STATIC_TOKEN = "static-token-0123456789"
PUSH_TOKEN = "push-token-9876543210"

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
async def db(store: Store) -> Artifact:
    """``aquasec/trivy-db:2`` with a 100 kB layer."""
    return await populate(store, "aquasec/trivy-db", "2", bytes(range(256)) * 400)


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    """An htpasswd file as ``htpasswd -B`` writes it (``$2y$``), at a low cost to keep the tests fast.

    ``USER`` is the one the push tests name as a push user; ``PULL_USER`` stays pull-only.
    """
    lines = [f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode().replace('$2b$', '$2y$', 1)}"
             for user, password in ((USER, PASSWORD), (PULL_USER, PULL_PASSWORD))]
    path = tmp_path / "htpasswd"
    path.write_text("# users\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# tokens\n\n{STATIC_TOKEN}\n{PUSH_TOKEN} push\n")
    return path


@pytest.fixture
async def make_client(store: Store) -> AsyncIterator[ClientFactory]:
    """``await make_client(settings=..., statuses=..., scheduler=..., clock=...)``: a client of a freshly started
    app."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(settings: ServerSettings | None = None, *, statuses: Callable[[], list[AssetStatus]] | None = None,
                   scheduler: SyncScheduler | None = None, **kwargs: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(settings or ServerSettings(), kwargs.pop("served_store", store),
                         statuses or (lambda: []), scheduler, clock=kwargs.pop("clock", SYSTEM))
        server = TestServer(app)
        await server.start_server(**runner_options(app))
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
