"""The store's own check (:mod:`trivy_mirror.store.verify`): blobs re-hashed, index entries resolved to complete
manifests, links reported; the repair removes what is corrupt and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.trivy_assets import CHECKS_REPOSITORY, DB_REPOSITORY, AssetSet
from trivy_mirror.errors import StoreError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.store import Store
from trivy_mirror.store.verify import StoreVerifier


def blob(store: Store, repository: str, data: bytes) -> Path:
    return store.layout(repository).blob_path(Digest.of(data))


def test_a_sound_store_has_no_problem(full_store: Store, assets: AssetSet) -> None:
    found = StoreVerifier(full_store, repair=False).run()
    assert found.problems == []
    assert (found.repositories, found.tags) == (3, 4)
    stored = [p for p in full_store.root.rglob("*") if p.parent.parent.name == "blobs"]
    assert found.blobs == len(stored) and found.bytes == sum(p.stat().st_size for p in stored)


def test_a_corrupt_layer_is_reported_with_its_tag_and_repaired(full_store: Store, assets: AssetSet) -> None:
    layer = blob(full_store, DB_REPOSITORY, assets.db.layers[0])
    layer.write_bytes(b"rot")
    found = StoreVerifier(full_store, repair=False).run()
    assert [(p.kind, p.repaired) for p in found.problems] == [("corrupt-blob", False), ("incomplete-tag", False)]
    assert found.problems[1].path == f"{DB_REPOSITORY}:2" and "is corrupt" in found.problems[1].detail
    assert layer.exists(), "a check changes nothing"

    repaired = StoreVerifier(full_store, repair=True).run()
    assert all(p.repaired for p in repaired.problems) and len(repaired.problems) == 2
    assert not layer.exists()
    assert full_store.layout(DB_REPOSITORY).tags() == {}
    assert set(full_store.layout(CHECKS_REPOSITORY).tags()) == {"1", "2"}, "other repositories untouched"
    assert StoreVerifier(full_store, repair=False).run().problems == []


def test_an_untagged_entry_whose_manifest_is_gone(full_store: Store, assets: AssetSet) -> None:
    layout = full_store.layout(DB_REPOSITORY)
    document = json.loads(layout.index_path.read_bytes())
    del document["manifests"][0]["annotations"]
    layout.index_path.write_text(json.dumps(document))
    blob(full_store, DB_REPOSITORY, assets.db.manifest).unlink()
    [problem] = StoreVerifier(full_store, repair=True).run().problems
    assert problem.kind == "incomplete-manifest" and problem.detail.endswith("is missing")
    assert layout.manifests() == []


def test_an_unreadable_index_is_removed_by_the_repair(full_store: Store) -> None:
    index = full_store.layout(DB_REPOSITORY).index_path
    index.write_text("{not json")
    [problem] = StoreVerifier(full_store, repair=False).run().problems
    assert problem.kind == "bad-index" and problem.path == str(index)
    StoreVerifier(full_store, repair=True).run()
    assert not index.exists()


def test_a_stray_blob_misnamed_or_a_link_is_corrupt(full_store: Store, tmp_path: Path) -> None:
    blobs = full_store.layout(DB_REPOSITORY).path / "blobs" / "sha256"
    (blobs / ("ab" * 32)).write_bytes(b"junk")
    (blobs / "short").write_bytes(b"junk")
    (tmp_path / "outside").write_bytes(b"keep me")
    (blobs / ("cd" * 32)).symlink_to(tmp_path / "outside")
    found = StoreVerifier(full_store, repair=True).run()
    assert sorted((Path(p.path).name[:4], p.detail) for p in found.problems) == [
        ("abab", f"content hashes to sha256:{Digest.of(b'junk').hex[:12]}"),
        ("cdcd", "not a regular file"), ("shor", "not named ALGORITHM/HEX")]
    assert (tmp_path / "outside").read_bytes() == b"keep me", "a link's target is never touched"


def test_a_link_in_place_of_a_control_directory(full_store: Store, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (full_store.root / ".tmp").rmdir()  # left empty by the writes
    (full_store.root / ".tmp").symlink_to(elsewhere)
    [problem] = StoreVerifier(full_store, repair=True).run().problems
    assert problem.kind == "link" and problem.repaired and str(elsewhere) in problem.detail
    assert not (full_store.root / ".tmp").is_symlink() and elsewhere.is_dir()


def test_each_blob_file_is_hashed_once_and_vex_archives_are_among_them(full_store: Store) -> None:
    archive = full_store.root / "vex" / "hub" / "blobs" / "sha256" / Digest.of(b"archive").hex
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archive")
    assert archive in list(full_store.blob_files())
    verifier = StoreVerifier(full_store, repair=False)
    found = verifier.run()
    counted = found.blobs
    assert verifier.blob_ok(archive) and found.blobs == counted


def test_no_store_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        StoreVerifier(Store(tmp_path / "none"), repair=False).run()
