"""The provenance of a published version as an OCI referrer: an in-toto Statement v1 about the mirrored manifest,
optionally in a DSSE envelope signed with ``--sign KEYFILE`` (:mod:`trivy_mirror.signing`).

The referrer is an OCI image manifest with ``artifactType`` ``application/vnd.in-toto+json`` (the statement) or
``application/vnd.dsse.envelope.v1+json`` (signed), the empty config, one layer holding the document and the
published manifest as ``subject``; the store and ``serve`` list it through the referrers API
(``GET /v2/NAME/referrers/DIGEST``), so ``oras discover`` and policy tools find it. In the store it is an
untagged entry, pruned with its subject (``--keep``).

The statement's subject is the mirrored manifest (name: the reference, digest: its sha256); its predicate
(``predicateType`` :data:`PREDICATE_TYPE`, a URN of ours: nothing to fetch) is the provenance the state records:
source, each source's digest, first seen, published at, decisions, and the tool version.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.signing import IN_TOTO_PAYLOAD_TYPE, SigningKey, Statement, Subject, sign_statement
from trivy_mirror.store import Layout
from trivy_mirror.target import WriteTarget
from trivy_mirror.version import __version__

PREDICATE_TYPE = "urn:trivy-mirror:provenance:v1"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
EMPTY_CONFIG = b"{}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def statement_bytes(reference: str, subject: Descriptor, provenance: Mapping[str, Any],
                    key: SigningKey | None) -> tuple[bytes, str]:
    """The document to attach and its media type: the statement, or its DSSE envelope when ``key`` is given."""
    subjects = (Subject(reference, {subject.digest.algorithm: subject.digest.hex}),)
    predicate = {"tool": "trivy-mirror", "tool_version": __version__, **provenance}
    if key is None:
        return Statement(subjects, PREDICATE_TYPE, predicate).serialize(), IN_TOTO_PAYLOAD_TYPE
    return sign_statement(subjects, PREDICATE_TYPE, predicate, key).serialize(), DSSE_MEDIA_TYPE


async def attach(target: WriteTarget, reference: str, subject: Descriptor, provenance: Mapping[str, Any],
                 key_file: Path | None) -> Digest:
    """Push the provenance referrer of ``subject`` into ``target``; its manifest digest."""
    key = SigningKey.load(key_file) if key_file is not None else None
    document, media_type = statement_bytes(reference, subject, provenance, key)
    config = Descriptor(mediatype.OCI_EMPTY, Digest.of(EMPTY_CONFIG), len(EMPTY_CONFIG))
    layer = Descriptor(media_type, Digest.of(document), len(document))
    for descriptor, data in ((config, EMPTY_CONFIG), (layer, document)):
        if not await target.blob_exists(descriptor):
            await target.push_blob(descriptor, _one(data))
    body = {"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST, "artifactType": media_type,
            "config": config.to_json(), "layers": [layer.to_json()],
            "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
            "annotations": {mediatype.ANNOTATION_CREATED: str(provenance.get("published_at") or "")}}
    manifest = ManifestBytes(json.dumps(body, indent=2).encode(), mediatype.OCI_MANIFEST)
    if isinstance(target, Layout):
        await target.push_untagged(manifest)
    else:
        await target.push_manifest(manifest)
    return manifest.digest
