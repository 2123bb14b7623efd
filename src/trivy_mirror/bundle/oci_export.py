"""The ``oci`` section on export: the current version of each OCI asset, as an OCI image layout per repository.

``oci/aquasec/trivy-db/{oci-layout,index.json,blobs/sha256/...}`` holds only the tags being exported, so after
``tar x`` each directory is a complete layout (``skopeo inspect oci:oci/aquasec/trivy-db:2``). Within a repository
the manifest blob comes before the blobs it references: an import learns the layer digest before the layer
arrives and reads the DB's ``metadata.json`` while the layer streams past.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.bundle.sections import ExportPart, SourceFile
from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.catalog.state import tag_record
from trivy_mirror.errors import BundleError, MirrorError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store import Layout, LayoutSubset, Store
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

ROOT = "oci"
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
"""The members of ``oci/REPOSITORY/``, named as the OCI image-layout specification names a layout's files, so
that after ``tar x`` the directory is a layout skopeo reads, and an import stages it as a layout the store reads.
They equal the store's own file names because the store keeps each repository as an OCI image layout too; they
are the bundle format's all the same (a bundle is an exchange format: how the store keeps its files may change,
what a bundle holds may not)."""


def member(repository: str, name: str) -> str:
    """The path of a layout's file (:data:`LAYOUT_FILE`, :data:`INDEX_FILE`) in the bundle."""
    return f"{ROOT}/{repository}/{name}"


def blob_member(repository: str, digest: Digest) -> str:
    return f"{ROOT}/{repository}/{BLOBS_DIR}/{digest.algorithm}/{digest.hex}"


def _generated(path: str, data: bytes) -> SourceFile:
    return SourceFile(BundleFile(path, Digest.of(data), len(data)), data=data)


class OciExport:
    """Collects the selected assets from the store."""

    kind = "oci"

    def __init__(self, store: Store, specs: Sequence[AssetSpec]) -> None:
        self.store = store
        self.specs = list(specs)

    async def collect(self) -> ExportPart:
        entries: list[AssetEntry] = []
        files: list[SourceFile] = []
        for spec in self.specs:
            part = await self._repository(spec)
            entries.extend(part.assets)
            files.extend(part.files)
        return ExportPart(tuple(entries), tuple(files))

    async def _repository(self, spec: AssetSpec) -> ExportPart:
        layout = self.store.layout(spec.mirror_repository)
        tags = layout.read_index().tags  # one read: a concurrent sync cannot move a tag between two questions
        missing = [t.tag for t in spec.tags if t.required and t.tag not in tags]
        if missing:
            raise BundleError(
                f"the store {self.store.root} has no {spec.mirror_repository}:{missing[0]}; run trivy-mirror sync "
                f"first, or leave {spec.name} out with --assets"
            )
        entries: list[AssetEntry] = []
        tagged: list[tuple[str, ManifestBytes]] = []
        for tag in (t.tag for t in spec.tags if t.tag in tags):
            manifest = layout.manifest_at(tags[tag])  # a damaged store raises StoreError
            parsed = manifest.parsed
            if not isinstance(parsed, Manifest):
                raise BundleError(f"{spec.mirror_repository}:{tag} in the store is an image index, not a Trivy "
                                  f"{spec.name} artifact; not exporting it")
            entries.append(await self._entry(spec, layout, tag, manifest, parsed))
            tagged.append((tag, manifest))
        # The referrers (signatures, attestations) go too, as untagged entries: import restores them under their
        # subject.
        subset = await layout.subset(tagged, MAX_DEPTH)
        return ExportPart(tuple(entries), _files(spec.mirror_repository, layout, subset))

    async def _entry(self, spec: AssetSpec, layout: Layout, tag: str, manifest: ManifestBytes,
                     parsed: Manifest) -> AssetEntry:
        record = tag_record(layout.read_state(), tag)
        if record is not None and record.digest != str(manifest.digest):
            record = None
        metadata = record.metadata if record is not None else None
        if spec.has_metadata and metadata is None and len(parsed.layers) == 1:
            metadata = await self._read_metadata(spec, layout, parsed.layers[0])
        if metadata is not None and metadata.next_update is not None and metadata.next_update <= datetime.now(UTC):
            log.warning("%s: exporting %s:%s although it is stale (NextUpdate %s has passed): Trivy clients will "
                        "try to download a newer one every hour unless they skip DB updates", spec.name,
                        spec.mirror_repository, tag, iso(metadata.next_update))
        return AssetEntry(
            spec.name, self.kind, f"{spec.mirror_repository}:{tag}", str(manifest.digest),
            sum(blob.size for blob in parsed.blobs), record.source if record else None,
            metadata.updated_at if metadata else None, metadata.next_update if metadata else None,
            parsed.annotations.get(mediatype.ANNOTATION_VERSION),
        )

    @staticmethod
    async def _read_metadata(spec: AssetSpec, layout: Layout, layer: Descriptor) -> LayerMetadata | None:
        try:
            return await read_layer_metadata(layout, layer)
        except (MirrorError, LayerInfoError) as err:
            log.warning("%s: cannot read metadata.json from the stored layer: %s", spec.name, err)
            return None


def _files(repository: str, layout: Layout, subset: LayoutSubset) -> tuple[SourceFile, ...]:
    """The members of ``oci/REPOSITORY``: its ``oci-layout`` and ``index.json``, then the blobs, read from the store."""
    return (_generated(member(repository, LAYOUT_FILE), subset.layout_file),
            _generated(member(repository, INDEX_FILE), subset.index),
            *(SourceFile(BundleFile(blob_member(repository, blob.digest), blob.digest, blob.size),
                         path=layout.blob_path(blob.digest)) for blob in subset.blobs))
