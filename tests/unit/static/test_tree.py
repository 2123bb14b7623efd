"""The static tree as a write target: what lands where, atomic tags, aliases, sidecar, pruning, refusals."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trivy_mirror.errors import InvalidReference, StoreError, UsageError, VerificationError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.static import StaticTree, check_keep
from trivy_mirror.static.prune import prune
from trivy_mirror.static.repository import StaticRepository
from trivy_mirror.static.sidecar import write_sidecar
from trivy_mirror.static.vex import publish_vex
from trivy_mirror.vex.storage import VexRepository, VexState, VexVersion

CONFIG = b"{}"


async def chunks(data: bytes, size: int = 5) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def failing(data: bytes) -> AsyncIterator[bytes]:
    yield data[:3]
    raise VerificationError("digest mismatch")


def describe(data: bytes, media_type: str) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data))


def manifest_of(layer: bytes) -> ManifestBytes:
    body = {"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
            "config": describe(CONFIG, mediatype.OCI_EMPTY).to_json(),
            "layers": [{**describe(layer, mediatype.TRIVY_DB_LAYER).to_json(),
                        "annotations": {mediatype.ANNOTATION_TITLE: "db.tar.gz"}}]}
    return ManifestBytes(json.dumps(body, indent=3).encode(), mediatype.OCI_MANIFEST)


async def publish(repository: StaticRepository, layer: bytes, tag: str = "2") -> ManifestBytes:
    for data, media_type in ((CONFIG, mediatype.OCI_EMPTY), (layer, mediatype.TRIVY_DB_LAYER)):
        await repository.push_blob(describe(data, media_type), chunks(data))
    manifest = manifest_of(layer)
    await repository.tag(tag, manifest)
    return manifest


@pytest.fixture
def tree(tmp_path: Path) -> StaticTree:
    return StaticTree(tmp_path / "tree")


async def test_a_tag_is_the_manifest_bytes_beside_its_digest_with_aliases_and_ping(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    manifest = await publish(repository, b"layer one")
    base = tree.root / "v2" / "aquasec" / "trivy-db"
    assert (base / "manifests" / "2").read_bytes() == manifest.data
    assert (base / "manifests" / str(manifest.digest)).read_bytes() == manifest.data
    assert (base / "blobs" / str(Digest.of(b"layer one"))).read_bytes() == b"layer one"
    assert (tree.root / "v2" / "index.json").read_bytes() == b"{}\n"
    alias = tree.root / "v2" / "aquasecurity" / "trivy-db"
    assert alias.is_symlink() and os.readlink(alias) == "../aquasec/trivy-db"
    assert await repository.resolve("2") == manifest.descriptor
    assert (await tree.repository("aquasecurity/trivy-db").get_manifest("2")).data == manifest.data
    assert not list(tree.tmp.iterdir())


async def test_the_sidecar_names_every_file_with_its_type_and_digest(tree: StaticTree) -> None:
    manifest = await publish(tree.repository("aquasec/trivy-db"), b"layer")
    headers = json.loads((tree.meta / "headers.json").read_text())
    layer = str(Digest.of(b"layer"))
    tagged = {"Content-Type": mediatype.OCI_MANIFEST, "Docker-Content-Digest": str(manifest.digest)}
    for name in ("aquasec", "aquasecurity"):
        assert headers[f"/v2/{name}/trivy-db/manifests/2"] == tagged
        assert headers[f"/v2/{name}/trivy-db/manifests/{manifest.digest}"] == tagged
        assert headers[f"/v2/{name}/trivy-db/blobs/{layer}"] == {"Content-Type": "application/octet-stream",
                                                                 "Docker-Content-Digest": layer}
    assert headers["/v2/index.json"] == {"Content-Type": "application/json"}
    digests = (tree.meta / "nginx" / "digests.map").read_text()
    assert f'"/v2/aquasecurity/trivy-db/manifests/2" "{manifest.digest}";' in digests
    assert "blobs" not in digests and f"manifests/{manifest.digest}" not in digests
    types = (tree.meta / "nginx" / "content-types.map").read_text()
    assert f'"/v2/aquasec/trivy-db/manifests/{manifest.digest}" "{mediatype.OCI_MANIFEST}";' in types


async def test_a_manifest_is_refused_until_its_blobs_are_there(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    with pytest.raises(StoreError, match="is not in the tree"):
        await repository.tag("2", manifest_of(b"never pushed"))
    assert await repository.resolve("2") is None
    assert not (repository.path / "manifests" / "2").exists()


async def test_a_bad_stream_leaves_nothing_visible(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    descriptor = describe(b"abcdefgh", mediatype.TRIVY_DB_LAYER)
    with pytest.raises(VerificationError):
        await repository.push_blob(descriptor, failing(b"abcdefgh"))
    assert not await repository.blob_exists(descriptor)
    assert not list(tree.tmp.iterdir())


@pytest.mark.parametrize("keep", [1, 2, 3])
async def test_prune_keeps_the_newest_versions_of_each_tag(tree: StaticTree, keep: int) -> None:
    repository = tree.repository("aquasec/trivy-db")
    versions = [await publish(repository, f"layer {n}".encode()) for n in range(4)]
    old_checks = await publish(tree.repository("aquasec/trivy-checks"), b"checks", tag="1")
    prune(tree, keep)
    for n, manifest in enumerate(versions):
        kept = n >= len(versions) - keep
        assert (await repository.resolve(str(manifest.digest)) is not None) is kept
        assert await repository.blob_exists(describe(f"layer {n}".encode(), "x")) is kept
    assert await repository.blob_exists(describe(CONFIG, "x"))  # shared by every version
    assert await tree.repository("aquasec/trivy-checks").resolve("1") == old_checks.descriptor
    assert tree.history("aquasec/trivy-db") == {"2": [str(m.digest) for m in versions[-keep:]]}


async def test_prune_refuses_when_a_kept_manifest_is_damaged(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    first = await publish(repository, b"one")
    await publish(repository, b"two")
    (repository.path / "manifests" / str(first.digest)).write_bytes(b'{"schemaVersion": 2, "layers": []}')
    with pytest.raises(StoreError, match=r"not pruning .*is damaged"):
        prune(tree, 2)
    assert await repository.blob_exists(describe(b"one", "x"))


async def test_prune_removes_blobs_a_crashed_run_left_without_a_manifest(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    await publish(repository, b"served")
    orphan = describe(b"orphan", mediatype.TRIVY_DB_LAYER)
    await repository.push_blob(orphan, chunks(b"orphan"))
    assert prune(tree, 2) == 1
    assert not await repository.blob_exists(orphan)
    write_sidecar(tree)
    assert not any(str(orphan.digest) in path for path in json.loads((tree.meta / "headers.json").read_text()))


def test_names_that_would_write_inside_a_repository_are_refused(tree: StaticTree) -> None:
    for name in ("aquasec/blobs", "a/manifests/b", "../etc"):
        with pytest.raises(InvalidReference):
            tree.repository(name)


def test_destination_parsing_and_options(tree: StaticTree, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="static:DIR, not to a registry"):
        check_keep(3, object())
    assert check_keep(None, object()) == 2
    assert tree.public_url(None) is None
    assert tree.public_url("https://trivy.internal/") == "https://trivy.internal"
    tree.remember_public_url("https://trivy.internal")
    assert StaticTree(tree.root).public_url(None) == "https://trivy.internal"
    assert tree.public_url("http://other") == "http://other"
    with pytest.raises(UsageError, match="http:// or https://"):
        tree.public_url("trivy.internal")


def test_vex_is_published_archive_first_under_the_public_url_and_an_unchanged_archive_is_left_alone(
    tree: StaticTree,
) -> None:
    archive = b"\x1f\x8b a repacked archive"
    digest = str(Digest.of(archive))
    repository = VexRepository(tree.work.root, "hub")
    staged = tree.root / "staged"
    tree.root.mkdir(parents=True)
    staged.write_bytes(archive)
    repository.add_blob(staged, digest)
    upstream = {"name": "Hub", "description": "d", "versions": [
        {"spec_version": "0.1", "locations": [{"url": "https://up.example/main.tar.gz//hub-main"}],
         "update_interval": "24h"}]}
    now = datetime.now(UTC)
    repository.save(VexState("hub", manifest=upstream, current=VexVersion(
        digest, len(archive), "https://up.example/main.tar.gz//hub-main", "up.example", None, now, 1, 1, now, now)))

    assert publish_vex(tree, "http://mirror.internal:8080") == ["hub"]
    served = tree.root / "vex" / "hub"
    document = json.loads((served / ".well-known" / "vex-repository.json").read_bytes())
    assert document["versions"] == [{"spec_version": "0.1", "update_interval": "24h",
                                     "locations": [{"url": "http://mirror.internal:8080/vex/hub/archive.tar.gz"}]}]
    assert (served / "archive.tar.gz").read_bytes() == archive
    before = (served / "archive.tar.gz").stat()
    publish_vex(tree, "http://mirror.internal:8080")
    after = (served / "archive.tar.gz").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_prune_takes_a_dated_tag_with_its_version(tree: StaticTree) -> None:
    repository = tree.repository("aquasec/trivy-db")
    versions = []
    for n in range(3):
        versions.append(await publish(repository, f"layer {n}".encode()))
        await repository.tag(f"2-2026113{n}.0600", versions[-1])
    prune(tree, 2)
    assert await repository.resolve("2-20261130.0600") is None
    assert await repository.resolve(str(versions[0].digest)) is None
    for n in (1, 2):
        assert await repository.resolve(f"2-2026113{n}.0600") == versions[n].descriptor
