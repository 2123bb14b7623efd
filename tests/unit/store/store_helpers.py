"""Helpers for the store tests: small OCI artifacts built in memory (a unique module name, imported by tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Layout
from trivy_mirror.target import push_and_tag

EMPTY_CONFIG = b"{}"


async def stream(data: bytes, chunk_size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def describe(data: bytes, media_type: str, **annotations: str) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data), annotations)


@dataclass
class Artifact:
    """A Trivy-shaped artifact: empty config, one layer; ``blobs`` maps each descriptor to its bytes."""

    manifest: ManifestBytes
    blobs: list[tuple[Descriptor, bytes]] = field(default_factory=list)

    @property
    def layer(self) -> Descriptor:
        return self.blobs[1][0]


def artifact(layer: bytes, *, title: str = "db.tar.gz", media_type: str = mediatype.TRIVY_DB_LAYER) -> Artifact:
    config = describe(EMPTY_CONFIG, mediatype.OCI_EMPTY)
    layer_descriptor = describe(layer, media_type, **{mediatype.ANNOTATION_TITLE: title})
    body = {
        "schemaVersion": 2,
        "mediaType": mediatype.OCI_MANIFEST,
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "config": config.to_json(),
        "layers": [layer_descriptor.to_json()],
        "annotations": {mediatype.ANNOTATION_CREATED: "2024-01-01T00:00:00Z"},
    }
    # Deliberately not json.dumps's default spacing: the store must keep these exact bytes.
    data = json.dumps(body, indent=3).encode()
    return Artifact(ManifestBytes(data, mediatype.OCI_MANIFEST), [(config, EMPTY_CONFIG), (layer_descriptor, layer)])


async def push(layout: Layout, item: Artifact, tag: str | None) -> None:
    for descriptor, data in item.blobs:
        if not await layout.blob_exists(descriptor):
            await layout.push_blob(descriptor, stream(data))
    await push_and_tag(layout, item.manifest, tag)


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])
