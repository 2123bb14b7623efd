"""Small Trivy-shaped artifacts pushed into a real store, and HTTP helpers for the server tests."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Layout, Store
from trivy_mirror.target import push_and_tag

EMPTY_CONFIG = b"{}"


@dataclass
class Artifact:
    manifest: ManifestBytes
    config: tuple[Descriptor, bytes]
    layer: tuple[Descriptor, bytes]

    @property
    def digest(self) -> str:
        return str(self.manifest.digest)

    @property
    def layer_digest(self) -> str:
        return str(self.layer[0].digest)

    @property
    def layer_bytes(self) -> bytes:
        return self.layer[1]


def describe(data: bytes, media_type: str, **annotations: str) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data), annotations)


def make_artifact(layer: bytes, *, title: str = "db.tar.gz", media_type: str = mediatype.TRIVY_DB_LAYER,
                  created: str = "2024-01-01T00:00:00Z") -> Artifact:
    config = describe(EMPTY_CONFIG, mediatype.OCI_EMPTY)
    layer_descriptor = describe(layer, media_type, **{mediatype.ANNOTATION_TITLE: title})
    body = {
        "schemaVersion": 2,
        "mediaType": mediatype.OCI_MANIFEST,
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "config": config.to_json(),
        "layers": [layer_descriptor.to_json()],
        "annotations": {mediatype.ANNOTATION_CREATED: created},
    }
    # Unusual spacing on purpose: the server must serve these exact bytes.
    data = json.dumps(body, indent=3).encode()
    return Artifact(ManifestBytes(data, mediatype.OCI_MANIFEST), (config, EMPTY_CONFIG), (layer_descriptor, layer))


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def push(layout: Layout, artifact: Artifact, tag: str | None) -> None:
    for descriptor, data in (artifact.config, artifact.layer):
        if not await layout.blob_exists(descriptor):
            await layout.push_blob(descriptor, chunks(data))
    await push_and_tag(layout, artifact.manifest, tag)


async def populate(store: Store, repository: str, tag: str, layer: bytes, **kwargs: str) -> Artifact:
    artifact = make_artifact(layer, **kwargs)
    await push(store.layout(repository), artifact, tag)
    return artifact


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_codes(body: bytes) -> list[str]:
    return [error["code"] for error in json.loads(body)["errors"]]
