"""The one copy engine: any artifact from a ReadTarget to a WriteTarget, byte for byte.

Order of work (oras-go's ``Copy``): resolve the source manifest, stop if the destination already has that
digest, copy every missing blob as a verified stream (server-side mount when both ends share a registry),
push child manifests, and push the root manifest last, so a tag never points at something incomplete.

Every failure of one end is raised as :class:`~trivy_mirror.errors.CopyError` naming that side and its location,
so a caller trying sources in order stops at a destination failure instead of blaming (and retrying) sources.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from trivy_mirror.errors import CopyError, MirrorError, Side
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import verified
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest
from trivy_mirror.target import ReadTarget, WriteTarget

ChunkObserver = Callable[[bytes], Awaitable[None]]
"""Sees every chunk of one blob as it is copied (progress, metadata readers)."""


@dataclass
class CopyStats:
    """What one copy did, for summaries and for proving that a no-op sync transferred nothing."""

    blobs_copied: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes_copied: int = 0
    manifests_pushed: int = 0


@dataclass
class CopyHooks:
    """Optional observers and checks; the engine stays generic, callers make it Trivy-aware."""

    observe_blob: Callable[[Descriptor], ChunkObserver | None] = field(default=lambda _d: None)
    before_publish: Callable[[ManifestBytes], Awaitable[None]] | None = None
    """Runs after every blob is in place and before the manifest is pushed; raising keeps the old tag."""


@contextlib.contextmanager
def side(which: Side, target: ReadTarget) -> Iterator[None]:
    """Raise what fails inside as a :class:`CopyError` of ``which`` side at ``target`` (once: an inner
    CopyError, e.g. a source stream failing inside a destination's push, keeps its side)."""
    try:
        yield
    except CopyError:
        raise
    except (MirrorError, OSError) as err:
        raise CopyError(which, target.location, err) from err


async def copy_blob(src: ReadTarget, dst: WriteTarget, blob: Descriptor, stats: CopyStats,
                    observer: ChunkObserver | None = None) -> None:
    """Copy one blob unless the destination has it; the stream is verified on the way."""
    with side("destination", dst):
        if await dst.blob_exists(blob):
            stats.blobs_skipped += 1
            return
        if observer is None and await dst.mount_blob(blob, src):
            stats.blobs_mounted += 1
            return
        await dst.push_blob(blob, _observed(_source_stream(src, blob), observer))
    stats.blobs_copied += 1
    stats.bytes_copied += blob.size


async def _source_stream(src: ReadTarget, blob: Descriptor) -> AsyncIterator[bytes]:
    """The blob's verified bytes; whatever fails here (reading, the digest check) is the source's failure."""
    raw = _one(blob.data) if blob.data is not None else src.fetch_blob(blob)
    chunks = verified(raw, blob.digest, blob.size)
    async with contextlib.aclosing(raw), contextlib.aclosing(chunks):  # type: ignore[type-var]
        while True:
            with side("source", src):
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
            yield chunk


async def _observed(chunks: AsyncIterator[bytes], observer: ChunkObserver | None) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            if observer is not None:
                await observer(chunk)
            yield chunk


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def copy_manifest_tree(src: ReadTarget, dst: WriteTarget, manifest: ManifestBytes, stats: CopyStats,
                             hooks: CopyHooks) -> None:
    """Copy every blob (and, for an index, every child) that ``manifest`` references; not the manifest itself."""
    parsed = manifest.parsed
    if isinstance(parsed, Manifest):
        for blob in parsed.blobs:
            await copy_blob(src, dst, blob, stats, hooks.observe_blob(blob))
        return
    assert isinstance(parsed, Index)
    for child in parsed.manifests:
        with side("destination", dst):
            if await dst.resolve(str(child.digest)) is not None:
                continue
        with side("source", src):
            child_manifest = await src.get_manifest(str(child.digest))
        await copy_manifest_tree(src, dst, child_manifest, stats, hooks)
        with side("destination", dst):
            await dst.push_manifest(child_manifest, None)
        stats.manifests_pushed += 1


async def copy(src: ReadTarget, manifest: ManifestBytes, dst: WriteTarget, tag: str | None,
               hooks: CopyHooks | None = None) -> CopyStats:
    """Copy an already fetched source manifest and everything it references, then tag it at ``dst``."""
    hooks = hooks or CopyHooks()
    stats = CopyStats()
    await copy_manifest_tree(src, dst, manifest, stats, hooks)
    if hooks.before_publish is not None:
        await hooks.before_publish(manifest)
    with side("destination", dst):
        await dst.push_manifest(manifest, tag)
    stats.manifests_pushed += 1
    return stats
