import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import InvalidManifest
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest

EMPTY = {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(b"{}")), "size": 2, "data": "e30="}
LAYER = {"mediaType": mediatype.TRIVY_DB_LAYER, "digest": "sha256:" + "b" * 64, "size": 10,
         "annotations": {"org.opencontainers.image.title": "db.tar.gz"}}


def upstream_manifest(**changes: object) -> bytes:
    obj = {"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
           "artifactType": "application/vnd.aquasec.trivy.config.v1+json", "config": EMPTY, "layers": [LAYER],
           "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}
    obj.update(changes)
    return json.dumps(obj).encode()


def test_parses_upstream_shape() -> None:
    manifest = parse_manifest(upstream_manifest())
    assert isinstance(manifest, Manifest)
    assert manifest.layers[0].title == "db.tar.gz"
    assert manifest.config.data == b"{}"
    assert manifest.artifact_type == "application/vnd.aquasec.trivy.config.v1+json"


def test_manifest_bytes_keep_exact_bytes_and_digest() -> None:
    data = upstream_manifest()
    spaced = data.replace(b",", b", ")
    first, second = ManifestBytes.of(data, "application/json"), ManifestBytes.of(spaced, None)
    assert first.data == data and second.data == spaced
    assert first.digest == Digest.of(data) != second.digest
    assert first.media_type == mediatype.OCI_MANIFEST


def test_index_default_child() -> None:
    child = {"mediaType": mediatype.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 5}
    index = parse_manifest(json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                                       "manifests": [child]}).encode())
    assert isinstance(index, Index)
    assert str(index.default_child().digest) == child["digest"]
    arm = dict(child, platform={"os": "linux", "architecture": "arm64"})
    only_arm = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": [arm]}).encode())
    assert isinstance(only_arm, Index)
    with pytest.raises(InvalidManifest):
        only_arm.default_child()


@pytest.mark.parametrize("data", [
    b"not json", b"[]", b'{"schemaVersion": 1}', upstream_manifest(schemaVersion=3),
    upstream_manifest(layers="x"), upstream_manifest(config={"mediaType": "x", "digest": "sha256:zz", "size": 1}),
    upstream_manifest(config=dict(EMPTY, size=-1)), upstream_manifest(config=dict(EMPTY, data="W10=")),
    upstream_manifest(annotations={"a": 1}),
])
def test_rejects_malformed(data: bytes) -> None:
    with pytest.raises(InvalidManifest):
        parse_manifest(data)


def test_rejects_schema1_and_oversize() -> None:
    with pytest.raises(InvalidManifest):
        parse_manifest(b'{"schemaVersion": 2}', mediatype.DOCKER_SCHEMA1)
    with pytest.raises(InvalidManifest, match="limit"):
        parse_manifest(b" " * (MAX_MANIFEST_SIZE + 1))


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=4), max_leaves=20))
def test_arbitrary_json_never_crashes(obj: object) -> None:
    with contextlib.suppress(InvalidManifest):
        parse_manifest(json.dumps(obj).encode())


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(InvalidManifest):
        parse_manifest(data)


def test_embedded_data_checked() -> None:
    bad = dict(EMPTY, data=base64.b64encode(b"[]").decode())
    with pytest.raises(InvalidManifest):
        parse_manifest(upstream_manifest(config=bad))
