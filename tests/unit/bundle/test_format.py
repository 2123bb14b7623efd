"""The bundle manifest: round trip and the one-line refusals of a damaged or foreign one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from trivy_mirror.bundle.format import AssetEntry, BundleFile, BundleManifest, parse_manifest
from trivy_mirror.errors import BundleError, UnsafeMember
from trivy_mirror.oci.digest import Digest

DIGEST = Digest.of(b"{}")


def _manifest() -> BundleManifest:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    entry = AssetEntry("db", "oci", "aquasec/trivy-db:2", str(DIGEST), 42, "mirror.gcr.io/aquasec/trivy-db:2",
                       moment, moment.replace(day=3), None)
    return BundleManifest("0.1.0", moment, (entry,), (BundleFile(f"oci/aquasec/trivy-db/blobs/sha256/{DIGEST.hex}",
                                                                  DIGEST, 2),))


def _document(**changes: Any) -> bytes:
    document = _manifest().to_json()
    document.update(changes)
    return json.dumps(document).encode()


def test_round_trip() -> None:
    manifest = _manifest()
    assert parse_manifest(manifest.serialize()) == manifest
    assert manifest.total_size == 2
    keys = set(manifest.to_json()["assets"][0])
    assert {"reference", "digest", "size", "source", "updated_at", "next_update"} <= keys


@pytest.mark.parametrize(("data", "said"), [
    (b"\x1f\x8b not json", "not valid JSON"),
    (b"[]", "not a trivy-mirror bundle"),
    (_document(format="other"), "not a trivy-mirror bundle"),
    (_document(format_version=2), "version 2 is not supported"),
    (_document(created_at="yesterday"), "created_at"),
    (_document(files={}), "must be lists"),
    (_document(files=[{"path": "a", "digest": "sha256:00", "size": 1}]), "invalid digest"),
    (_document(files=[{"path": "a", "digest": str(DIGEST), "size": -1}]), "negative size"),
    (_document(files=[{"path": "a", "digest": str(DIGEST), "size": True}]), "'size'"),
    (_document(files=[{"path": "a", "digest": str(DIGEST), "size": 2}] * 2), "listed twice"),
    (_document(files=[{"path": "trivy-mirror-bundle.json", "digest": str(DIGEST), "size": 2}]), "listed twice"),
    (_document(assets=[{"asset": "db"}]), "asset 0 has no valid 'kind'"),
    (_document(assets=[{**_manifest().to_json()["assets"][0], "updated_at": "soon"}]), "'updated_at'"),
])
def test_refusals_are_one_line(data: bytes, said: str) -> None:
    with pytest.raises(BundleError) as raised:
        parse_manifest(data)
    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_an_unsafe_listed_path_is_refused() -> None:
    with pytest.raises(UnsafeMember, match="escapes"):
        parse_manifest(_document(files=[{"path": "oci/../../x", "digest": str(DIGEST), "size": 2}]))
