"""The ``oci`` section of a bundle, byte for byte: the same store exports the same members.

The golden list was recorded from the export as it was before the bundle read the store through the store's
API (commit 5fc6d5d), so a refactoring of either side that changes a member's path, order, digest or size fails
here. The store is built by hand from fixed bytes: two tags of the checks asset (one with an older version
kept in its history, which is not exported), a signature on one tag, a referrer of that signature (depth 2), a
referrer that is an image index (its child manifest goes along), and the DB (whose layer is no archive: its
metadata cannot be read, which the export only logs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from trivy_mirror.bundle.exporter import BundlePlan, plan_bundle, write_bundle
from trivy_mirror.bundle.oci_export import OciExport
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Layout, Store
from trivy_mirror.target import push_and_tag

CHECKS = "aquasec/trivy-checks"
DB = "aquasec/trivy-db"
SIGNATURE_TYPE = "application/vnd.example.sig"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _describe(data: bytes, media_type: str, **annotations: str) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data), annotations)


async def _blob(layout: Layout, data: bytes, media_type: str, **annotations: str) -> Descriptor:
    descriptor = _describe(data, media_type, **annotations)
    await layout.push_blob(descriptor, _one(data))
    return descriptor


async def _manifest(layout: Layout, layer: bytes, layer_type: str, tag: str | None, *,
                    artifact_type: str = "application/vnd.aquasec.trivy.config.v1+json",
                    subject: ManifestBytes | None = None) -> ManifestBytes:
    config = await _blob(layout, b"{}", mediatype.OCI_EMPTY)
    blob = await _blob(layout, layer, layer_type, **{mediatype.ANNOTATION_TITLE: "bundle.tar.gz"})
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST, "artifactType": artifact_type,
                               "config": config.to_json(), "layers": [blob.to_json()],
                               "annotations": {mediatype.ANNOTATION_CREATED: "2024-01-01T00:00:00Z"}}
    if subject is not None:
        body["subject"] = subject.descriptor.to_json()
    manifest = ManifestBytes(json.dumps(body, indent=3).encode(), mediatype.OCI_MANIFEST)
    await push_and_tag(layout, manifest, tag)
    return manifest


async def _index_referrer(layout: Layout, subject: ManifestBytes) -> ManifestBytes:
    child = await _manifest(layout, b"attestation", "application/vnd.example.att", None,
                            artifact_type="application/vnd.example.att")
    body = {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "artifactType": "application/vnd.example.idx",
            "manifests": [child.descriptor.to_json()], "subject": subject.descriptor.to_json()}
    index = ManifestBytes(json.dumps(body).encode(), mediatype.OCI_INDEX)
    await layout.push_manifest(index)
    return index


async def _store(root: Path) -> Store:
    store = Store(root)
    checks = store.layout(CHECKS)
    await _manifest(checks, b"checks 1 old", mediatype.CHECKS_LAYER, "2")  # kept in the history, not exported
    current = await _manifest(checks, b"checks 2", mediatype.CHECKS_LAYER, "2")
    await _manifest(checks, b"checks 1", mediatype.CHECKS_LAYER, "1")
    signature = await _manifest(checks, b"signature", "application/octet-stream", None,
                                artifact_type=SIGNATURE_TYPE, subject=current)
    await _manifest(checks, b"countersignature", "application/octet-stream", None, artifact_type=SIGNATURE_TYPE,
                    subject=signature)
    await _index_referrer(checks, current)
    await _manifest(store.layout(DB), b"not an archive", mediatype.TRIVY_DB_LAYER, "2")
    return store


GOLDEN_FILES = [
    # Recorded from the export before the store API (see the module docstring): path, digest, size.
    ('oci/aquasec/trivy-db/oci-layout',
     'sha256:0cdedc0869d60bb59e3dde736f996025e70318180587e049cfa22f80d67aa8e5', 31),
    ('oci/aquasec/trivy-db/index.json',
     'sha256:51e991148a2b2d7e6e0bf17cb23ac78772db366c927fd6c90362ef068e957771', 442),
    ('oci/aquasec/trivy-db/blobs/sha256/e153d4736bccad0673c4a22004820ffe1d046d91331d97e4d533fe7fbd562ab9',
     'sha256:e153d4736bccad0673c4a22004820ffe1d046d91331d97e4d533fe7fbd562ab9', 756),
    ('oci/aquasec/trivy-db/blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
     'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 2),
    ('oci/aquasec/trivy-db/blobs/sha256/6bbf954ab0045bc546f16a6db16c95afef820dccd807348411ea924dabb972e9',
     'sha256:6bbf954ab0045bc546f16a6db16c95afef820dccd807348411ea924dabb972e9', 14),
    ('oci/aquasec/trivy-checks/oci-layout',
     'sha256:0cdedc0869d60bb59e3dde736f996025e70318180587e049cfa22f80d67aa8e5', 31),
    ('oci/aquasec/trivy-checks/index.json',
     'sha256:180745d7c48cbf543c1eb767cdd102ba515a4e8c92abdc83e81e0ed2390fd8f2', 1497),
    ('oci/aquasec/trivy-checks/blobs/sha256/c7040464ccb1c469677f14c9bcb595ab24e22d069f66c47985f747e134759f56',
     'sha256:c7040464ccb1c469677f14c9bcb595ab24e22d069f66c47985f747e134759f56', 759),
    ('oci/aquasec/trivy-checks/blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
     'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 2),
    ('oci/aquasec/trivy-checks/blobs/sha256/14bec3d35c4860511bd778bd368b2ab5fbfa0e6d5f306ef754727d291375f80e',
     'sha256:14bec3d35c4860511bd778bd368b2ab5fbfa0e6d5f306ef754727d291375f80e', 8),
    ('oci/aquasec/trivy-checks/blobs/sha256/92a08c373adb18f2ba0d5fe7ec3c04a3a26d0a4414a14613acfeba0719ed25f9',
     'sha256:92a08c373adb18f2ba0d5fe7ec3c04a3a26d0a4414a14613acfeba0719ed25f9', 908),
    ('oci/aquasec/trivy-checks/blobs/sha256/1a2fc26dc7ea5a2a4748b7cb2b1ef193d96ab2c99f93092f69e63075b28d1278',
     'sha256:1a2fc26dc7ea5a2a4748b7cb2b1ef193d96ab2c99f93092f69e63075b28d1278', 9),
    ('oci/aquasec/trivy-checks/blobs/sha256/ad1f13af960db1923cc5922f4194b95e8bdcd6f801f4cf6edabfda13d13abdff',
     'sha256:ad1f13af960db1923cc5922f4194b95e8bdcd6f801f4cf6edabfda13d13abdff', 909),
    ('oci/aquasec/trivy-checks/blobs/sha256/69bcd0321fffbbd27f5ef642b4bc698dad633b57a56e4087288965292303419f',
     'sha256:69bcd0321fffbbd27f5ef642b4bc698dad633b57a56e4087288965292303419f', 16),
    ('oci/aquasec/trivy-checks/blobs/sha256/990a248722844d9365ec082c800a09d22f6cd1e97fcad9502062b49361eb8544',
     'sha256:990a248722844d9365ec082c800a09d22f6cd1e97fcad9502062b49361eb8544', 467),
    ('oci/aquasec/trivy-checks/blobs/sha256/4a19c936017e79cc3d3b2d87bfae64ed5de2e6dbdb0db7e94ff31929b492ef16',
     'sha256:4a19c936017e79cc3d3b2d87bfae64ed5de2e6dbdb0db7e94ff31929b492ef16', 716),
    ('oci/aquasec/trivy-checks/blobs/sha256/813a89a296973e35545cfa74fe3efd172a7d19443c97c625d699e9737229b0a2',
     'sha256:813a89a296973e35545cfa74fe3efd172a7d19443c97c625d699e9737229b0a2', 11),
    ('oci/aquasec/trivy-checks/blobs/sha256/db5d1f5901fa0ac65da364fee1bfce37338f080c02714eefebffaaad26c2bec2',
     'sha256:db5d1f5901fa0ac65da364fee1bfce37338f080c02714eefebffaaad26c2bec2', 759),
    ('oci/aquasec/trivy-checks/blobs/sha256/10d4154d697f8a0ea74fc8b77f75965c1fee34cfa9ce2e2a28fe5fcb05caaa7d',
     'sha256:10d4154d697f8a0ea74fc8b77f75965c1fee34cfa9ce2e2a28fe5fcb05caaa7d', 8),
]

GOLDEN_ASSETS = [
    # reference, digest, size
    ('aquasec/trivy-db:2', 'sha256:e153d4736bccad0673c4a22004820ffe1d046d91331d97e4d533fe7fbd562ab9', 16),
    ('aquasec/trivy-checks:2', 'sha256:c7040464ccb1c469677f14c9bcb595ab24e22d069f66c47985f747e134759f56', 10),
    ('aquasec/trivy-checks:1', 'sha256:db5d1f5901fa0ac65da364fee1bfce37338f080c02714eefebffaaad26c2bec2', 10),
]
GOLDEN_BUNDLE = "d6e4a6dea40efeef26991a95f49f14210be2f4d4cb08917f98257b0065e6acb1"
"""The whole tar's sha256, written with a fixed tool version and creation time."""


async def test_the_export_writes_the_recorded_members(tmp_path: Path) -> None:
    store = await _store(tmp_path / "store")
    plan = await plan_bundle([OciExport(store, [spec for spec in CATALOG if spec.name in ("db", "checks")])])
    assert [(f.path, str(f.digest), f.size) for f in plan.manifest.files] == GOLDEN_FILES
    assert [(a.reference, a.digest, a.size) for a in plan.manifest.assets] == GOLDEN_ASSETS
    assert {(a.source, a.updated_at, a.next_update, a.version) for a in plan.manifest.assets} == {
        (None, None, None, None)}
    manifest = dataclasses.replace(plan.manifest, tool_version="golden", created_at=datetime(2026, 11, 30, tzinfo=UTC))
    out = io.BytesIO()
    # every member's bytes are read from the store and checked against its listed digest
    assert write_bundle(BundlePlan(manifest, plan.files, manifest.serialize()), out) == GOLDEN_BUNDLE
    assert hashlib.sha256(out.getvalue()).hexdigest() == GOLDEN_BUNDLE
