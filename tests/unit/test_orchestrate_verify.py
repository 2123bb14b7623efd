"""Whole verifications (:func:`trivy_mirror.orchestrate.verify_store`, as ``trivy_mirror.verify`` and the server's
audit run them): the store's pass and the VEX repositories' in one report, a repair under the store's lock and
checked again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trivy_mirror
from support.trivy_assets import DB_REPOSITORY, AssetSet
from trivy_mirror.errors import StoreError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.orchestrate import verify_store
from trivy_mirror.store import Store


def damage(store: Store, assets: AssetSet) -> Path:
    """A corrupt DB layer and a VEX repository whose current archive is corrupt; the archive's path."""
    store.layout(DB_REPOSITORY).blob_path(Digest.of(assets.db.layers[0])).write_bytes(b"rot")
    archive = store.root / "vex" / "hub" / "blobs" / "sha256" / Digest.of(b"archive").hex
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archivX")
    current = {"digest": str(Digest.of(b"archive")), "size": 7, "location": "https://x/a",
               "synced_at": "2026-01-01T00:00:00Z"}
    (archive.parents[2] / "repository.json").write_text(json.dumps({"name": "hub", "current": current}))
    return archive


def test_one_report_with_both_parts(full_store: Store, assets: AssetSet) -> None:
    damage(full_store, assets)
    report = trivy_mirror.verify(store=full_store.root)
    assert isinstance(report, trivy_mirror.VerifyReport) and not report.ok
    assert [p.kind for p in report.problems] == ["corrupt-blob", "corrupt-blob", "incomplete-tag", "bad-vex-archive"]
    assert (report.repositories, report.tags, report.vex_repositories) == (3, 4, 1)
    assert set(report.to_json()) == {"store", "ok", "repositories", "tags", "blobs", "bytes", "vex_repositories",
                                     "problems"}


def test_a_repair_is_checked_again(full_store: Store, assets: AssetSet) -> None:
    archive = damage(full_store, assets)
    report = verify_store(full_store, repair=True)
    assert report.ok and len(report.problems) == 4 and all(p.repaired for p in report.problems)
    assert not archive.exists()
    assert verify_store(full_store).problems == []


def test_a_repair_waits_for_the_store_lock(full_store: Store) -> None:
    with full_store.lock(1, purpose="sync"), pytest.raises(StoreError, match="is locked by another"):
        verify_store(full_store, repair=True, lock_timeout=0.2)


def test_no_store_is_one_error(tmp_path: Path) -> None:
    for repair in (False, True):
        with pytest.raises(StoreError, match="no store at"):
            verify_store(Store(tmp_path / "none"), repair=repair)
    assert not (tmp_path / "none").exists(), "a repair never creates the store"
