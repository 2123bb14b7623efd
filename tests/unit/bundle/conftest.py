"""Stores holding VEX repositories, written by the VEX sync (the ``full_store`` of Trivy artifacts is in
``tests/unit/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.vex_repo import UpstreamVex, github_tarball, manifest, repository_files
from trivy_mirror.http.transport import RetryPolicy, Transport
from trivy_mirror.store import Store
from trivy_mirror.vex import VexSource, sync_vex

ARCHIVE = "/gh/archive/refs/heads/main.tar.gz"


@pytest.fixture
async def vex_upstream() -> AsyncIterator[UpstreamVex]:
    server = await UpstreamVex().start()
    server.files["/gh/.well-known/vex-repository.json"] = manifest(f"{server.url}{ARCHIVE}//vexhub-main")
    server.files[ARCHIVE] = github_tarball(repository_files())
    yield server
    await server.stop()


async def sync(store: Store, upstream: UpstreamVex) -> None:
    """The VEX repository of ``upstream`` into ``store``, as ``sync --vex-from vexhub=...`` does."""
    transport = Transport(retry=RetryPolicy(attempts=1))
    try:
        [result] = await sync_vex(store, [VexSource.parse(f"vexhub={upstream.url}/gh")], transport)
    finally:
        await transport.close()
    assert result.outcome == "updated", result.message


@pytest.fixture
async def vex_store(tmp_path: Path, vex_upstream: UpstreamVex) -> Store:
    store = Store(tmp_path / "store")
    await sync(store, vex_upstream)
    return store
