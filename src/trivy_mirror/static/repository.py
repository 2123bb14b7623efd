"""One repository of a static tree (``DIR/v2/NAME``) as a :class:`~trivy_mirror.target.WriteTarget`.

Blobs and manifests are stored under their digests, each by renaming a complete, fsynced temp file into place;
a tag is the manifest's bytes at ``manifests/TAG``, replaced by one rename once everything it references is
there. A reader therefore sees the old version or the new one, whole, and never a file being written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from trivy_mirror.errors import InvalidManifest, NotFound, StoreError
from trivy_mirror.fsutil import os_errors, write_atomic
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest
from trivy_mirror.oci.reference import validate_tag
from trivy_mirror.static.paths import BLOBS_DIR, MANIFESTS_DIR, manifest_name
from trivy_mirror.store.stream import has_file, read_blob_file, run_to_completion, write_blob_file

if TYPE_CHECKING:
    from trivy_mirror.static.tree import StaticTree



class StaticRepository:
    """``DIR/v2/NAME``: reads need nothing, writes need the tree's lock."""

    def __init__(self, tree: StaticTree, repository: str) -> None:
        self.tree = tree
        self.repository = repository
        self.path = tree.v2 / repository
        self.location = f"static:{tree.root}:{repository}"

    def __repr__(self) -> str:
        return f"StaticRepository({self.path})"

    def manifest_path(self, reference: str) -> Path:
        return self.path / MANIFESTS_DIR / manifest_name(reference)

    def blob_path(self, digest: Digest) -> Path:
        return self.path / BLOBS_DIR / str(digest)

    def read_manifest(self, reference: str) -> ManifestBytes | None:
        """The manifest a tag or digest names, None when absent; StoreError when the file is damaged."""
        path = self.manifest_path(reference)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"cannot read {path}: {err.strerror or err}") from None
        try:
            manifest = ManifestBytes.of(data, None)
        except InvalidManifest as err:
            raise StoreError(f"static tree is damaged: {path} is not a manifest ({err})") from None
        if ":" in reference and manifest.digest != Digest.parse(reference):
            raise StoreError(f"static tree is damaged: {path} does not match its digest")
        return manifest

    # ReadTarget

    async def resolve(self, reference: str) -> Descriptor | None:
        manifest = await asyncio.to_thread(self.read_manifest, reference)
        return None if manifest is None else manifest.descriptor

    async def get_manifest(self, reference: str) -> ManifestBytes:
        manifest = await asyncio.to_thread(self.read_manifest, reference)
        if manifest is None:
            raise NotFound(f"manifest {reference} is not in {self.location}")
        return manifest

    def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        return read_blob_file(self.blob_path(descriptor.digest), descriptor, self.location)

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return has_file(self.blob_path(descriptor.digest), descriptor.size)

    # WriteTarget

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Store a blob from a verified stream; visible under its digest only once complete."""
        await write_blob_file(self.blob_path(descriptor.digest), self.tree.tmp, descriptor, chunks, self.location)

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        """Store the manifest under its digest. Refused (StoreError) unless everything it references is stored.

        A static tree has no :class:`~trivy_mirror.target.Mounter` ability: it shares no storage with registries,
        blobs are copied.
        """
        await run_to_completion(self._store_manifest, manifest, None)

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        """Rename the manifest's bytes onto ``manifests/TAG`` (storing them under the digest first if they are
        not) and record the tag's history."""
        validate_tag(tag)
        await run_to_completion(self._store_manifest, manifest, tag)

    # Internals

    def _store_manifest(self, manifest: ManifestBytes, tag: str | None) -> None:
        from trivy_mirror.static.sidecar import write_sidecar

        what = f"{self.location}:{tag}" if tag else f"{manifest.digest.short} in {self.location}"
        parsed = manifest.parsed
        with self.tree.mutex, os_errors(f"store {what}"):
            self._check_references(parsed, what)
            by_digest = self.manifest_path(str(manifest.digest))
            if not has_file(by_digest, len(manifest.data)):
                write_atomic(self.tree.tmp, by_digest, manifest.data)
            if tag is None:
                return
            self.tree.prepare(self.repository)
            current = self.read_manifest(tag)
            if current is None or current.digest != manifest.digest:
                write_atomic(self.tree.tmp, self.manifest_path(tag), manifest.data)
            history = self.tree.history(self.repository)
            digests = [d for d in history.get(tag, []) if d != str(manifest.digest)]
            history[tag] = [*digests, str(manifest.digest)]
            self.tree.save_history(self.repository, history)
            write_sidecar(self.tree)

    def _check_references(self, parsed: Manifest | Index, what: str) -> None:
        if isinstance(parsed, Index):
            for child in parsed.manifests:
                if not has_file(self.manifest_path(str(child.digest)), child.size):
                    raise StoreError(f"cannot store {what}: manifest {child.digest.short} is not in the tree")
            return
        for blob in parsed.blobs:
            if has_file(self.blob_path(blob.digest), blob.size):
                continue
            if blob.data is None:
                raise StoreError(f"cannot store {what}: blob {blob.digest.short} ({blob.media_type}) is not in "
                                 f"the tree")
            write_atomic(self.tree.tmp, self.blob_path(blob.digest), blob.data)
