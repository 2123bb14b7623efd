"""A local upstream VEX repository in the GitHub shape, a store, and one-call syncs between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.vex_repo import UpstreamVex, github_tarball, manifest, repository_files
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.engine.events import Listener
from trivy_mirror.http.transport import RetryPolicy, Transport
from trivy_mirror.store import Store
from trivy_mirror.vex import VexSource, sync_vex
from trivy_mirror.vex.extract import Limits

MANIFEST = "/gh/.well-known/vex-repository.json"
ARCHIVE = "/gh/archive/refs/heads/main.tar.gz"


@pytest.fixture
async def vex_upstream() -> AsyncIterator[UpstreamVex]:
    """Serves ``/gh``: a manifest whose location is ``ARCHIVE//vexhub-main``, and that GitHub-shaped archive."""
    server = await UpstreamVex().start()
    server.files[MANIFEST] = manifest(f"{server.url}{ARCHIVE}//vexhub-main")
    server.files[ARCHIVE] = github_tarball(repository_files())
    yield server
    await server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


async def sync(store: Store, upstream: UpstreamVex, *, name: str = "gh", path: str = "/gh", dry_run: bool = False,
               limits: Limits | None = None, events: Listener | None = None) -> TagResult:
    """Sync one repository of ``upstream`` (no retries, so failures are quick)."""
    transport = Transport(retry=RetryPolicy(attempts=1))
    try:
        [result] = await sync_vex(store, [VexSource.parse(f"{name}={upstream.url}{path}")], transport,
                                  dry_run=dry_run, limits=limits, events=events)
    finally:
        await transport.close()
    return result
