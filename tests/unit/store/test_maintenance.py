"""prune() drops old index entries per tag history; collect_garbage() deletes unreferenced blobs after a grace."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from store_helpers import artifact, describe, push, stream

from trivy_mirror.errors import StoreError, UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.store import Layout, Store
from trivy_mirror.store.retention import maintain


def age(layout: Layout, seconds: float) -> None:
    """Make every blob look ``seconds`` old."""
    then = time.time() - seconds
    for path in (layout.path / "blobs").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


async def test_prune_keeps_tag_and_newest_older_versions(layout: Layout) -> None:
    versions = [artifact(f"db v{i}".encode()) for i in range(4)]
    for item in versions:
        await push(layout, item, "2")
    checks = artifact(b"checks v1", media_type=mediatype.CHECKS_LAYER)
    await push(layout, checks, "1")
    await push(layout, artifact(b"checks v2", media_type=mediatype.CHECKS_LAYER), "1")

    removed = layout.prune(keep=2)
    assert removed == [versions[0].manifest.digest, versions[1].manifest.digest]
    assert [e.digest for e in layout.manifests()][:2] == [versions[2].manifest.digest, versions[3].manifest.digest]
    assert layout.tags()["2"].digest == versions[3].manifest.digest
    assert len(layout.manifests()) == 4, "tag 1 keeps its one older version"
    assert layout.prune(keep=2) == []

    assert layout.prune(keep=1) == [versions[2].manifest.digest, checks.manifest.digest]
    assert set(layout.tags()) == {"1", "2"}
    assert len(layout.manifests()) == 2
    # Blobs are not deleted by prune.
    assert layout.blob_path(versions[0].manifest.digest).exists()


async def test_prune_does_not_report_a_digest_still_in_use(layout: Layout) -> None:
    old, new = artifact(b"old"), artifact(b"new")
    await push(layout, old, "2")
    await push(layout, new, "2")
    await push(layout, old, "latest")
    assert layout.prune(keep=1) == []
    assert {t: e.digest for t, e in layout.tags().items()} == {"2": new.manifest.digest, "latest": old.manifest.digest}


def test_prune_needs_keep_of_at_least_one(layout: Layout) -> None:
    with pytest.raises(UsageError, match="at least 1"):
        layout.prune(keep=0)


async def test_prune_on_an_empty_layout(layout: Layout) -> None:
    assert layout.prune(keep=1) == []
    assert not layout.path.exists()


async def test_garbage_collection_with_grace(layout: Layout) -> None:
    old, new = artifact(b"old layer" * 100), artifact(b"new layer" * 100)
    await push(layout, old, "2")
    await push(layout, new, "2")
    stray = describe(b"never referenced", "application/octet-stream")
    await layout.push_blob(stray, stream(b"never referenced"))
    layout.prune(keep=1)

    assert layout.collect_garbage(grace_seconds=3600) == 0, "everything is younger than the grace"
    later = time.time() + 3601
    age(layout, 7200)
    freed = layout.collect_garbage(grace_seconds=3600, now=later)
    assert freed == len(old.manifest.data) + old.layer.size + stray.size
    assert not layout.blob_path(old.layer.digest).exists()
    assert not layout.blob_path(old.manifest.digest).exists()
    for descriptor, _ in new.blobs:  # including the config shared with the old version
        assert layout.blob_path(descriptor.digest).exists()
    assert layout.read_manifest("2") == new.manifest
    assert layout.collect_garbage(grace_seconds=0) == 0
    assert json.loads((layout.path / "trivy-mirror-gc.json").read_bytes())["unreferenced"] == {}


async def test_grace_counts_from_when_a_blob_stopped_being_referenced(layout: Layout) -> None:
    """A layer stored long ago must outlive its version's removal from the index by the grace period."""
    old, new = artifact(b"old layer" * 100), artifact(b"new layer" * 100)
    await push(layout, old, "2")
    await push(layout, new, "2")
    age(layout, 30 * 86400)  # both versions were stored a month ago
    assert layout.collect_garbage(grace_seconds=600) == 0, "both versions are still in the index"
    start = time.time()
    layout.prune(keep=1)
    assert layout.collect_garbage(grace_seconds=600, now=start) == 0, "the old version just left the index"
    assert layout.collect_garbage(grace_seconds=600, now=start + 599) == 0
    assert layout.blob_path(old.layer.digest).exists()
    recorded = json.loads((layout.path / "trivy-mirror-gc.json").read_bytes())["unreferenced"]
    assert set(recorded) == {str(old.layer.digest), str(old.manifest.digest)}
    assert layout.collect_garbage(grace_seconds=600, now=start + 601) == old.layer.size + len(old.manifest.data)
    assert not layout.blob_path(old.layer.digest).exists()
    assert json.loads((layout.path / "trivy-mirror-gc.json").read_bytes())["unreferenced"] == {}


async def test_a_blob_referenced_again_restarts_its_grace(layout: Layout) -> None:
    old, new = artifact(b"old layer" * 100), artifact(b"new layer" * 100)
    await push(layout, old, "2")
    await push(layout, new, "2")
    layout.prune(keep=1)
    start = time.time()
    age(layout, 7200)
    layout.collect_garbage(grace_seconds=600, now=start)
    await push(layout, old, "2")  # the old version comes back: referenced again, forgotten by the record
    assert layout.collect_garbage(grace_seconds=600, now=start + 10) == 0
    layout.prune(keep=1)
    assert layout.collect_garbage(grace_seconds=600, now=start + 700) == 0, "unreferenced again only now"
    assert layout.blob_path(new.layer.digest).exists()


async def test_a_damaged_gc_record_restarts_every_clock(layout: Layout) -> None:
    old, new = artifact(b"old layer" * 100), artifact(b"new layer" * 100)
    await push(layout, old, "2")
    await push(layout, new, "2")
    layout.prune(keep=1)
    age(layout, 7200)
    layout.collect_garbage(grace_seconds=600)
    (layout.path / "trivy-mirror-gc.json").write_bytes(b"{not json")
    assert layout.collect_garbage(grace_seconds=600, now=time.time() + 10) == 0
    assert layout.blob_path(old.layer.digest).exists()


async def test_garbage_collection_walks_indexes(layout: Layout) -> None:
    child = artifact(b"amd64")
    await push(layout, child, None)
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                       "manifests": [child.manifest.descriptor.to_json()]}).encode()
    await layout.tag("2", ManifestBytes.of(body, None))
    age(layout, 7200)
    assert layout.collect_garbage(grace_seconds=0) == 0
    assert layout.read_manifest(str(child.manifest.digest)) == child.manifest
    for descriptor, _ in child.blobs:
        assert layout.blob_path(descriptor.digest).exists()


async def test_reused_blob_gets_a_fresh_grace_period(store: Store, layout: Layout) -> None:
    item = artifact(b"layer")
    await push(layout, item, "2")
    layout.prune(keep=1)
    age(layout, 7200)
    # Another version of the tag references the same layer: the writer reuses the stored blob.
    other = store.layout("other")
    assert await other.mount_blob(item.layer, layout)
    await layout.push_blob(item.layer, stream(item.blobs[1][1]))
    assert layout.collect_garbage(grace_seconds=3600) == 0


async def test_unreadable_manifest_stops_garbage_collection(layout: Layout) -> None:
    item = artifact(b"layer")
    await push(layout, item, "2")
    layout.blob_path(item.manifest.digest).unlink()
    age(layout, 7200)
    with pytest.raises(StoreError, match="not collecting garbage"):
        layout.collect_garbage(grace_seconds=0)
    assert layout.blob_path(item.layer.digest).exists()


async def test_hard_linked_blob_frees_nothing_until_the_last_link(store: Store, layout: Layout) -> None:
    item = artifact(b"layer" * 1000)
    await push(layout, item, "2")
    other = store.layout("other")
    assert await other.mount_blob(item.layer, layout)
    age(other, 7200)
    assert other.collect_garbage(grace_seconds=0) == 0
    assert not other.blob_path(item.layer.digest).exists()
    assert layout.blob_path(item.layer.digest).exists()


async def test_garbage_collection_never_deletes_through_a_linked_blobs_dir(layout: Layout, tmp_path: Path) -> None:
    item = artifact(b"layer")
    await push(layout, item, "2")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sha256").mkdir(parents=True)
    victim = elsewhere / "sha256" / ("0" * 64)
    victim.write_bytes(b"not referenced, not ours")
    age(layout, 7200)
    for descriptor, data in item.blobs:
        (elsewhere / "sha256" / descriptor.digest.hex).write_bytes(data)
    (elsewhere / "sha256" / item.manifest.digest.hex).write_bytes(item.manifest.data)
    blobs = layout.path / "blobs"
    shutil.rmtree(blobs)
    blobs.symlink_to(elsewhere)
    with pytest.raises(StoreError, match="symbolic link"):
        layout.collect_garbage(grace_seconds=0)
    assert victim.exists()



async def test_blobs_of_a_push_whose_manifest_never_came_are_collected_after_the_grace(store: Store) -> None:
    """A repository holding only blobs has no index.json: not a repository to serve, but maintained all the same."""
    orphan = store.layout("team/abandoned")
    blob = describe(b"uploaded, never referenced", "application/octet-stream")
    await orphan.push_blob(blob, stream(b"uploaded, never referenced"))
    served = store.layout("team/served")
    await push(served, artifact(b"served layer"), "v1")
    assert store.repositories() == ["team/served"]
    assert store.stored_repositories() == ["team/abandoned", "team/served"]
    assert maintain(store, keep=1, grace=3600) == 0, "younger than the grace: a push may still be under way"
    age(orphan, 7200)
    assert maintain(store, keep=1, grace=0) == blob.size
    assert not orphan.blob_path(blob.digest).exists()
