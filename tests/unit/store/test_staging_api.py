"""What the store offers a writer that works beside it (a bundle's export and import): a part of a layout as a
layout of its own, a scratch directory on the store's file system, the repository-name check and the crash-safe
file writer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_helpers import artifact, describe, push, stream
from test_layout_referrers import referrer

from trivy_mirror.errors import InvalidReference, VerificationError
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store import Layout, LayoutSubset, Store, write_file


def write_out(subset: LayoutSubset, source: Layout, directory: Path) -> Layout:
    """The subset as files, as an export unpacked by ``tar x`` leaves them."""
    directory.mkdir(parents=True)
    (directory / "oci-layout").write_bytes(subset.layout_file)
    (directory / "index.json").write_bytes(subset.index)
    for blob in subset.blobs:
        path = directory / "blobs" / blob.digest.algorithm / blob.digest.hex
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source.blob_path(blob.digest).read_bytes())
    return Layout.plain(directory)


async def test_a_subset_is_a_complete_layout_of_the_tags_and_their_referrers(layout: Layout, tmp_path: Path) -> None:
    old, db, other = artifact(b"db old"), artifact(b"db"), artifact(b"other")
    await push(layout, old, "2")
    await push(layout, db, "2")
    await push(layout, other, "1")
    signature = referrer(db, b"signature")
    await push(layout, signature, None)
    countersignature = referrer(signature, b"countersignature")
    await push(layout, countersignature, None)
    current = layout.read_manifest("2")
    assert current is not None

    subset = await layout.subset([("2", current)], MAX_DEPTH)

    copy = write_out(subset, layout, tmp_path / "copy")
    assert json.loads(subset.layout_file) == {"imageLayoutVersion": "1.0.0"}
    assert list(copy.tags()) == ["2"]
    assert [e.digest for e in copy.manifests()] == [db.manifest.digest, signature.manifest.digest,
                                                    countersignature.manifest.digest]
    assert subset.blobs[0].digest == db.manifest.digest  # a manifest before its blobs
    assert len(subset.blobs) == len({d.digest for d in subset.blobs})  # each blob once (the configs are one)
    manifest = copy.read_manifest("2")
    assert manifest is not None and manifest.data == db.manifest.data
    assert [d.digest for d in await copy.referrers(db.manifest.digest)] == [signature.manifest.digest]
    for item in (db, signature, countersignature):
        for descriptor, _ in item.blobs:
            assert await copy.blob_exists(descriptor)
    assert not copy.blob_path(old.layer.digest).exists()
    assert not copy.blob_path(other.layer.digest).exists()

    shallow = await layout.subset([("2", current)], 1)
    assert [e.digest for e in write_out(shallow, layout, tmp_path / "shallow").manifests()] == [
        db.manifest.digest, signature.manifest.digest]


def test_a_scratch_dir_is_new_and_removes_what_crashed_writers_left(store: Store) -> None:
    stale = store.root / ".tmp" / "import-0123"
    (stale / "oci").mkdir(parents=True)
    other = store.root / ".tmp" / "other-0123"
    other.mkdir()

    scratch = store.scratch_dir("import-")

    assert scratch.parent == store.root / ".tmp" and scratch.name.startswith("import-")
    assert not scratch.exists() and not stale.exists() and other.exists()
    assert store.scratch_dir("import-") != scratch


def test_the_repository_check_is_the_layouts() -> None:
    assert Store.check_repository("aquasec/trivy-db") == "aquasec/trivy-db"
    with pytest.raises(InvalidReference, match="'blobs' is a reserved path component"):
        Store.check_repository("aquasec/blobs")


async def test_write_file_leaves_the_whole_file_or_nothing(tmp_path: Path) -> None:
    data = b"member content"
    target = tmp_path / "staged" / "oci" / "index.json"
    await write_file(target, tmp_path / "partial", describe(data, "application/octet-stream"), stream(data), "stage")
    assert target.read_bytes() == data

    async def broken() -> AsyncIterator[bytes]:
        yield data[:4]
        raise VerificationError("digest mismatch")

    other = tmp_path / "staged" / "other"
    with pytest.raises(VerificationError):
        await write_file(other, tmp_path / "partial", describe(data, "application/octet-stream"), broken(), "stage")
    assert not other.exists() and list((tmp_path / "partial").iterdir()) == []
