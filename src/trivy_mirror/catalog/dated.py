"""Dated version tags: every version the mirror publishes is also tagged ``<tag>-YYYYMMDD.HHMM``, never moved.

Scanners pin one for reproducible scans (``--db-repository mirror:5000/aquasec/trivy-db:2-20261130.0600``).

The time is, in UTC, to the minute:

- for the DB and the Java DB, their ``metadata.json`` ``UpdatedAt`` (when upstream built that version);
- for the checks bundle, which has no metadata.json, the manifest's ``org.opencontainers.image.created``
  annotation (upstream sets it when it builds the bundle, so every mirror derives the same name), else the time
  the mirror published it.

Two versions built within the same minute would get one name: the tag keeps the first (it is never moved) and
the second is served by its base tag and digest only. :data:`trivy_mirror.store.index.DATED_TAG` is the
pattern; a store or static tree prunes a dated tag together with its version (``--keep``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Manifest
from trivy_mirror.timefmt import parse_time


def version_time(spec: AssetSpec, manifest: Manifest, metadata: LayerMetadata | None,
                 published: datetime) -> datetime:
    """The moment a version is named after (see the module docs)."""
    if spec.has_metadata and metadata is not None and metadata.updated_at is not None:
        return metadata.updated_at
    created = parse_time(manifest.annotations.get(mediatype.ANNOTATION_CREATED))
    return created if created is not None and not spec.has_metadata else published


def has_own_time(spec: AssetSpec, manifest: Manifest, metadata: LayerMetadata | None) -> bool:
    """The version carries the time it is named after (UpdatedAt, or the created annotation): naming it later,
    for a version published before dated tags, gives the name it would have had."""
    if spec.has_metadata:
        return metadata is not None and metadata.updated_at is not None
    return parse_time(manifest.annotations.get(mediatype.ANNOTATION_CREATED)) is not None


def dated_tag(spec: AssetSpec, tag: str, manifest: Manifest, metadata: LayerMetadata | None,
              published: datetime) -> str | None:
    """``2-20261130.0600``; None for a DB whose UpdatedAt is unknown (its name would not be reproducible)."""
    if spec.has_metadata and (metadata is None or metadata.updated_at is None):
        return None
    moment = version_time(spec, manifest, metadata, published).astimezone(UTC)
    return f"{tag}-{moment:%Y%m%d.%H%M}"
