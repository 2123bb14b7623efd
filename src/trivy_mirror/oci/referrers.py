"""Referrers (OCI Distribution 1.1): manifests whose ``subject`` names another one, such as signatures and
attestations, and the two ways a registry lists them: the referrers API and, where it lacks one, the tag schema
fallback (an image index tagged ``<alg>-<hex>`` after the subject's digest). No I/O here."""

from __future__ import annotations

import json
from collections.abc import Iterable

from trivy_mirror.errors import InvalidManifest
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest, parse_manifest

MAX_REFERRERS = 1000
"""Referrers read per subject: a hostile or broken registry listing millions gets the first ones only."""
MAX_DEPTH = 4
"""How deep referrers of referrers are followed (a signature of an SBOM of an image is depth 2)."""


def referrer_descriptor(manifest: ManifestBytes) -> Descriptor:
    """How the referrers API lists a manifest: its artifactType (an image manifest without one: its config's
    media type) and its annotations."""
    parsed = manifest.parsed
    artifact_type = parsed.artifact_type
    if artifact_type is None and isinstance(parsed, Manifest):
        artifact_type = parsed.config.media_type
    return Descriptor(manifest.media_type, manifest.digest, len(manifest.data), dict(parsed.annotations),
                      artifact_type)


def fallback_tag(subject: Digest) -> str:
    """The tag schema's tag for ``subject``: ``<alg>-<hex>``, the parts cut to 32 and 64 characters."""
    return f"{subject.algorithm[:32]}-{subject.hex[:64]}"


def referrers_index(descriptors: Iterable[Descriptor]) -> ManifestBytes:
    """The image index that lists ``descriptors`` (the referrers API's answer, the fallback tag's content)."""
    body = {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
            "manifests": [descriptor.to_json() for descriptor in descriptors]}
    return ManifestBytes(json.dumps(body).encode(), mediatype.OCI_INDEX)


def listed(data: bytes, content_type: str | None = None) -> list[Descriptor]:
    """The manifests an answer lists (at most :data:`MAX_REFERRERS`); InvalidManifest when it is no index."""
    parsed = parse_manifest(data, content_type or mediatype.OCI_INDEX)
    if not isinstance(parsed, Index):
        raise InvalidManifest("a referrers list must be an image index")
    return list(parsed.manifests[:MAX_REFERRERS])
