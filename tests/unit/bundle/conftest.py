"""Stores holding real Trivy artifacts and VEX repositories, written through the store's own API and sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.trivy_assets import Artifact, AssetSet
from support.vex_repo import UpstreamVex, github_tarball, manifest, repository_files
from trivy_mirror.http.transport import RetryPolicy, Transport
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store
from trivy_mirror.vex import VexSource, sync_vex


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(store: Store, repository: str, tag: str, artifact: Artifact) -> None:
    """Store ``artifact`` under ``repository:tag`` as sync would leave it (without sync's state notes)."""
    layout = store.layout(repository)
    for blob in artifact.blobs.values():
        await layout.push_blob(Descriptor("application/octet-stream", Digest.of(blob), len(blob)), _one(blob))
    await layout.tag(tag, ManifestBytes(artifact.manifest, artifact.media_type))


@pytest.fixture
async def full_store(tmp_path: Path, assets: AssetSet) -> Store:
    """A store with the four upstream tags."""
    store = Store(tmp_path / "store")
    for repository, tag, artifact in assets.upstream_tags():
        await put(store, repository, tag, artifact)
    return store


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
