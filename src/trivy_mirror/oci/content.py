"""A manifest as it travels: its exact bytes and the media type it is served with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest, parse_manifest


@dataclass(frozen=True)
class ManifestBytes:
    """Exact manifest bytes; never re-serialised, so the digest is preserved end to end."""

    data: bytes
    media_type: str
    algorithm: str = "sha256"
    """What the digest is computed with: sha256, or sha512 for a manifest pushed or stored under one."""

    @cached_property
    def digest(self) -> Digest:
        return Digest.of(self.data, self.algorithm)

    @cached_property
    def parsed(self) -> Manifest | Index:
        return parse_manifest(self.data, self.media_type)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    @classmethod
    def of(cls, data: bytes, content_type: str | None, algorithm: str = "sha256") -> ManifestBytes:
        """Use the body's own mediaType when the server sent a generic or no Content-Type."""
        parsed = parse_manifest(data, content_type)
        result = cls(data, parsed.media_type, algorithm)
        result.__dict__["parsed"] = parsed
        return result
