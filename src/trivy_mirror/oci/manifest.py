"""Descriptors, image manifests and indexes: parsed and validated from the exact bytes received."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from trivy_mirror.errors import InvalidDigest, InvalidManifest
from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
"""Manifests larger than this are refused (distribution's own limit is 4 MiB)."""


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidManifest(f"{what} must be an object of strings")
    return dict(value)


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest, size, and the optional OCI descriptor fields."""

    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    artifact_type: str | None = None
    platform: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    data: bytes | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_json(cls, obj: Any, what: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{what} must be an object")
        media_type = obj.get("mediaType")
        size = obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidManifest(f"{what} has no mediaType")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidManifest(f"{what} has an invalid size {size!r}")
        try:
            raw_digest = obj.get("digest")
            digest = Digest.parse(raw_digest if isinstance(raw_digest, str) else "")
        except InvalidDigest as err:
            raise InvalidManifest(f"{what}: {err}") from None
        data = None
        if "data" in obj:
            try:
                data = base64.b64decode(obj["data"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidManifest(f"{what} has invalid base64 data") from None
            if len(data) != size or Digest.of(data, digest.algorithm) != digest:
                raise InvalidManifest(f"{what} embedded data does not match its digest and size")
        platform = obj.get("platform")
        if platform is not None and not isinstance(platform, dict):
            raise InvalidManifest(f"{what} has an invalid platform")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise InvalidManifest(f"{what} has an invalid artifactType")
        return cls(media_type, digest, size, _str_map(obj.get("annotations"), f"{what} annotations"),
                   artifact_type, platform, data)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        if self.platform:
            obj["platform"] = self.platform
        return obj

    @property
    def title(self) -> str | None:
        return self.annotations.get(mediatype.ANNOTATION_TITLE)


@dataclass(frozen=True)
class Manifest:
    """An OCI image manifest (or Docker schema 2): one config and the layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str]
    artifact_type: str | None = None
    subject: Descriptor | None = None
    """The manifest this one refers to (a signature, an SBOM): what the referrers API lists it under."""

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)

    @property
    def distributable_blobs(self) -> tuple[Descriptor, ...]:
        """The blobs a registry must hold: non-distributable (foreign) layers are fetched from elsewhere."""
        return tuple(blob for blob in self.blobs if blob.media_type not in mediatype.NON_DISTRIBUTABLE_LAYERS)


@dataclass(frozen=True)
class Index:
    """An OCI image index (or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str]
    artifact_type: str | None = None
    subject: Descriptor | None = None

    def default_child(self) -> Descriptor:
        """The child Trivy picks: ``linux/amd64``, where a child without a platform counts as one."""
        for child in self.manifests:
            platform = child.platform or {"os": "linux", "architecture": "amd64"}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                return child
        raise InvalidManifest("index has no linux/amd64 child")


def parse_manifest(data: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parse manifest bytes; ``content_type`` is used only when the body carries no ``mediaType``."""
    if len(data) > MAX_MANIFEST_SIZE:
        raise InvalidManifest(f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_SIZE}-byte limit")
    obj = load_object(data, "manifest", InvalidManifest)
    body_type = obj.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise InvalidManifest("manifest mediaType is not a string")
    header_type = (content_type or "").split(";")[0].strip() or None
    media_type = body_type or header_type
    if media_type in mediatype.SCHEMA1 or obj.get("schemaVersion") == 1:
        raise InvalidManifest("Docker schema 1 manifests are not supported")
    if obj.get("schemaVersion") != 2:
        raise InvalidManifest(f"unsupported manifest schemaVersion {obj.get('schemaVersion')!r}")
    annotations = _str_map(obj.get("annotations"), "manifest annotations")
    artifact_type = obj.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise InvalidManifest("manifest artifactType is not a string")
    subject = Descriptor.from_json(obj["subject"], "subject") if obj.get("subject") is not None else None
    if "manifests" in obj and "layers" not in obj:
        children = obj["manifests"]
        if not isinstance(children, list):
            raise InvalidManifest("index manifests must be a list")
        if media_type not in mediatype.INDEXES:
            media_type = mediatype.OCI_INDEX
        return Index(media_type,
                     tuple(Descriptor.from_json(c, f"index entry {i}") for i, c in enumerate(children)),
                     annotations, artifact_type, subject)
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise InvalidManifest("manifest has no layers list")
    if media_type not in mediatype.IMAGE_MANIFESTS:
        media_type = mediatype.OCI_MANIFEST
    return Manifest(
        media_type,
        Descriptor.from_json(obj.get("config"), "config"),
        tuple(Descriptor.from_json(layer, f"layer {i}") for i, layer in enumerate(layers)),
        annotations,
        artifact_type,
        subject,
    )
