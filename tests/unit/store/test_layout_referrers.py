"""A referrer pushed into a layout without a tag gets an untagged entry, and the layout lists it by subject."""

from __future__ import annotations

import json

from store_helpers import Artifact, artifact, push

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.store import Layout
from trivy_mirror.store.index import tag_of


def referrer(subject: Artifact, payload: bytes) -> Artifact:
    base = artifact(payload, title="sig", media_type="application/octet-stream")
    body = json.loads(base.manifest.data)
    body["artifactType"] = "application/vnd.example.sig"
    body["subject"] = subject.manifest.descriptor.to_json()
    return Artifact(ManifestBytes(json.dumps(body).encode(), mediatype.OCI_MANIFEST), base.blobs)


async def test_untagged_referrer_is_kept_and_listed(layout: Layout) -> None:
    db = artifact(b"db")
    await push(layout, db, "2")
    signature = referrer(db, b"signature")
    await push(layout, signature, None)

    entries = layout.manifests()
    assert [str(e.digest) for e in entries] == [str(db.manifest.digest), str(signature.manifest.digest)]
    assert tag_of(entries[1]) is None
    listed = await layout.referrers(db.manifest.digest)
    assert [d.digest for d in listed] == [signature.manifest.digest]
    assert listed[0].artifact_type == "application/vnd.example.sig"
    assert await layout.referrers(signature.manifest.digest) == []
    assert await layout.resolve(str(signature.manifest.digest)) is not None
