"""Manifests and tag lists held in memory, one immutable snapshot per repository.

A snapshot is rebuilt when the repository's ``index.json`` changes (checked by stat at most once a second, or
at once after :meth:`ManifestCache.invalidate`) and replaced as a whole, so a new version becomes visible
atomically. Blob files are not cached: downloads that already opened the old file finish on it, because the
store never rewrites a blob and collects unreferenced ones only after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from trivy_mirror.errors import InvalidReference, MirrorError
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.manifest import Descriptor, Index
from trivy_mirror.server.errors import API_VERSION_HEADER
from trivy_mirror.server.storage import ServedLayout, ServedStore
from trivy_mirror.server.watch import FileWatch, Signature, signature

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServedManifest:
    """The exact bytes and the ready-made headers of one manifest answer."""

    body: bytes
    headers: Mapping[str, str]
    etag: str

    @classmethod
    def of(cls, manifest: ManifestBytes) -> ServedManifest:
        digest = str(manifest.digest)
        etag = f'"{digest}"'
        headers = {"Content-Type": manifest.media_type, "Docker-Content-Digest": digest, "ETag": etag,
                   **API_VERSION_HEADER}
        return cls(manifest.data, headers, etag)


@dataclass(frozen=True)
class Snapshot:
    """One repository as served: manifests by tag and by digest, and the sorted tag names."""

    layout: ServedLayout
    manifests: Mapping[str, ServedManifest]
    tags: tuple[str, ...]


def load_snapshot(layout: ServedLayout) -> Snapshot:
    """Every manifest one read of the layout's index reaches (index children included, so digest pulls work).

    One read: the tags and the manifests come from the same version of index.json, whatever a concurrent sync
    writes meanwhile (the blobs of a version it lists outlive its removal by the GC grace period), so a manifest
    left out with a warning is really missing or damaged.
    """
    view = layout.read_index()
    by_digest: dict[str, ServedManifest] = {}
    pending: list[Descriptor] = list(reversed(view.entries))
    while pending:
        descriptor = pending.pop()
        key = str(descriptor.digest)
        if key in by_digest:
            continue
        try:
            manifest = layout.manifest_at(descriptor)
            parsed = manifest.parsed
        except MirrorError as err:
            log.warning("%s: not serving manifest %s: %s", layout.repository, key, err)
            continue
        by_digest[key] = ServedManifest.of(manifest)
        if isinstance(parsed, Index):
            pending.extend(reversed(parsed.manifests))
    served: dict[str, ServedManifest] = dict(by_digest)
    for tag, descriptor in view.tags.items():
        if str(descriptor.digest) in by_digest:
            served[tag] = by_digest[str(descriptor.digest)]
    return Snapshot(layout, served, tuple(sorted(tag for tag in view.tags if tag in served)))


@dataclass(eq=False)
class _Entry:
    layout: ServedLayout
    watch: FileWatch
    snapshot: Snapshot | None = None
    loaded: Signature | None = None
    generation: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ManifestCache:
    """Snapshots of the store's repositories; only repositories that exist get an entry, so it stays bounded."""

    def __init__(self, store: ServedStore) -> None:
        self._store = store
        self._entries: dict[str, _Entry] = {}

    def layout(self, repository: str) -> ServedLayout | None:
        """The layout of a repository (which may not exist yet), or None when the store refuses the name."""
        entry = self._entries.get(repository)
        if entry is not None:
            return entry.layout
        try:
            return self._store.layout(repository)
        except InvalidReference:
            return None

    async def get(self, repository: str) -> Snapshot | None:
        """The current snapshot, or None when the repository is not in the store."""
        entry = self._entries.get(repository)
        if entry is None:
            layout = self.layout(repository)
            if layout is None or signature(layout.index_path) is None:
                return None
            entry = self._entries.setdefault(repository, _Entry(layout, FileWatch(layout.index_path)))
        if entry.watch.check():
            await self._reload(repository, entry)
        return entry.snapshot

    def invalidate(self, repository: str | None = None) -> None:
        """Make the next request re-read ``repository`` (every repository when None), whatever its stat says."""
        for name, entry in self._entries.items():
            if repository is None or name == repository:
                entry.watch.force()

    async def _reload(self, repository: str, entry: _Entry) -> None:
        generation = entry.generation
        async with entry.lock:
            if entry.generation != generation:
                return  # another request reloaded it while this one waited
            entry.generation += 1
            current = signature(entry.layout.index_path)
            if current is None:
                self._entries.pop(repository, None)
                entry.snapshot = None
                entry.watch.mark(None)
                return
            try:
                snapshot = await asyncio.to_thread(load_snapshot, entry.layout)
            except (OSError, MirrorError) as err:
                log.warning("%s: cannot read the repository, serving the previous version: %s", repository, err)
                entry.watch.mark(entry.loaded)
                return
            entry.snapshot, entry.loaded = snapshot, current
            entry.watch.mark(current)
