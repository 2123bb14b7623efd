"""Stores holding real Trivy artifacts, written through the store's own API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.trivy_assets import Artifact, AssetSet
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(store: Store, repository: str, tag: str, artifact: Artifact) -> None:
    """Store ``artifact`` under ``repository:tag`` as sync would leave it (without sync's state notes)."""
    layout = store.layout(repository)
    for blob in artifact.blobs.values():
        await layout.push_blob(Descriptor("application/octet-stream", Digest.of(blob), len(blob)), _one(blob))
    await layout.push_manifest(ManifestBytes(artifact.manifest, artifact.media_type), tag)


@pytest.fixture
async def full_store(tmp_path: Path, assets: AssetSet) -> Store:
    """A store with the four upstream tags."""
    store = Store(tmp_path / "store")
    for repository, tag, artifact in assets.upstream_tags():
        await put(store, repository, tag, artifact)
    return store
