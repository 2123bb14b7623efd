"""The one copy engine: any artifact from a ReadTarget to a WriteTarget, byte for byte.

Order of work (oras-go's ``Copy``): resolve the source manifest, stop if the destination already has that
digest, copy every missing blob as a verified stream (a mount instead when the destination is a
:class:`~trivy_mirror.target.Mounter` and both ends share a registry or file system), push child manifests,
and push the root manifest last, then tag it (:func:`~trivy_mirror.target.push_and_tag`: one step where the
destination can), so a tag never points at something incomplete. Then,
when asked, the referrers of what was copied (signatures, attestations), as ``oras cp -r`` does.

Every failure of one end is raised as :class:`~trivy_mirror.errors.CopyError` naming that side and its location,
so a caller trying sources in order stops at a destination failure instead of blaming (and retrying) sources.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from trivy_mirror.engine.events import Event, Listener
from trivy_mirror.errors import CopyError, MirrorError, Side
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest, verified
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.target import Mounter, ReadTarget, ReferrerSource, WriteTarget, push_and_tag


@dataclass
class CopyStats:
    """What one copy did, for summaries and for proving that a no-op sync transferred nothing."""

    blobs_copied: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes_copied: int = 0
    manifests_pushed: int = 0
    referrers_copied: int = 0

    def to_json(self) -> dict[str, int]:
        """The keys ``--json`` reports and bundles record."""
        return {"blobs_copied": self.blobs_copied, "blobs_skipped": self.blobs_skipped,
                "blobs_mounted": self.blobs_mounted, "bytes_copied": self.bytes_copied,
                "referrers_copied": self.referrers_copied}


@dataclass
class CopyHooks:
    """The event stream, checks and options of one copy; the engine stays generic, callers make it Trivy-aware."""

    events: Listener | None = None
    """Receives every blob's events (:mod:`trivy_mirror.engine.events`)."""
    read_through: Callable[[Descriptor], bool] = field(default=lambda _d: False)
    """Blobs whose bytes the listener must see: never mounted server-side, streamed through this process."""
    before_publish: Callable[[ManifestBytes], Awaitable[None]] | None = None
    """Runs after every blob is in place and before the manifest is pushed; raising keeps the old tag."""
    concurrency: int = 1
    """How many blobs of one manifest are copied at once."""
    referrer_depth: int = 0
    """How deep the referrers of the copied manifest are copied too (referrers of referrers...); 0: none."""


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
                    hooks: CopyHooks | None = None) -> None:
    """Copy one blob unless the destination has it; the stream is verified on the way."""
    hooks = hooks or CopyHooks()
    emit = hooks.events or _ignore
    with side("destination", dst):
        if await dst.blob_exists(blob):
            stats.blobs_skipped += 1
            await emit(Event("skipped", blob))
            return
        if not hooks.read_through(blob) and isinstance(dst, Mounter) and await dst.mount_blob(blob, src):
            stats.blobs_mounted += 1
            await emit(Event("mounted", blob))
            return
        await emit(Event("start", blob))
        try:
            await dst.push_blob(blob, _observed(_source_stream(src, blob), blob, hooks.events))
        except BaseException:
            await emit(Event("failed", blob))
            raise
    stats.blobs_copied += 1
    stats.bytes_copied += blob.size
    await emit(Event("done", blob))


async def _ignore(_event: Event) -> None:
    pass


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


async def _observed(chunks: AsyncIterator[bytes], blob: Descriptor, listener: Listener | None,
                    ) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            if listener is not None:
                await listener(Event("bytes", blob, chunk))
            yield chunk


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _job(src: ReadTarget, dst: WriteTarget, blob: Descriptor, stats: CopyStats,
         hooks: CopyHooks) -> Callable[[], Awaitable[None]]:
    return lambda: copy_blob(src, dst, blob, stats, hooks)


async def _bounded(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Run ``jobs``, at most ``concurrency`` at once; the first failure cancels the others and is raised."""
    if concurrency <= 1 or len(jobs) <= 1:
        for job in jobs:
            await job()
        return
    limit = asyncio.Semaphore(concurrency)

    async def limited(job: Callable[[], Awaitable[None]]) -> None:
        async with limit:
            await job()

    tasks = [asyncio.ensure_future(limited(job)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def copy_manifest_tree(src: ReadTarget, dst: WriteTarget, manifest: ManifestBytes, stats: CopyStats,
                             hooks: CopyHooks) -> None:
    """Copy every blob (and, for an index, every child) that ``manifest`` references; not the manifest itself."""
    parsed = manifest.parsed
    if isinstance(parsed, Manifest):
        await _bounded([_job(src, dst, blob, stats, hooks) for blob in parsed.blobs], hooks.concurrency)
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
            await dst.push_manifest(child_manifest)
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
        await push_and_tag(dst, manifest, tag)
    stats.manifests_pushed += 1
    if hooks.referrer_depth > 0:
        await copy_referrers(src, dst, manifest.digest, stats, hooks, hooks.referrer_depth)
    return stats


async def copy_referrers(src: ReadTarget, dst: WriteTarget, subject: Digest, stats: CopyStats,
                         hooks: CopyHooks | None = None, depth: int = MAX_DEPTH) -> None:
    """Copy the manifests whose subject is ``subject`` (and theirs, down to ``depth`` levels) that ``dst`` lacks,
    untagged: the destination lists them under their subject. A source that cannot list referrers has none; a
    listed manifest whose own subject is another one (a stale or forged fallback tag) is left out."""
    hooks = hooks or CopyHooks()
    if depth <= 0 or not isinstance(src, ReferrerSource):
        return
    with side("source", src):
        found = await src.referrers(subject)
    for descriptor in found:
        with side("destination", dst):
            present = await dst.resolve(str(descriptor.digest)) is not None
        if not present:
            with side("source", src):
                manifest = await src.get_manifest(str(descriptor.digest))
                refers_to = manifest.parsed.subject
            if refers_to is None or refers_to.digest != subject:
                continue
            await copy_manifest_tree(src, dst, manifest, stats, hooks)
            with side("destination", dst):
                await dst.push_manifest(manifest)
            stats.manifests_pushed += 1
            stats.referrers_copied += 1
        await copy_referrers(src, dst, descriptor.digest, stats, hooks, depth - 1)
