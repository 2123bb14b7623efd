"""Which links in a store count as a way out of it (writers refuse them, verify reports them)."""

from __future__ import annotations

from pathlib import Path

from trivy_mirror.store import Store
from trivy_mirror.store.links import store_links


def test_links_anywhere_a_writer_could_follow_are_found(store: Store, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store.root / "aquasec" / "trivy-db" / "blobs" / "sha256").mkdir(parents=True)
    (store.root / "aquasec" / "trivy-db" / "index.json").symlink_to(elsewhere / "index.json")
    (store.root / "aquasec" / "trivy-java-db").symlink_to(elsewhere)
    (store.root / "aquasec" / "trivy-db" / "blobs" / "sha512").symlink_to(elsewhere)
    (store.root / "aquasec" / "trivy-db" / "blobs" / "sha256" / ("1" * 64)).symlink_to(elsewhere / "x")
    found = [path.relative_to(store.root).as_posix() for path in store_links(store.root)]
    assert found == ["aquasec/trivy-db/blobs/sha512", "aquasec/trivy-db/index.json", "aquasec/trivy-java-db"]
