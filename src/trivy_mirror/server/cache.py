"""Manifests and tag lists held in memory, one immutable snapshot per repository.

A snapshot is rebuilt when the repository's ``index.json`` changes (checked by stat at most once a second, or
at once on :meth:`ManifestCache.refresh`) and replaced as a whole, so a new version becomes visible atomically;
readers keep the previous snapshot while the next one loads. Blob files are not cached: downloads that already
opened the old file finish on it, because the store never rewrites a blob and collects unreferenced ones only
a grace period after they stopped being referenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import InvalidReference, MirrorError
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.manifest import Descriptor, Index
from trivy_mirror.oci.referrers import referrer_descriptor
from trivy_mirror.server.errors import API_VERSION_HEADER
from trivy_mirror.server.storage import ServedLayout, ServedStore
from trivy_mirror.server.watch import CHECK_INTERVAL, FileWatch, Signature, signature

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
    """One repository as served: manifests by tag and by digest, the sorted tag names, and the referrers
    (manifests with a ``subject``) by their subject's digest, as the referrers API lists them."""

    layout: ServedLayout
    manifests: Mapping[str, ServedManifest]
    tags: tuple[str, ...]
    referrers: Mapping[str, tuple[Descriptor, ...]] = field(default_factory=dict)


def load_snapshot(layout: ServedLayout) -> Snapshot:
    """Every manifest one read of the layout's index reaches (index children included, so digest pulls work).

    One read: the tags and the manifests come from the same version of index.json, whatever a concurrent sync
    writes meanwhile (the blobs of a version it lists outlive its removal by the GC grace period), so a manifest
    left out with a warning is really missing or damaged.
    """
    view = layout.read_index()
    by_digest: dict[str, ServedManifest] = {}
    referrers: dict[str, list[Descriptor]] = {}
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
        if parsed.subject is not None:
            referrers.setdefault(str(parsed.subject.digest), []).append(referrer_descriptor(manifest))
        if isinstance(parsed, Index):
            pending.extend(reversed(parsed.manifests))
    served: dict[str, ServedManifest] = dict(by_digest)
    for tag, descriptor in view.tags.items():
        if str(descriptor.digest) in by_digest:
            served[tag] = by_digest[str(descriptor.digest)]
    return Snapshot(layout, served, tuple(sorted(tag for tag in view.tags if tag in served)),
                    {subject: tuple(found) for subject, found in referrers.items()})


@dataclass(eq=False)
class _Entry:
    layout: ServedLayout
    watch: FileWatch
    snapshot: Snapshot | None = None
    loaded: Signature | None = None
    dirty: bool = True
    """A load must start (again): set by a change noticed or a refresh, cleared when a load starts."""
    loading: asyncio.Task[None] | None = field(default=None, repr=False)


class ManifestCache:
    """Snapshots of the store's repositories; only repositories that exist get an entry, so it stays bounded.

    A reload runs in a background task, one per repository at a time, and readers are never made to wait for
    it: they get the previous snapshot until the new one is complete (only a repository's first load is
    waited for, there being nothing to serve before it). A watcher task checks every loaded repository's
    index once per :data:`CHECK_INTERVAL`, so another process's sync is picked up without waiting for a
    request to notice it. Call :meth:`close` at shutdown.
    """

    def __init__(self, store: ServedStore, clock: Clock = SYSTEM) -> None:
        self._store = store
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._watcher: asyncio.Task[None] | None = None

    @property
    def store(self) -> ServedStore:
        return self._store

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
            entry = self._entries.setdefault(repository, _Entry(layout, FileWatch(layout.index_path, self._clock)))
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="trivy-mirror-index-watch")
        self._check(repository, entry)
        if entry.snapshot is None and entry.loading is not None:
            await asyncio.shield(entry.loading)
        return entry.snapshot

    async def close(self) -> None:
        """Stop the watcher and wait for loads in progress (at shutdown)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        loads = [entry.loading for entry in self._entries.values() if entry.loading is not None]
        if loads:
            await asyncio.wait(loads)

    async def _watch(self) -> None:
        while True:
            await self._clock.sleep(CHECK_INTERVAL)
            for name, entry in list(self._entries.items()):
                self._check(name, entry)

    def _check(self, repository: str, entry: _Entry) -> None:
        """Start a reload when the index changed (cheap: a stat at most once per interval)."""
        if entry.watch.check() and (entry.loading is None or entry.loading.done()):
            entry.dirty = True
            self._start(repository, entry)

    async def refresh(self, repository: str | None = None) -> None:
        """Re-read ``repository`` (every known one when None) now and wait until the new snapshot is served.

        For writers in this process (a push, the sync loop): what they wrote is visible when this returns.
        Readers meanwhile keep the previous snapshot.
        """
        loads = []
        for name, entry in list(self._entries.items()):
            if repository is None or name == repository:
                entry.dirty = True
                loads.append(self._start(name, entry))
        if loads:
            await asyncio.shield(asyncio.gather(*loads))

    def _start(self, repository: str, entry: _Entry) -> asyncio.Task[None]:
        if entry.loading is None or entry.loading.done():
            entry.loading = asyncio.create_task(self._load(repository, entry), name=f"trivy-mirror-load-{repository}")
        return entry.loading

    async def _load(self, repository: str, entry: _Entry) -> None:
        """Load until no change is pending: a refresh during a load gets a load that started after it."""
        while entry.dirty:
            entry.dirty = False
            current = signature(entry.layout.index_path)
            if current is None:
                if self._entries.get(repository) is entry:
                    del self._entries[repository]
                entry.snapshot = None
                entry.watch.mark(None)
                return
            try:
                snapshot = await asyncio.to_thread(load_snapshot, entry.layout)
            except (OSError, MirrorError) as err:
                log.warning("%s: cannot read the repository, serving the previous version: %s", repository, err)
                entry.watch.mark(entry.loaded)
                continue
            entry.snapshot, entry.loaded = snapshot, current
            entry.watch.mark(current)
