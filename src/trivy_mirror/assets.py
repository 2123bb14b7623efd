"""The catalog of Trivy's OCI assets: where they live, what they look like, and what Trivy refuses.

The copy engine is generic; this module is what makes it Trivy-aware (TRIVY-ASSETS.md sections 1-5).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trivy_mirror.errors import RefusedCandidate, UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest
from trivy_mirror.oci.reference import Prefix

DEFAULT_SOURCES = (Prefix("mirror.gcr.io", "aquasec"), Prefix("ghcr.io", "aquasecurity"))
"""Trivy's own sources, in Trivy's order."""

MIRROR_NAMESPACE = "aquasec"
"""Inside a mirror assets keep the mirror.gcr.io paths: ``<prefix>/aquasec/trivy-db:2``."""

ARCHIVE_EXTENSIONS = ("tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "tar.zst", "tzst", "tar", "zip",
                      "gz", "bz2", "xz", "zst")
"""Title extensions go-getter unpacks; a title without one is copied as a single file and Trivy fails."""

MAX_FUTURE_SKEW = timedelta(hours=1)
"""How far in this host's future a DB's UpdatedAt may be. Builds are published after they are made, so only
clock skew puts UpdatedAt ahead of now; a date far ahead would make every later, real DB look older and be
refused until that date. One hour covers clocks kept by NTP and refuses any planted date."""


@dataclass(frozen=True)
class LayerMetadata:
    """What a DB layer's ``metadata.json`` says (trivy-db ``pkg/metadata``)."""

    version: int | None
    updated_at: datetime | None
    next_update: datetime | None


@dataclass(frozen=True)
class TagSpec:
    """One tag of an asset to mirror; ``required`` tags count as missing when absent."""

    tag: str
    required: bool = True


@dataclass(frozen=True)
class AssetSpec:
    """Everything the mirror knows about one of Trivy's OCI assets."""

    name: str
    repository: str
    tags: tuple[TagSpec, ...]
    layer_media_type: str
    title: str
    schema_version: int | None
    """Expected ``metadata.json`` Version (DBs); None for the checks bundle, whose tag is its major version."""

    @property
    def mirror_repository(self) -> str:
        return f"{MIRROR_NAMESPACE}/{self.repository}"

    @property
    def has_metadata(self) -> bool:
        return self.schema_version is not None


CATALOG: tuple[AssetSpec, ...] = (
    AssetSpec("db", "trivy-db", (TagSpec("2"),), mediatype.TRIVY_DB_LAYER, "db.tar.gz", 2),
    AssetSpec("java-db", "trivy-java-db", (TagSpec("1"),), mediatype.TRIVY_JAVA_DB_LAYER, "javadb.tar.gz", 1),
    AssetSpec("checks", "trivy-checks", (TagSpec("2"), TagSpec("1", required=False)), mediatype.CHECKS_LAYER,
              "bundle.tar.gz", None),
)
OCI_ASSET_NAMES = tuple(spec.name for spec in CATALOG)


def select(names: list[str] | None) -> list[AssetSpec]:
    """The OCI assets named (all when ``names`` is empty); ``vex`` is accepted and handled elsewhere."""
    if not names:
        return list(CATALOG)
    known = {spec.name: spec for spec in CATALOG}
    unknown = [n for n in names if n not in known and n != "vex"]
    if unknown:
        raise UsageError(f"unknown asset {unknown[0]!r}: choose from {', '.join((*known, 'vex'))}")
    return [known[n] for n in known if n in names]


def is_local_relative(path: str) -> bool:
    """Go's ``filepath.IsLocal`` for the title check Trivy applies since v0.72."""
    if not path or path.startswith(("/", "\\")) or "\\" in path or "\x00" in path:
        return False
    if len(path) >= 2 and path[1] == ":":
        return False
    normal = posixpath.normpath(path)
    return normal != ".." and not normal.startswith("../") and normal != "."


def check_shape(spec: AssetSpec, manifest: Manifest | Index) -> Descriptor:
    """Refuse what Trivy's ``Artifact.Download`` would refuse; returns the one layer.

    The checks run in Trivy's order: single layer, title present, title local, media type.
    """
    if isinstance(manifest, Index):
        raise RefusedCandidate(f"{spec.name}: an image index is not a Trivy {spec.name} artifact")
    if len(manifest.layers) != 1:
        raise RefusedCandidate(f"{spec.name}: artifact has {len(manifest.layers)} layers; Trivy needs exactly one")
    layer = manifest.layers[0]
    title = layer.title
    if title is None:
        raise RefusedCandidate(f"{spec.name}: layer has no org.opencontainers.image.title; Trivy refuses it")
    if not is_local_relative(title):
        raise RefusedCandidate(f"{spec.name}: layer title {title!r} is not a local relative path; Trivy refuses it")
    if not title.endswith(tuple(f".{ext}" for ext in ARCHIVE_EXTENSIONS)):
        raise RefusedCandidate(f"{spec.name}: layer title {title!r} has no archive extension; Trivy cannot unpack it")
    if layer.media_type != spec.layer_media_type:
        raise RefusedCandidate(
            f"{spec.name}: layer media type is {layer.media_type}, Trivy needs {spec.layer_media_type}"
        )
    return layer


def checks_major_version(manifest: Manifest) -> int | None:
    """The checks bundle's major version from ``org.opencontainers.image.version`` (None: custom build)."""
    version = manifest.annotations.get(mediatype.ANNOTATION_VERSION, "").lstrip("v")
    major = version.split(".", 1)[0]
    return int(major) if major.isdigit() else None


def check_version(spec: AssetSpec, tag: str, manifest: Manifest, metadata: LayerMetadata | None,
                  now: datetime | None = None) -> None:
    """Refuse a schema version that does not match the tag Trivy asks for, or an UpdatedAt in the future."""
    if spec.has_metadata:
        if metadata is None:
            raise RefusedCandidate(f"{spec.name}: layer has no readable metadata.json")
        if metadata.version != spec.schema_version:
            raise RefusedCandidate(
                f"{spec.name}: metadata.json Version is {metadata.version}, tag :{tag} needs {spec.schema_version}"
            )
        if metadata.updated_at is None:
            raise RefusedCandidate(f"{spec.name}: metadata.json has no UpdatedAt")
        limit = (now or datetime.now(UTC)) + MAX_FUTURE_SKEW
        if metadata.updated_at > limit:
            raise RefusedCandidate(
                f"{spec.name}: metadata.json UpdatedAt {metadata.updated_at.isoformat()} is in the future (more "
                f"than {MAX_FUTURE_SKEW} ahead of this host's clock); refused, it would make every real update "
                "look older"
            )
        return
    major = checks_major_version(manifest)
    if major is not None and tag.isdigit() and major != int(tag):
        raise RefusedCandidate(f"{spec.name}: bundle version is {major}.x, tag :{tag} needs {tag}.x")


def check_not_older(spec: AssetSpec, candidate: LayerMetadata | None, current: LayerMetadata | None) -> None:
    """Refuse a DB built before the one the destination already serves."""
    if candidate is None or current is None or candidate.updated_at is None or current.updated_at is None:
        return
    if candidate.updated_at < current.updated_at:
        raise RefusedCandidate(
            f"{spec.name}: candidate UpdatedAt {candidate.updated_at.isoformat()} is older than the served "
            f"{current.updated_at.isoformat()}; keeping the current version"
        )
