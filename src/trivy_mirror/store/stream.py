"""Writing a blob stream to a file without holding the event loop, at close to disk speed.

Chunks are gathered into batches that a worker thread writes while the loop gathers (and the caller hashes) the
next batch, so network, hashing and disk overlap. Memory is bounded by two batches.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from trivy_mirror.errors import VerificationError
from trivy_mirror.fsutil import commit_file, open_temp, os_errors, read_chunks
from trivy_mirror.oci.manifest import Descriptor

BATCH_SIZE = 8 * 1024 * 1024
FLUSH_SIZE = 64 * 1024 * 1024

T = TypeVar("T")


class _SizeCheck:
    """The descriptor's size, checked as bytes arrive so an over-long stream cannot fill the disk."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.received = 0

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.descriptor.size:
            raise VerificationError(
                f"blob {self.descriptor.digest.short} is longer than the expected {self.descriptor.size} bytes"
            )

    def finish(self) -> None:
        if self.received != self.descriptor.size:
            raise VerificationError(
                f"blob {self.descriptor.digest.short} has {self.received} bytes, expected {self.descriptor.size}"
            )


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close an abandoned async generator now, so its source (an HTTP response, a file) is released."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def drain(chunks: AsyncIterator[bytes], descriptor: Descriptor) -> None:
    """Consume a stream whose blob is already stored: the caller's verification still runs to the end."""
    check = _SizeCheck(descriptor)
    try:
        async for chunk in chunks:
            check.add(chunk)
        check.finish()
    finally:
        await _close(chunks)


class _Writer:
    """Writes batches in a worker thread, one at a time, and every FLUSH_SIZE bytes starts an fdatasync in
    another: the disk then works while the caller hashes the rest, instead of all at the final fsync.
    """

    def __init__(self, file: BinaryIO, action: str) -> None:
        self.file = file
        self.action = action
        self.loop = asyncio.get_running_loop()
        self.writing: asyncio.Future[None] | None = None
        self.flushing: asyncio.Future[None] | None = None
        self.unflushed = 0

    async def write(self, batch: list[bytes], size: int) -> None:
        """Queue ``batch`` once the previous one is written (so at most two batches are held)."""
        if self.writing is not None:
            with os_errors(self.action):
                await self.writing
        self.writing = self.loop.run_in_executor(None, self.file.writelines, batch)
        self.unflushed += size
        if self.unflushed >= FLUSH_SIZE and (self.flushing is None or self.flushing.done()):
            if self.flushing is not None:
                with os_errors(self.action):
                    self.flushing.result()
            self.flushing = self.loop.run_in_executor(None, os.fdatasync, self.file.fileno())
            self.unflushed = 0

    async def finish(self) -> None:
        """Wait for what is in flight, raising its errors."""
        for future in (self.writing, self.flushing):
            if future is not None:
                with os_errors(self.action):
                    await future
        self.writing = self.flushing = None

    async def abandon(self) -> None:
        """Wait for what is in flight, ignoring its errors: the file must not be closed under a worker."""
        futures = [f for f in (self.writing, self.flushing) if f is not None]
        if futures:
            await asyncio.wait(futures)
            for future in futures:
                if not future.cancelled():
                    future.exception()  # retrieved so asyncio does not log it; the error already raised wins


async def write_stream(file: BinaryIO, chunks: AsyncIterator[bytes], descriptor: Descriptor, action: str) -> None:
    """Write every chunk to ``file``; raises what the stream raises, VerificationError on a wrong size.

    ``action`` completes "cannot ..." in the StoreError raised when the disk refuses a write.
    """
    check = _SizeCheck(descriptor)
    writer = _Writer(file, action)
    batch: list[bytes] = []
    batched = 0
    try:
        async for chunk in chunks:
            check.add(chunk)
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH_SIZE:
                await writer.write(batch, batched)
                batch, batched = [], 0
        check.finish()
        if batch:
            await writer.write(batch, batched)
        await writer.finish()
    finally:
        await writer.abandon()
        await _close(chunks)


async def run_to_completion(func: Callable[..., T], *args: object) -> T:
    """Run ``func`` in a worker thread; when cancelled, wait for it to finish before letting the cancel through.

    Cleanup code that runs on cancellation (closing a file, deleting a temp file) then never races the thread.
    """
    future = asyncio.get_running_loop().run_in_executor(None, func, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def has_file(path: Path, size: int) -> bool:
    """Whether ``path`` holds a complete file of ``size`` bytes (a blob or manifest named by its digest)."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


async def read_blob_file(path: Path, descriptor: Descriptor, location: str) -> AsyncIterator[bytes]:
    """The chunks of a blob kept as a file; NotFound naming ``location`` when it is absent."""
    async for chunk in read_chunks(path, f"blob {descriptor.digest.short} is not in {location}"):
        yield chunk


async def write_blob_file(path: Path, tmp_dir: Path, descriptor: Descriptor, chunks: AsyncIterator[bytes],
                          location: str, on_present: Callable[[Path], None] | None = None) -> None:
    """Store a blob as the file ``path`` from a stream that raises on bad content (the caller verifies the
    digest; the size is checked here). It becomes visible only once complete (a temp file in ``tmp_dir``,
    fsynced and renamed); a blob already there is kept, the stream only drained, and ``on_present`` called on it.
    """
    action = f"write blob {descriptor.digest.short} to {location}"
    if has_file(path, descriptor.size):
        await drain(chunks, descriptor)
        if on_present is not None:
            with os_errors(action):
                on_present(path)
        return
    await write_file(path, tmp_dir, descriptor, chunks, action)


async def write_file(path: Path, tmp_dir: Path, descriptor: Descriptor, chunks: AsyncIterator[bytes],
                     action: str) -> None:
    """Write the file ``path`` (replacing it) from a stream that raises on bad content, crash-safely: a temp file
    in ``tmp_dir`` (on the file system of ``path``), fsynced and renamed once complete, removed when anything
    fails. The size is checked against ``descriptor``; ``action`` completes "cannot ..." in a StoreError.
    """
    with os_errors(action):
        file, tmp = open_temp(tmp_dir, descriptor.digest.hex[:16])
    try:
        await write_stream(file, chunks, descriptor, action)
        with os_errors(action):
            await run_to_completion(commit_file, file, tmp, path)
    except BaseException:
        file.close()
        tmp.unlink(missing_ok=True)
        raise
