"""The fan-out's blob spool: a blob is read from its source once however many destinations ask at once, and a
failed read is not kept (the next caller reads again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from trivy_mirror.errors import MirrorError
from trivy_mirror.mirror.fanout import BlobSpool
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor

DATA = b"x" * 300_000
BLOB = Descriptor("application/octet-stream", Digest.of(DATA), len(DATA))


class CountingSource:
    location = "source"

    def __init__(self, fail_first: bool = False) -> None:
        self.reads = 0
        self.fail_first = fail_first

    async def resolve(self, reference: str) -> Descriptor | None:
        return None

    async def get_manifest(self, reference: str) -> ManifestBytes:
        raise AssertionError("not used")

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return True

    async def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        self.reads += 1
        await asyncio.sleep(0.05)
        if self.fail_first and self.reads == 1:
            raise MirrorError("connection reset")
        for start in range(0, len(DATA), 65536):
            yield DATA[start:start + 65536]


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_one_read_for_many_destinations() -> None:
    source = CountingSource()
    async with BlobSpool() as spool:
        copies = await asyncio.gather(*(read_all(spool.wrap(source).fetch_blob(BLOB)) for _ in range(8)))
        assert spool.downloads == 1
    assert source.reads == 1 and all(copy == DATA for copy in copies)


async def test_a_failed_read_is_retried_by_the_next_caller() -> None:
    source = CountingSource(fail_first=True)
    async with BlobSpool() as spool:
        with pytest.raises(MirrorError, match="connection reset"):
            await read_all(spool.wrap(source).fetch_blob(BLOB))
        assert await read_all(spool.wrap(source).fetch_blob(BLOB)) == DATA
    assert source.reads == 2
