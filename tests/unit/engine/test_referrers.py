"""The engine copies the referrers of a manifest (and theirs, to a bounded depth) when asked, as oras cp -r."""

from __future__ import annotations

import json

from trivy_mirror.engine import copier
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.oci.referrers import referrer_descriptor

from .test_copier import MemoryTarget, artifact


class ReferringTarget(MemoryTarget):
    """A memory target that lists referrers, as a registry or a store layout does."""

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        return [referrer_descriptor(m) for m in self.manifests.values()
                if m.parsed.subject is not None and m.parsed.subject.digest == subject]


def attach(target: MemoryTarget, subject: ManifestBytes, payload: bytes) -> ManifestBytes:
    """A signature-like artifact whose subject is ``subject``: one layer, stored in ``target``."""
    config = b"{}"
    target.blobs[Digest.of(config)] = config
    target.blobs[Digest.of(payload)] = payload
    data = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "artifactType": "application/vnd.example.sig",
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(config)), "size": 2},
                       "layers": [{"mediaType": "application/octet-stream", "digest": str(Digest.of(payload)),
                                   "size": len(payload)}],
                       "subject": subject.descriptor.to_json()}).encode()
    manifest = ManifestBytes.of(data, mediatype.OCI_MANIFEST)
    target.manifests[str(manifest.digest)] = manifest
    return manifest


async def test_referrers_travel_to_a_bounded_depth_and_only_once() -> None:
    src, dst = ReferringTarget(), ReferringTarget()
    db = artifact(src, b"layer-bytes")
    sbom = attach(src, db, b"sbom")
    signature = attach(src, sbom, b"signature of the sbom")
    deeper = attach(src, signature, b"counter-signature")

    stats = await copier.copy(src, db, dst, "2", copier.CopyHooks(referrer_depth=2))
    assert stats.referrers_copied == 2
    assert {str(sbom.digest), str(signature.digest)} <= set(dst.manifests)
    assert str(deeper.digest) not in dst.manifests  # depth 3: beyond the bound
    assert dst.blobs[Digest.of(b"signature of the sbom")] == b"signature of the sbom"
    assert [d.digest for d in await dst.referrers(db.digest)] == [sbom.digest]

    again = copier.CopyStats()
    await copier.copy_referrers(src, dst, db.digest, again, depth=2)
    assert (again.referrers_copied, again.blobs_copied) == (0, 0)


async def test_off_by_default_and_a_source_without_referrers_has_none() -> None:
    src, dst = ReferringTarget(), ReferringTarget()
    db = artifact(src, b"layer-bytes")
    attach(src, db, b"sig")
    assert (await copier.copy(src, db, dst, "2")).referrers_copied == 0
    plain = MemoryTarget()
    stats = copier.CopyStats()
    await copier.copy_referrers(plain, dst, db.digest, stats)
    assert stats.referrers_copied == 0


async def test_a_listed_manifest_referring_to_another_subject_is_left_out() -> None:
    src, dst = ReferringTarget(), ReferringTarget()
    db, other = artifact(src, b"layer-bytes"), artifact(src, b"other layer")
    stray = attach(src, other, b"signature of another artifact")

    class Forged(ReferringTarget):
        async def referrers(self, subject: Digest) -> list[Descriptor]:
            return [referrer_descriptor(stray)] if subject == db.digest else []

    forged = Forged()
    forged.blobs, forged.manifests, forged.tags = src.blobs, src.manifests, src.tags
    stats = copier.CopyStats()
    await copier.copy_referrers(forged, dst, db.digest, stats)
    assert stats.referrers_copied == 0 and str(stray.digest) not in dst.manifests
