"""The source loop of ``sync``: a destination failure is blamed on the destination once, not on every source."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from support.trivy_assets import build_vuln_db
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.mirror.assetsync import AssetSync
from trivy_mirror.mirror.endpoints import RegistryPool, StoreDestination
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.oci.place import Place
from trivy_mirror.store import Layout, Store
from trivy_mirror.target import WriteTarget

DB = CATALOG[0]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class _Sources:
    """Every source registry reads the same store layout; records which registries were asked."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.asked: list[str] = []

    async def client(self, registry: str) -> _Sources:
        self.asked.append(registry)
        return self

    def repository(self, name: str) -> Layout:
        return self.store.layout(name)


class _FullLayout(Layout):
    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


class _FullDisk(StoreDestination):
    async def target(self, repository: str) -> WriteTarget:
        return _FullLayout(self.store.root, repository)


async def test_a_full_disk_stops_the_source_loop(tmp_path: Path) -> None:
    source = Store(tmp_path / "source")
    artifact = build_vuln_db()
    layout = source.layout(DB.mirror_repository)
    for blob in (artifact.config, *artifact.layers):
        await layout.push_blob(Descriptor("application/octet-stream", Digest.of(blob), len(blob)), _one(blob))
    await layout.tag("2", ManifestBytes(artifact.manifest, mediatype.OCI_MANIFEST))
    sources = _Sources(source)
    sync = AssetSync([Place("one.invalid", "aquasec"), Place("two.invalid", "aquasec")],
                     cast(RegistryPool, sources), _FullDisk(Store(tmp_path / "full")))
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "failed"
    assert result.message.startswith(f"cannot write to oci-layout:{tmp_path / 'full' / DB.mirror_repository}: ")
    assert "No space left on device" in result.message
    assert sources.asked == ["one.invalid"]
