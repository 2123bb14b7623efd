"""Fan-out (``sync --to A --to B``): the destinations are synced concurrently, and each source blob is read once.

Every destination runs its own sync (its own lock, policy checks and state); their sources are wrapped by one
:class:`BlobSpool`, so the first destination that needs a blob downloads it into a spool file and every other
destination copies from that file. Manifests are small and still resolved per destination. The engine verifies
each destination's stream against the digest as usual, so a damaged spool can never be published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.target import ReadTarget, ReferrerSource


class BlobSpool:
    """Blob files downloaded once for several destinations; bounded by the blobs the sync copies. Use as an
    ``async with`` block: the files go when it ends."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._files: dict[str, asyncio.Future[Path]] = {}
        self.downloads = 0
        """How many blobs were read from a source (for tests and the log)."""

    async def __aenter__(self) -> BlobSpool:
        self._dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="trivy-mirror-fanout-"))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for future in self._files.values():
            future.cancel()
        if self._dir is not None:
            await asyncio.to_thread(shutil.rmtree, self._dir, True)

    def wrap(self, source: ReadTarget) -> ReadTarget:
        return SpooledSource(source, self)

    async def path(self, source: ReadTarget, blob: Descriptor) -> Path:
        """The spool file of ``blob``, downloading it once; a failed download is retried by the next caller."""
        key = str(blob.digest)
        future = self._files.get(key)
        if future is None or (future.done() and (future.cancelled() or future.exception() is not None)):
            future = asyncio.ensure_future(self._download(source, blob))
            self._files[key] = future
        return await asyncio.shield(future)

    async def _download(self, source: ReadTarget, blob: Descriptor) -> Path:
        assert self._dir is not None, "use BlobSpool in an async with block"
        self.downloads += 1
        path = self._dir / blob.digest.hex
        partial = path.with_suffix(".partial")
        with partial.open("wb") as file:
            async with contextlib.aclosing(source.fetch_blob(blob)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    await asyncio.to_thread(file.write, chunk)
        os.replace(partial, path)
        return path


class SpooledSource:
    """A source whose blobs come through a :class:`BlobSpool`; everything else goes to the source."""

    def __init__(self, source: ReadTarget, spool: BlobSpool) -> None:
        self._source = source
        self._spool = spool

    @property
    def location(self) -> str:
        return self._source.location

    async def resolve(self, reference: str) -> Descriptor | None:
        return await self._source.resolve(reference)

    async def get_manifest(self, reference: str) -> ManifestBytes:
        return await self._source.get_manifest(reference)

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return await self._source.blob_exists(descriptor)

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The source's referrers (manifests, small: not spooled); none when the source cannot list them."""
        return await self._source.referrers(subject) if isinstance(self._source, ReferrerSource) else []

    async def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        path = await self._spool.path(self._source, descriptor)
        with path.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
                yield chunk
