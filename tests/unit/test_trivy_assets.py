"""The asset builders in ``support.trivy_assets`` produce upstream's exact shape (TRIVY-ASSETS.md 2.7, 3.2, 13)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from support.trivy_assets import (
    CHECKS_LAYER,
    DB_LAYER,
    JAVA_DB_LAYER,
    MAVEN_ARTIFACT,
    MAVEN_GROUP,
    MAVEN_VERSION,
    build_checks_bundle,
    build_java_db,
    build_test_jar,
    build_vuln_db,
)

UPDATED = datetime(2030, 5, 6, 7, 8, 9, 123400, tzinfo=UTC)


def members(layer: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
        }


def test_db_manifest_has_the_oras_v1_1_shape() -> None:
    artifact = build_vuln_db(updated_at=UPDATED)
    layer = artifact.layers[0]
    assert json.loads(artifact.manifest) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
            "data": "e30=",
        },
        "layers": [
            {
                "mediaType": DB_LAYER,
                "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                "size": len(layer),
                "annotations": {"org.opencontainers.image.title": "db.tar.gz"},
            }
        ],
        "annotations": {"org.opencontainers.image.created": "2030-05-06T07:08:09Z"},
    }
    assert list(json.loads(artifact.manifest)) == [
        "schemaVersion", "mediaType", "artifactType", "config", "layers", "annotations"
    ]
    assert base64.b64decode("e30=") == artifact.config
    assert artifact.digest == "sha256:" + hashlib.sha256(artifact.manifest).hexdigest()


def test_db_layer_is_flat_with_metadata_after_the_db() -> None:
    files = members(build_vuln_db(updated_at=UPDATED).layers[0])
    assert list(files) == ["trivy.db", "metadata.json"]
    assert json.loads(files["metadata.json"]) == {
        "Version": 2,
        "NextUpdate": "2030-05-07T07:08:09.1234Z",
        "UpdatedAt": "2030-05-06T07:08:09.1234Z",
        "DownloadedAt": "0001-01-01T00:00:00Z",
    }


def test_builds_are_reproducible_and_vary_with_their_parameters() -> None:
    assert build_vuln_db(updated_at=UPDATED).digest == build_vuln_db(updated_at=UPDATED).digest
    assert build_vuln_db(updated_at=UPDATED).digest != build_vuln_db(updated_at=UPDATED, schema_version=3).digest
    assert build_test_jar() == build_test_jar()


def test_bad_variants() -> None:
    two = build_vuln_db(updated_at=UPDATED, layer_count=2)
    layers = two.manifest_json["layers"]
    assert len(layers) == 2 and layers[0]["digest"] != layers[1]["digest"]
    assert len(two.blobs) == 3
    assert "annotations" not in build_vuln_db(title=None).manifest_json["layers"][0]
    unsafe = build_vuln_db(title="../x", layer_media_type=JAVA_DB_LAYER).manifest_json["layers"][0]
    assert unsafe["annotations"]["org.opencontainers.image.title"] == "../x"
    assert unsafe["mediaType"] == JAVA_DB_LAYER


def test_java_db_maps_the_test_jar_sha1(tmp_path: Path) -> None:
    artifact = build_java_db(updated_at=UPDATED)
    descriptor = artifact.manifest_json["layers"][0]
    assert descriptor["mediaType"] == JAVA_DB_LAYER
    assert descriptor["annotations"]["org.opencontainers.image.title"] == "javadb.tar.gz"
    files = members(artifact.layers[0])
    assert list(files) == ["trivy-java.db", "metadata.json"]
    assert json.loads(files["metadata.json"])["Version"] == 1
    (tmp_path / "java.db").write_bytes(files["trivy-java.db"])
    with sqlite3.connect(tmp_path / "java.db") as conn:
        row = conn.execute(
            "SELECT a.group_id, a.artifact_id, i.version, i.archive_type FROM indices i"
            " JOIN artifacts a ON a.id = i.artifact_id WHERE i.sha1 = ?",
            (hashlib.sha1(build_test_jar()).digest(),),  # noqa: S324
        ).fetchone()
    conn.close()
    assert row == (MAVEN_GROUP, MAVEN_ARTIFACT, MAVEN_VERSION, "jar")


def test_checks_bundle_is_annotated_like_a_release() -> None:
    artifact = build_checks_bundle(version="2.1.0", created=UPDATED)
    manifest = artifact.manifest_json
    assert manifest["artifactType"] == "application/vnd.cncf.openpolicyagent.config.v1+json"
    assert manifest["layers"][0]["mediaType"] == CHECKS_LAYER
    assert manifest["layers"][0]["annotations"] == {"org.opencontainers.image.title": "bundle.tar.gz"}
    assert list(manifest["annotations"]) == [
        "org.opencontainers.image.created", "org.opencontainers.image.revision", "org.opencontainers.image.version"
    ]
    assert manifest["annotations"]["org.opencontainers.image.version"] == "2.1.0"
    files = members(artifact.layers[0])
    assert list(files) == [".manifest", "policies/docker/policies/test001.rego"]
    assert json.loads(files[".manifest"]) == {"revision": manifest["annotations"]["org.opencontainers.image.revision"],
                                              "roots": [""]}  # the OPA manifest Trivy 0.59 needs
    assert b"avd_id: AVD-TEST-0001" in files["policies/docker/policies/test001.rego"]
    assert "org.opencontainers.image.version" not in build_checks_bundle(version=None).manifest_json["annotations"]
