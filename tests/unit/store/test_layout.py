"""Layout as a WriteTarget: round trips, byte-exact manifests, atomic visibility of blobs and tags."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest
from store_helpers import artifact, describe, push, read_all, stream

from trivy_mirror.errors import InvalidDigest, InvalidReference, NotFound, StoreError, VerificationError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest, verified
from trivy_mirror.store import Layout, Store
from trivy_mirror.store import stream as store_stream
from trivy_mirror.store.index import ANNOTATION_PREVIOUS_TAG, REF_NAME


def tmp_files(store: Store) -> list[str]:
    tmp = store.root / ".tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


async def test_round_trip(store: Store, layout: Layout) -> None:
    item = artifact(b"layer bytes" * 1000)
    await push(layout, item, "2")

    assert layout.tags()["2"].digest == item.manifest.digest
    assert (layout.path / "oci-layout").read_bytes() == b'{"imageLayoutVersion": "1.0.0"}'
    index = json.loads(layout.index_path.read_bytes())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == mediatype.OCI_INDEX
    assert index["manifests"] == [{
        "mediaType": mediatype.OCI_MANIFEST,
        "digest": str(item.manifest.digest),
        "size": len(item.manifest.data),
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "annotations": {REF_NAME: "2"},
    }]
    for descriptor, data in item.blobs:
        assert await layout.blob_exists(descriptor)
        assert await read_all(layout.fetch_blob(descriptor)) == data
        assert layout.blob_path(descriptor.digest).read_bytes() == data
    assert store.repositories() == ["aquasec/trivy-db"]
    assert tmp_files(store) == []


async def test_manifest_is_byte_exact(layout: Layout) -> None:
    item = artifact(b"x")
    await push(layout, item, "2")

    by_tag = await layout.get_manifest("2")
    by_digest = layout.read_manifest(str(item.manifest.digest))
    assert by_tag == item.manifest
    assert by_digest == item.manifest
    assert layout.blob_path(item.manifest.digest).read_bytes() == item.manifest.data
    expected = describe(item.manifest.data, mediatype.OCI_MANIFEST)
    assert await layout.resolve("2") == expected
    assert await layout.resolve(str(item.manifest.digest)) == expected


async def test_absent_things(layout: Layout) -> None:
    assert layout.tags() == {}
    assert layout.manifests() == []
    assert layout.read_manifest("2") is None
    assert layout.read_manifest("sha256:" + "0" * 64) is None
    assert await layout.resolve("2") is None
    with pytest.raises(NotFound, match="manifest 2 is not in oci-layout:"):
        await layout.get_manifest("2")
    missing = describe(b"nothing", "application/octet-stream")
    assert not await layout.blob_exists(missing)
    with pytest.raises(NotFound, match="blob sha256:"):
        await read_all(layout.fetch_blob(missing))
    assert not layout.path.exists(), "reading must not create the layout"


async def test_malformed_references_raise(layout: Layout) -> None:
    with pytest.raises(InvalidReference):
        layout.read_manifest("bad tag")
    with pytest.raises(InvalidDigest):
        await layout.resolve("sha256:short")


async def test_tag_moves_only_when_manifest_is_pushed(layout: Layout) -> None:
    first, second = artifact(b"v1"), artifact(b"v2")
    await push(layout, first, "2")
    for descriptor, data in second.blobs:
        await layout.push_blob(descriptor, stream(data))
    assert layout.tags()["2"].digest == first.manifest.digest

    await layout.tag("2", second.manifest)
    assert layout.tags()["2"].digest == second.manifest.digest
    entries = layout.manifests()
    assert [e.digest for e in entries] == [first.manifest.digest, second.manifest.digest]
    assert entries[0].annotations == {ANNOTATION_PREVIOUS_TAG: "2"}
    # The older version stays readable by digest.
    assert layout.read_manifest(str(first.manifest.digest)) == first.manifest


async def test_same_tag_and_digest_again_does_not_rewrite(layout: Layout) -> None:
    item = artifact(b"v1")
    await push(layout, item, "2")
    before = layout.index_path.stat()
    await layout.tag("2", item.manifest)
    after = layout.index_path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


async def test_retagging_an_older_version_keeps_one_entry(layout: Layout) -> None:
    first, second = artifact(b"v1"), artifact(b"v2")
    await push(layout, first, "2")
    await push(layout, second, "2")
    await push(layout, first, "2")
    assert [(e.digest, e.annotations) for e in layout.manifests()] == [
        (second.manifest.digest, {ANNOTATION_PREVIOUS_TAG: "2"}),
        (first.manifest.digest, {REF_NAME: "2"}),
    ]


async def test_two_tags_on_one_manifest(layout: Layout) -> None:
    item = artifact(b"v1")
    await push(layout, item, "2")
    await push(layout, item, "latest")
    assert set(layout.tags()) == {"2", "latest"}


async def test_manifest_with_missing_blob_is_refused(layout: Layout) -> None:
    item = artifact(b"layer")
    config, data = item.blobs[0]
    await layout.push_blob(config, stream(data))
    with pytest.raises(StoreError, match=r"blob sha256:\w{12} \(application/vnd.aquasec.trivy.db.layer"):
        await layout.tag("2", item.manifest)
    assert layout.tags() == {}
    assert not layout.blob_path(item.manifest.digest).exists()


async def test_embedded_data_is_stored_instead_of_refused(layout: Layout) -> None:
    layer = describe(b"layer", "application/octet-stream")
    body = json.dumps({
        "schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
        "config": {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(b"{}")), "size": 2, "data": "e30="},
        "layers": [layer.to_json()],
    }).encode()
    await layout.push_blob(layer, stream(b"layer"))
    await layout.tag("2", ManifestBytes.of(body, None))
    assert layout.blob_path(Digest.of(b"{}")).read_bytes() == b"{}"


async def test_index_children_are_served_by_digest(layout: Layout) -> None:
    child = artifact(b"amd64")
    await push(layout, child, None)
    assert layout.manifests() == [], "an untagged manifest is stored as a blob only"
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": [
        {**child.manifest.descriptor.to_json(), "platform": {"os": "linux", "architecture": "amd64"}}
    ]}).encode()
    parent = ManifestBytes.of(body, None)
    await layout.tag("2", parent)
    assert layout.tags()["2"].media_type == mediatype.OCI_INDEX
    assert layout.read_manifest(str(child.manifest.digest)) == child.manifest


async def test_index_with_missing_child_is_refused(layout: Layout) -> None:
    child = artifact(b"amd64")
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                       "manifests": [child.manifest.descriptor.to_json()]}).encode()
    with pytest.raises(StoreError, match="is not in the store"):
        await layout.tag("2", ManifestBytes.of(body, None))


async def bad_stream(data: bytes, fail_after: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in stream(data, 1024):
        if sent >= fail_after:
            raise VerificationError("boom")
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("fail_after", [0, 5000, 10 * 1024 * 1024])
async def test_bad_stream_leaves_nothing(store: Store, layout: Layout, fail_after: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_stream, "FLUSH_SIZE", 1)  # a periodic fdatasync is in flight when the stream fails
    data = os.urandom(12 * 1024 * 1024)
    descriptor = describe(data, "application/octet-stream")
    with pytest.raises(VerificationError, match="boom"):
        await layout.push_blob(descriptor, bad_stream(data, fail_after))
    assert not layout.blob_path(descriptor.digest).exists()
    assert tmp_files(store) == []


async def test_digest_mismatch_leaves_nothing(store: Store, layout: Layout) -> None:
    claimed = describe(b"good content", "application/octet-stream")
    with pytest.raises(VerificationError, match="does not match its digest"):
        await layout.push_blob(claimed, verified(stream(b"evil content"), claimed.digest, claimed.size))
    assert not await layout.blob_exists(claimed)
    assert tmp_files(store) == []


@pytest.mark.parametrize("actual", [b"short", b"much longer than expected"])
async def test_size_is_checked_by_the_store(store: Store, layout: Layout, actual: bytes) -> None:
    descriptor = describe(b"expected size!", "application/octet-stream")
    with pytest.raises(VerificationError, match="bytes"):
        await layout.push_blob(descriptor, stream(actual))
    assert not layout.blob_path(descriptor.digest).exists()
    assert tmp_files(store) == []


async def test_existing_blob_is_kept_and_stream_still_consumed(layout: Layout) -> None:
    data = b"same bytes"
    descriptor = describe(data, "application/octet-stream")
    await layout.push_blob(descriptor, stream(data))
    inode = layout.blob_path(descriptor.digest).stat().st_ino
    consumed = []

    async def watched() -> AsyncIterator[bytes]:
        async for chunk in stream(data):
            consumed.append(chunk)
            yield chunk

    await layout.push_blob(descriptor, watched())
    assert b"".join(consumed) == data
    assert layout.blob_path(descriptor.digest).stat().st_ino == inode
    with pytest.raises(VerificationError):
        await layout.push_blob(descriptor, verified(stream(b"different!"), descriptor.digest, descriptor.size))


async def test_cancelled_push_leaves_nothing(store: Store, layout: Layout) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            yield b"\0" * 1024 * 1024
            await asyncio.sleep(0)

    descriptor = describe(b"irrelevant", "application/octet-stream")
    big = type(descriptor)(descriptor.media_type, descriptor.digest, 1 << 40)
    task = asyncio.create_task(layout.push_blob(big, endless()))
    await started.wait()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not layout.blob_path(descriptor.digest).exists()
    assert tmp_files(store) == []


async def test_large_blob_in_one_mebibyte_chunks(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_stream, "FLUSH_SIZE", store_stream.BATCH_SIZE)
    data = os.urandom(20 * 1024 * 1024 + 123)
    descriptor = describe(data, "application/octet-stream")
    await layout.push_blob(descriptor, verified(stream(data, 64 * 1024), descriptor.digest, descriptor.size))
    chunks = [chunk async for chunk in layout.fetch_blob(descriptor)]
    assert max(len(c) for c in chunks) == 1024 * 1024
    assert b"".join(chunks) == data


async def test_mount_hard_links_between_layouts(store: Store, layout: Layout) -> None:
    item = artifact(b"shared layer")
    await push(layout, item, "2")
    other = store.layout("aquasecurity/trivy-db")
    for descriptor, _ in item.blobs:
        assert await other.mount_blob(descriptor, layout)
        assert other.blob_path(descriptor.digest).stat().st_ino == layout.blob_path(descriptor.digest).stat().st_ino
    await other.tag("2", item.manifest)
    assert other.read_manifest("2") == item.manifest
    assert tmp_files(store) == []


async def test_mount_falls_back(store: Store, layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    item = artifact(b"layer")
    other = store.layout("other")
    assert not await other.mount_blob(item.layer, layout), "absent in the source"
    assert not await other.mount_blob(item.layer, object()), "not a layout"  # type: ignore[arg-type]
    await push(layout, item, "2")

    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    assert not await other.mount_blob(item.layer, layout)
    assert not await other.blob_exists(item.layer)


async def test_state_round_trip(layout: Layout) -> None:
    assert layout.read_state() == {}
    layout.write_state({"tags": {"2": {"updated_at": "2024-01-01T00:00:00Z"}}})
    assert layout.read_state() == {"tags": {"2": {"updated_at": "2024-01-01T00:00:00Z"}}}
    (layout.path / "trivy-mirror.json").write_text("{not json")
    assert layout.read_state() == {}
    (layout.path / "trivy-mirror.json").write_text("[1]")
    assert layout.read_state() == {}


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"manifests": [{"digest": "x"}]}', b"\xff"])
async def test_corrupt_index_is_a_one_line_store_error(layout: Layout, content: bytes) -> None:
    layout.path.mkdir(parents=True)
    layout.index_path.write_bytes(content)
    for read in (layout.tags, layout.manifests, lambda: layout.read_manifest("2")):
        with pytest.raises(StoreError) as caught:
            read()
        message = str(caught.value)
        assert str(layout.index_path) in message
        assert "\n" not in message
    with pytest.raises(StoreError, match=r"index\.json"):
        await push(layout, artifact(b"x"), "2")
    assert layout.index_path.read_bytes() == content, "a corrupt index is never overwritten"


async def test_damaged_manifest_blob_is_reported(layout: Layout) -> None:
    item = artifact(b"x")
    await push(layout, item, "2")
    layout.blob_path(item.manifest.digest).write_bytes(b"tampered")
    with pytest.raises(StoreError, match="does not match its digest"):
        layout.read_manifest("2")
    layout.blob_path(item.manifest.digest).unlink()
    with pytest.raises(StoreError, match="is missing"):
        await layout.get_manifest("2")


async def test_files_are_readable_by_others(layout: Layout) -> None:
    item = artifact(b"x")
    await push(layout, item, "2")
    for path in (layout.index_path, layout.blob_path(item.layer.digest)):
        assert path.stat().st_mode & 0o044 == 0o044 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
