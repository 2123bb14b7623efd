"""One repository of the store: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``).

skopeo, oras and zot read it as it is. Every write is crash-safe: blobs become visible by renaming complete,
fsynced temp files from ``STORE/.tmp`` into ``blobs/``, and ``index.json`` (the only thing that makes a tag point
somewhere) is replaced last, once everything it references is stored. Writers hold the store lock
(:meth:`Store.lock`); readers need no lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from trivy_mirror.errors import InvalidManifest, NotFound, StoreError
from trivy_mirror.fsutil import (
    commit,
    ensure_dir,
    os_errors,
    touch,
    write_atomic,
)
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor, Index, Manifest, parse_manifest
from trivy_mirror.oci.reference import validate_tag
from trivy_mirror.oci.referrers import MAX_REFERRERS, referrer_descriptor
from trivy_mirror.store import index
from trivy_mirror.store.gc import Unreferenced, sweep
from trivy_mirror.store.paths import (
    BLOBS_DIR,
    GC_FILE,
    INDEX_FILE,
    LAYOUT_FILE,
    STATE_FILE,
    TMP_DIR,
    check_repository,
)
from trivy_mirror.store.stream import has_file, read_blob_file, run_to_completion, write_blob_file
from trivy_mirror.target import ReadTarget

LAYOUT_CONTENT = json.dumps({"imageLayoutVersion": mediatype.OCI_LAYOUT_VERSION}).encode()


class _IndexMutex:
    """A lock that can be weakly referenced (``threading.Lock`` cannot)."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


_index_mutexes: weakref.WeakValueDictionary[Path, _IndexMutex] = weakref.WeakValueDictionary()
_index_mutexes_guard = threading.Lock()


def _index_mutex(path: Path) -> _IndexMutex:
    """One mutex per layout directory among the live Layout objects of this process: index.json updates run in
    worker threads. An entry lives only as long as a Layout holds it, so a server asked about a million
    made-up repository names keeps none of them (nothing keyed by request input may grow without bound).
    """
    with _index_mutexes_guard:
        mutex = _index_mutexes.get(path)
        if mutex is None:
            mutex = _index_mutexes[path] = _IndexMutex()
        return mutex


@dataclass(frozen=True)
class IndexView:
    """One read of a layout's ``index.json``: every question about one version of it answered from it.

    A reader that needs several answers (the tags, the other versions, their manifests) takes one view and
    reads manifests by the descriptors it holds, so a concurrent writer replacing index.json between two of
    its questions cannot make the answers disagree.
    """

    entries: tuple[Descriptor, ...]

    @cached_property
    def tags(self) -> dict[str, Descriptor]:
        """Tag -> index entry of the manifest it points at."""
        return index.tagged(self.entries)


class Layout:
    """One OCI image layout ``STORE/<repository>``; implements :class:`~trivy_mirror.target.WriteTarget`.

    The directory is created by the first write. Tags are index.json entries annotated with
    ``org.opencontainers.image.ref.name``; a tag's earlier versions stay as entries without it until pruned.
    """

    def __init__(self, root: Path, repository: str) -> None:
        self.repository = check_repository(repository)
        self.path = root / repository
        self.location = f"oci-layout:{self.path}"
        self.index_path = self.path / INDEX_FILE
        self._tmp = root / TMP_DIR
        self._mutex = _index_mutex(self.path)

    @classmethod
    def plain(cls, directory: Path) -> Layout:
        """A layout that is a plain directory outside any store (``copy oci-layout:DIR``): no repository-name rules
        apply to it, and temp files go to ``DIR/.tmp`` (the caller removes it when done), never to its parent."""
        layout = cls.__new__(cls)
        layout.repository = directory.name
        layout.path = directory
        layout.location = f"oci-layout:{directory}"
        layout.index_path = directory / INDEX_FILE
        layout._tmp = directory / TMP_DIR
        layout._mutex = _index_mutex(directory)
        return layout

    def __repr__(self) -> str:
        return f"Layout({self.path})"

    # Reading (synchronous: small files).

    def read_index(self) -> IndexView:
        """One consistent read of index.json (empty when the layout does not exist); StoreError when damaged."""
        return IndexView(tuple(self._entries()))

    def tags(self) -> dict[str, Descriptor]:
        """Tag -> index entry of the manifest it points at."""
        return index.tagged(self._entries())

    def manifests(self) -> list[Descriptor]:
        """Every index entry, in push order: tagged ones and older versions kept without a ref.name."""
        return self._entries()

    def manifest_at(self, descriptor: Descriptor) -> ManifestBytes:
        """The manifest a descriptor (from an :class:`IndexView` or an index manifest) names, checked against it.

        StoreError when it is missing or does not match: the store is damaged.
        """
        return ManifestBytes(self._read_manifest_blob(descriptor), descriptor.media_type, descriptor.digest.algorithm)

    def blob_path(self, digest: Digest) -> Path:
        """Where a blob is stored (it may not exist). A parsed Digest cannot traverse out of the layout."""
        return self.path / BLOBS_DIR / digest.algorithm / digest.hex

    def read_manifest(self, reference: str) -> ManifestBytes | None:
        """The exact manifest bytes for a tag or digest, with the media type of its entry; None when absent.

        Raises InvalidReference or InvalidDigest for a malformed reference, StoreError for a damaged store.
        """
        entry = self._find(reference)
        return None if entry is None else self.manifest_at(entry)

    def read_state(self) -> dict[str, Any]:
        """The sync engine's notes (``trivy-mirror.json``); {} when absent or unreadable."""
        try:
            state = json.loads((self.path / STATE_FILE).read_bytes())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def write_state(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, indent=2).encode() + b"\n"
        with os_errors(f"write {self.path / STATE_FILE}"):
            write_atomic(self._tmp, self.path / STATE_FILE, data)

    # Maintenance (synchronous; call under the store lock).

    def prune(self, keep: int) -> list[Digest]:
        """Keep each tag plus its newest ``keep - 1`` older versions in index.json; the removed digests.

        Only index entries go (the referrers of a removed version with it); their blobs stay until
        :meth:`collect_garbage`.
        """
        with self._mutex, os_errors(f"prune {self.location}"):
            kept, removed = index.prune_entries(self._entries(), keep, self._subject_of)
            if removed:
                write_atomic(self._tmp, self.index_path, index.serialize_index(kept))
        still_used = {entry.digest for entry in kept}
        return list(dict.fromkeys(entry.digest for entry in removed if entry.digest not in still_used))

    def collect_garbage(self, grace_seconds: float, now: float | None = None) -> int:
        """Delete blobs that no manifest reachable from index.json references, once they have been unreferenced
        (and unwritten) for the grace period; the bytes freed. When each blob was first found unreferenced is
        recorded in the layout, so the grace period counts from then. Refuses (StoreError) when a manifest
        cannot be read, since its blobs would then be unknown.
        """
        moment = time.time() if now is None else now
        with self._mutex, os_errors(f"collect garbage in {self.location}"):
            keep: set[Digest] = set()
            try:
                for descriptor, parsed in index.walk(self._entries(), self._read_manifest_blob):
                    keep.add(descriptor.digest)
                    keep.update(ref.digest for ref in index.references(parsed))
            except (StoreError, InvalidManifest) as err:
                raise StoreError(f"not collecting garbage in {self.location}: {err}") from None
            record = self._read_unreferenced()
            freed, waiting = sweep(self.path / BLOBS_DIR, keep, grace_seconds, record.since, moment)
            if waiting != record:
                write_atomic(self._tmp, self.path / GC_FILE, waiting.serialize())
            return freed

    def delete_manifest(self, digest: Digest) -> bool:
        """Remove every index entry of ``digest`` (its tags and its history); False when it has none.

        Its blobs stay until :meth:`collect_garbage` finds them unreferenced for the grace period.
        """
        with self._mutex, os_errors(f"delete {digest.short} from {self.location}"):
            updated = index.without_digest(self._entries(), digest)
            if updated is None:
                return False
            write_atomic(self._tmp, self.index_path, index.serialize_index(updated))
            return True

    def delete_tag(self, tag: str) -> bool:
        """Remove a tag; the manifest stays readable by digest (see :func:`index.untag`). False when absent."""
        with self._mutex, os_errors(f"delete tag {tag} from {self.location}"):
            updated = index.untag(self._entries(), validate_tag(tag))
            if updated is None:
                return False
            write_atomic(self._tmp, self.index_path, index.serialize_index(updated))
            return True

    def referencing_manifest(self, digest: Digest) -> Digest | None:
        """A manifest reachable from index.json that references blob ``digest`` (or is it), or None."""
        try:
            for descriptor, parsed in index.walk(self._entries(), self._read_manifest_blob):
                if descriptor.digest == digest or any(ref.digest == digest for ref in index.references(parsed)):
                    return descriptor.digest
        except InvalidManifest as err:
            raise StoreError(f"cannot tell what references {digest.short} in {self.location}: {err}") from None
        return None

    def delete_blob(self, digest: Digest) -> bool:
        """Unlink a blob file at once (downloads that opened it finish); False when it is not there.

        The caller checks first that no manifest references it (:meth:`referencing_manifest`).
        """
        path = self.blob_path(digest)
        with os_errors(f"delete blob {digest.short} from {self.location}"):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True

    def _subject_of(self, descriptor: Descriptor) -> Digest | None:
        """The subject of the manifest an entry names; None when it has none or cannot be read (kept: safe side)."""
        try:
            subject = parse_manifest(self._read_manifest_blob(descriptor), descriptor.media_type).subject
        except (StoreError, InvalidManifest):
            return None
        return None if subject is None else subject.digest

    def _read_unreferenced(self) -> Unreferenced:
        try:
            return Unreferenced.parse((self.path / GC_FILE).read_bytes())
        except FileNotFoundError:
            return Unreferenced()

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The manifests among index.json's entries whose subject is ``subject``, as the referrers API lists them
        (an unreadable entry is skipped: it is no referrer this layout can give)."""
        return await asyncio.to_thread(self._referrers, subject)

    def _referrers(self, subject: Digest) -> list[Descriptor]:
        found: list[Descriptor] = []
        for entry in self._entries():
            if len(found) >= MAX_REFERRERS or any(f.digest == entry.digest for f in found):
                continue
            if self._subject_of(entry) == subject:
                found.append(referrer_descriptor(self.manifest_at(entry)))
        return found

    # ReadTarget

    async def resolve(self, reference: str) -> Descriptor | None:
        entry = self._find(reference)
        # Plain, like a registry's HEAD answer, so descriptors from any two targets compare equal.
        return None if entry is None else Descriptor(entry.media_type, entry.digest, entry.size)

    async def get_manifest(self, reference: str) -> ManifestBytes:
        manifest = self.read_manifest(reference)
        if manifest is None:
            raise NotFound(f"manifest {reference} is not in {self.location}")
        return manifest

    def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        return read_blob_file(self.blob_path(descriptor.digest), descriptor, self.location)

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return self._has_blob(descriptor)

    # WriteTarget

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Store a blob from a stream that raises on bad content (the caller verifies the digest; the size is
        checked here). Nothing becomes visible unless the stream ends cleanly; a blob already stored is kept
        (its time refreshed, so a GC grace period counts from this use) and the stream is only drained.
        """
        await write_blob_file(self.blob_path(descriptor.digest), self._tmp, descriptor, chunks, self.location,
                              on_present=touch)

    async def mount_blob(self, descriptor: Descriptor, source: ReadTarget) -> bool:
        """Hard-link the blob from another layout on the same file system; False when that is not possible."""
        if not isinstance(source, Layout):
            return False
        return await run_to_completion(self._link_blob, descriptor, source)

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        """Store the exact manifest bytes as a blob. Refused (StoreError) unless every blob it references is stored.

        Only the blob is written: that is how an index's children are stored, reachable by digest through their
        index; except a referrer (a manifest with a subject), which gets an untagged entry so that it is found and
        listed.
        """
        parsed = manifest.parsed
        await run_to_completion(self._store_manifest, manifest, parsed, None, parsed.subject is not None)

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        """Point ``tag`` at the manifest by rewriting index.json (storing its bytes first if they are not)."""
        validate_tag(tag)
        await run_to_completion(self._store_manifest, manifest, manifest.parsed, tag)

    async def push_tagged(self, manifest: ManifestBytes, tag: str) -> None:
        """Store and tag with one write of index.json (a tagged referrer gets its tagged entry only)."""
        await self.tag(tag, manifest)

    async def push_untagged(self, manifest: ManifestBytes) -> None:
        """Store a manifest pushed by digest as an untagged index entry (no ref.name), so it is served by digest
        whatever tags point at it and kept until deleted (a referrer, an index's child, an image by digest)."""
        await run_to_completion(self._store_manifest, manifest, manifest.parsed, None, True)

    # Internals

    def _entries(self) -> list[Descriptor]:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise StoreError(f"cannot read {self.index_path}: {err.strerror or err}") from None
        return index.parse_index(data, self.index_path)

    def _find(self, reference: str) -> Descriptor | None:
        entries = self._entries()  # one read: the walk below sees the same version
        if ":" not in reference:
            return index.tagged(entries).get(validate_tag(reference))
        digest = Digest.parse(reference)
        for entry in entries:
            if entry.digest == digest:
                return entry
        # A child of a stored index is served by digest, as a registry would.
        for descriptor, _ in index.walk(entries, self._read_manifest_blob):
            if descriptor.digest == digest:
                return descriptor
        return None

    def _read_manifest_blob(self, descriptor: Descriptor) -> bytes:
        """A manifest's bytes, checked against the descriptor: a mismatch means the store is damaged."""
        path = self.blob_path(descriptor.digest)
        if descriptor.size > MAX_MANIFEST_SIZE:
            raise StoreError(f"{self.index_path} lists {descriptor.digest.short} with a size too large for a manifest")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"store is damaged: manifest {descriptor.digest.short} is missing ({path})") from None
        except OSError as err:
            raise StoreError(f"cannot read {path}: {err.strerror or err}") from None
        if len(data) != descriptor.size or Digest.of(data, descriptor.digest.algorithm) != descriptor.digest:
            raise StoreError(f"store is damaged: {path} does not match its digest and size")
        return data

    def _has_blob(self, descriptor: Descriptor) -> bool:
        return has_file(self.blob_path(descriptor.digest), descriptor.size)

    def _link_blob(self, descriptor: Descriptor, source: Layout) -> bool:
        target = self.blob_path(descriptor.digest)
        action = f"link blob {descriptor.digest.short} into {self.location}"
        if self._has_blob(descriptor):
            with os_errors(action):
                touch(target)
            return True
        if not source._has_blob(descriptor):
            return False
        link = self._tmp / f"{descriptor.digest.hex[:16]}.{uuid.uuid4().hex}.link"
        try:
            ensure_dir(self._tmp)
            os.link(source.blob_path(descriptor.digest), link)
        except OSError:
            return False  # another file system, or one without hard links
        try:
            with os_errors(action):
                touch(link)  # the inode's mtime: a fresh mount must survive the garbage collector's grace period
                commit(link, target)
        except BaseException:
            link.unlink(missing_ok=True)
            raise
        return True

    def _store_manifest(self, manifest: ManifestBytes, parsed: Manifest | Index, tag: str | None,
                        untagged: bool = False) -> None:
        what = f"{self.location}:{tag}" if tag else f"{manifest.digest.short} in {self.location}"
        with self._mutex, os_errors(f"store {what}"):
            for ref in index.references(parsed):
                if self._has_blob(ref):
                    continue
                if ref.data is None:
                    raise StoreError(
                        f"cannot store {what}: blob {ref.digest.short} ({ref.media_type}) is not in the store"
                    )
                write_atomic(self._tmp, self.blob_path(ref.digest), ref.data)
            if self._has_blob(manifest.descriptor):
                touch(self.blob_path(manifest.digest))
            else:
                write_atomic(self._tmp, self.blob_path(manifest.digest), manifest.data)
            if tag is None and not untagged:
                return
            entry = Descriptor(manifest.media_type, manifest.digest, len(manifest.data),
                               {index.REF_NAME: tag} if tag else {}, parsed.artifact_type)
            if tag is None:
                updated = index.add_untagged(self._entries(), entry)
            else:
                updated = index.tag_entries(self._entries(), entry, tag)
            # oci-layout before index.json: a directory with an index is always a complete layout.
            if not (self.path / LAYOUT_FILE).exists():
                write_atomic(self._tmp, self.path / LAYOUT_FILE, LAYOUT_CONTENT)
            if updated is not None:
                write_atomic(self._tmp, self.index_path, index.serialize_index(updated))

    # A part of the layout as a layout of its own (a bundle's export).

    async def subset(self, tagged: Sequence[tuple[str, ManifestBytes]], referrer_depth: int) -> LayoutSubset:
        """The layout holding only ``tagged`` (each tag with its manifest, as the caller read it from one
        :class:`IndexView`) and their referrers, ``referrer_depth`` levels deep, as the files to write for it.

        Its index lists each tag's entry followed by the untagged entries of that tag's referrers (depth first);
        a manifest comes before the blobs it references, each blob once. A tagged manifest takes all its blobs, a
        referrer its distributable ones (the store never holds the others). A damaged store raises StoreError.
        """
        entries: list[Descriptor] = []
        blobs: dict[Digest, Descriptor] = {}
        for tag, manifest in tagged:
            entries.append(Descriptor(manifest.media_type, manifest.digest, len(manifest.data),
                                      {index.REF_NAME: tag}, manifest.parsed.artifact_type))
            self._add_reachable(manifest, blobs, distributable_only=False)
            await self._add_referrers(manifest.digest, entries, blobs, referrer_depth)
        return LayoutSubset(LAYOUT_CONTENT, index.serialize_index(entries), tuple(blobs.values()))

    async def _add_referrers(self, subject: Digest, entries: list[Descriptor], blobs: dict[Digest, Descriptor],
                             depth: int) -> None:
        if depth <= 0:
            return
        for referrer in await self.referrers(subject):
            if referrer.digest in blobs:
                continue
            manifest = self.manifest_at(referrer)
            entries.append(Descriptor(manifest.media_type, manifest.digest, len(manifest.data), {},
                                      referrer.artifact_type))
            self._add_reachable(manifest, blobs, distributable_only=True)
            await self._add_referrers(manifest.digest, entries, blobs, depth - 1)

    def _add_reachable(self, root: ManifestBytes, blobs: dict[Digest, Descriptor], *,
                       distributable_only: bool) -> None:
        """``root``, an index's children, and the blobs of each manifest among them, into ``blobs``."""
        def read(descriptor: Descriptor) -> bytes:
            return root.data if descriptor.digest == root.digest else self._read_manifest_blob(descriptor)

        for descriptor, parsed in index.walk([root.descriptor], read):
            blobs.setdefault(descriptor.digest, descriptor)
            if isinstance(parsed, Manifest):
                for blob in parsed.distributable_blobs if distributable_only else parsed.blobs:
                    blobs.setdefault(blob.digest, blob)


@dataclass(frozen=True)
class LayoutSubset:
    """Part of a layout as the files of an OCI image layout of its own (:meth:`Layout.subset`): once written out,
    a complete layout that skopeo, oras and :meth:`Layout.plain` read."""

    layout_file: bytes
    """The content of its ``oci-layout`` file."""
    index: bytes
    """Its ``index.json``."""
    blobs: tuple[Descriptor, ...]
    """Its blobs, in the order to write them; each is read from :meth:`Layout.blob_path` of the layout."""
