"""A served snapshot is one version of a repository, whatever a concurrent sync writes while it loads."""

from __future__ import annotations

import logging

import pytest

from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.server.cache import load_snapshot
from trivy_mirror.store import Layout, Store

from .helpers import make_artifact, push


async def test_a_sync_replacing_the_index_during_a_load_changes_nothing_in_the_snapshot(
        store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Right after the loader's first read of index.json, a sync tags a new version and prunes the old one."""
    layout = store.layout("aquasec/trivy-db")
    old, new = make_artifact(b"old" * 1000), make_artifact(b"new" * 1000)
    await push(layout, old, "2")
    await push(layout, new, None)  # the new version's blobs are stored; the index does not list it yet
    read_entries = Layout._entries
    reads = 0

    def sync_after_first_read(self: Layout) -> list[Descriptor]:
        nonlocal reads
        entries = read_entries(self)
        reads += 1
        if reads == 1:
            monkeypatch.setattr(Layout, "_entries", read_entries)
            self._store_manifest(new.manifest, new.manifest.parsed, "2")
            self.prune(keep=1)
            monkeypatch.setattr(Layout, "_entries", sync_after_first_read)
        return entries

    monkeypatch.setattr(Layout, "_entries", sync_after_first_read)
    with caplog.at_level(logging.WARNING):
        snapshot = load_snapshot(store.layout("aquasec/trivy-db"))
    assert reads >= 1
    assert "not serving" not in caplog.text
    assert snapshot.tags == ("2",)
    assert snapshot.manifests["2"].body == old.manifest.data, "the version read first, whole"
    monkeypatch.setattr(Layout, "_entries", read_entries)
    assert load_snapshot(store.layout("aquasec/trivy-db")).manifests["2"].body == new.manifest.data


async def test_a_manifest_really_missing_is_still_reported(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    layout = store.layout("aquasec/trivy-db")
    old, new = make_artifact(b"old" * 1000), make_artifact(b"new" * 1000)
    await push(layout, old, "2")
    await push(layout, new, "latest")
    layout.blob_path(old.manifest.digest).unlink()
    with caplog.at_level(logging.WARNING):
        snapshot = load_snapshot(layout)
    assert f"not serving manifest {old.digest}" in caplog.text
    assert "missing" in caplog.text
    assert snapshot.tags == ("latest",)
