"""``store_statuses`` (what /readyz and /metrics report) for versions without a sync record: the layer is read
once per digest, like ``status`` reads it, and what is remembered stays bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.trivy_assets import DB_REPOSITORY, Artifact, build_vuln_db
from trivy_mirror.catalog import assets, status
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store

DB = assets.select(["db"])


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def pushed(store: Store, artifact: Artifact) -> None:
    layout = store.layout(DB_REPOSITORY)

    async def write() -> None:
        for digest, blob in artifact.blobs.items():
            await layout.push_blob(Descriptor("application/octet-stream", Digest.parse(digest), len(blob)), _one(blob))
        await layout.tag("2", ManifestBytes(artifact.manifest, mediatype.OCI_MANIFEST))

    asyncio.run(write())


def test_a_pushed_db_is_read_once_per_digest_and_the_memory_is_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "_unknown", type(status._unknown)())
    monkeypatch.setattr(status, "UNKNOWN_CACHE_SIZE", 2)
    reads = []
    real = status._read_unknown

    async def counted(*args: object) -> object:
        reads.append(args)
        return await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(status, "_read_unknown", counted)
    store = Store(tmp_path / "store")
    for year in (2020, 2021, 2022):
        pushed(store, build_vuln_db(updated_at=datetime(year, 1, 1, tzinfo=UTC),
                                    next_update=datetime(year, 1, 2, tzinfo=UTC)))
        for _ in range(3):
            (row,) = status.store_statuses(store, DB)
            assert (row.state, row.next_update) == ("stale", datetime(year, 1, 2, tzinfo=UTC))
    assert len(reads) == 3, "one read per pushed version"
    assert len(status._unknown) == 2
