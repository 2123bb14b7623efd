"""Dated version tags: named after UpdatedAt (DBs) or the created annotation (checks), in UTC, to the minute."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import CATALOG, LayerMetadata
from trivy_mirror.catalog.dated import dated_tag, has_own_time
from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Manifest, parse_manifest
from trivy_mirror.store.index import DATED_TAG

DB, CHECKS = CATALOG[0], CATALOG[2]
PUBLISHED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def _manifest(annotations: dict[str, str]) -> Manifest:
    parsed = parse_manifest(json.dumps({
        "schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
        "config": {"mediaType": mediatype.OCI_EMPTY, "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [], "annotations": annotations}).encode())
    assert isinstance(parsed, Manifest)
    return parsed


def test_db_is_named_after_updated_at_in_utc() -> None:
    updated = datetime(2026, 11, 30, 7, 5, 59, tzinfo=timezone(timedelta(hours=1)))
    name = dated_tag(DB, "2", _manifest({}), LayerMetadata(2, updated, None), PUBLISHED)
    assert name == "2-20261130.0605"
    assert DATED_TAG.match(name or "") is not None
    assert dated_tag(DB, "2", _manifest({}), None, PUBLISHED) is None


def test_checks_use_the_created_annotation_else_the_publish_time() -> None:
    created = {mediatype.ANNOTATION_CREATED: "2026-11-29T23:59:00Z"}
    assert dated_tag(CHECKS, "2", _manifest(created), None, PUBLISHED) == "2-20261129.2359"
    assert dated_tag(CHECKS, "1", _manifest({}), None, PUBLISHED) == "1-20261201.0830"


def test_a_dated_tag_push_names_a_held_version_and_never_moves() -> None:
    digest, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert policy.is_dated_tag(DB, "2-20261130.0600") and not policy.is_dated_tag(DB, "3-20261130.0600")
    assert not policy.is_dated_tag(DB, "2")
    policy.check_dated_tag(DB, "2-20261130.0600", digest, True, None)
    policy.check_dated_tag(DB, "2-20261130.0600", digest, True, digest)
    with pytest.raises(RefusedCandidate, match="must name a version the repository holds"):
        policy.check_dated_tag(DB, "2-20261130.0600", digest, False, None)
    with pytest.raises(RefusedCandidate, match="never moved"):
        policy.check_dated_tag(DB, "2-20261130.0600", digest, True, other)


def test_only_a_version_carrying_its_time_is_named_later() -> None:
    assert has_own_time(CHECKS, _manifest({mediatype.ANNOTATION_CREATED: "2026-11-29T23:59:00Z"}), None)
    assert not has_own_time(CHECKS, _manifest({}), None)
    assert not has_own_time(DB, _manifest({}), None)
    assert has_own_time(DB, _manifest({}), LayerMetadata(2, PUBLISHED, None))
