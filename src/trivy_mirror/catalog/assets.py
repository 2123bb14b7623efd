"""The catalog of Trivy's OCI assets: where they live and what they look like.

The copy engine is generic; this module is what makes it Trivy-aware (TRIVY-ASSETS.md sections 1-5). What
makes a candidate unsafe to publish is in :mod:`trivy_mirror.catalog.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trivy_mirror.errors import UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.place import Place

DEFAULT_SOURCES = (Place("mirror.gcr.io", "aquasec"), Place("ghcr.io", "aquasecurity"))
"""Trivy's own sources, in Trivy's order."""

MIRROR_NAMESPACE = "aquasec"
"""Inside a mirror assets keep the mirror.gcr.io paths: ``<prefix>/aquasec/trivy-db:2``."""


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
class DbFile:
    """The database file a DB layer must hold, and the bytes it starts with (a sanity check before publishing)."""

    name: str
    magic: bytes
    offset: int
    kind: str


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
    db_file: DbFile | None = None
    """The database file in the layer (DBs)."""

    @property
    def mirror_repository(self) -> str:
        return f"{MIRROR_NAMESPACE}/{self.repository}"

    @property
    def has_metadata(self) -> bool:
        return self.schema_version is not None


CATALOG: tuple[AssetSpec, ...] = (
    AssetSpec("db", "trivy-db", (TagSpec("2"),), mediatype.TRIVY_DB_LAYER, "db.tar.gz", 2,
              DbFile("trivy.db", b"\xed\xda\x0c\xed", 16, "bbolt")),  # the meta page's magic, after its page header
    AssetSpec("java-db", "trivy-java-db", (TagSpec("1"),), mediatype.TRIVY_JAVA_DB_LAYER, "javadb.tar.gz", 1,
              DbFile("trivy-java.db", b"SQLite format 3\x00", 0, "SQLite")),
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
