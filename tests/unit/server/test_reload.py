"""Reloading a repository of 1,000 versions (a push-fed mirror that is never pruned): linear, and never in
the way of readers (issue 12, item 6)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from support.clock import FakeClock
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.server import cache as cache_module
from trivy_mirror.server.cache import ManifestCache, Snapshot, load_snapshot
from trivy_mirror.server.watch import CHECK_INTERVAL
from trivy_mirror.store import Layout, Store
from trivy_mirror.store.index import serialize_index, tag_entries

from .helpers import make_artifact

VERSIONS = 1000
REPOSITORY = "aquasec/trivy-db"


def write_versions(layout: Layout, count: int, start: int = 0) -> list[str]:
    """``count`` versions of tag 2 written straight to disk (the store API would fsync each), oldest first;
    their manifest digests."""
    entries = layout.manifests()
    digests = []
    for number in range(start, start + count):
        artifact = make_artifact(f"layer {number}".encode(), created=f"2024-01-01T00:00:{number % 60:02d}Z")
        for descriptor, data in (artifact.config, artifact.layer, (artifact.manifest.descriptor,
                                                                   artifact.manifest.data)):
            path = layout.blob_path(descriptor.digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        entry = Descriptor(artifact.manifest.media_type, artifact.manifest.digest, len(artifact.manifest.data),
                           {"org.opencontainers.image.ref.name": "2"})
        entries = tag_entries(entries, entry, "2") or entries
        digests.append(artifact.digest)
    layout.path.mkdir(parents=True, exist_ok=True)
    (layout.path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    tmp = layout.index_path.with_suffix(".tmp")
    tmp.write_bytes(serialize_index(entries))
    tmp.replace(layout.index_path)
    return digests


def test_a_load_reads_the_index_once_and_each_manifest_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = store.layout(REPOSITORY)
    digests = write_versions(layout, VERSIONS)
    counts = {"index": 0, "manifests": 0}
    read_entries, read_blob = Layout._entries, Layout._read_manifest_blob

    def counted_entries(self: Layout) -> list[Descriptor]:
        counts["index"] += 1
        return read_entries(self)

    def counted_blob(self: Layout, descriptor: Descriptor) -> bytes:
        counts["manifests"] += 1
        return read_blob(self, descriptor)

    monkeypatch.setattr(Layout, "_entries", counted_entries)
    monkeypatch.setattr(Layout, "_read_manifest_blob", counted_blob)
    snapshot = load_snapshot(layout)
    assert counts == {"index": 1, "manifests": VERSIONS}
    assert snapshot.tags == ("2",)
    assert snapshot.manifests["2"] is snapshot.manifests[digests[-1]]
    assert len(snapshot.manifests) == VERSIONS + 1


async def test_readers_keep_the_old_snapshot_while_a_new_one_loads(store: Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    layout = store.layout(REPOSITORY)
    first = write_versions(layout, VERSIONS)
    cache = ManifestCache(store)
    old = await cache.get(REPOSITORY)
    assert old is not None and old.manifests["2"].headers["Docker-Content-Digest"] == first[-1]

    newer = write_versions(layout, 1, start=VERSIONS)
    release = threading.Event()
    started = threading.Event()

    def slow_load(served: Layout) -> Snapshot:
        started.set()
        assert release.wait(30)
        return load_snapshot(served)

    monkeypatch.setattr(cache_module, "load_snapshot", slow_load)
    refresh = asyncio.create_task(cache.refresh(REPOSITORY))
    assert await asyncio.to_thread(started.wait, 10)
    for _ in range(5):  # readers are answered at once, from the previous snapshot
        current = await asyncio.wait_for(cache.get(REPOSITORY), 0.5)
        assert current is old
    assert not refresh.done()
    release.set()
    await asyncio.wait_for(refresh, 30)
    current = await asyncio.wait_for(cache.get(REPOSITORY), 0.5)
    assert current is not None and current.manifests["2"].headers["Docker-Content-Digest"] == newer[-1]
    await cache.close()


async def test_a_refresh_during_a_load_gets_a_load_that_started_after_it(store: Store,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A push lands while a reload (which read the index before the push) is in flight: the push's refresh
    returns only once a snapshot that includes it is served."""
    layout = store.layout(REPOSITORY)
    write_versions(layout, 3)
    cache = ManifestCache(store)
    assert await cache.get(REPOSITORY) is not None
    release, loaded = threading.Event(), threading.Event()
    loads: list[int] = []

    def gated_load(served: Layout) -> Snapshot:
        snapshot = load_snapshot(served)
        loads.append(len(snapshot.manifests))
        if len(loads) == 1:
            loaded.set()
            assert release.wait(30)
        return snapshot

    monkeypatch.setattr(cache_module, "load_snapshot", gated_load)
    stale = asyncio.create_task(cache.refresh(REPOSITORY))
    assert await asyncio.to_thread(loaded.wait, 10)
    pushed = write_versions(layout, 1, start=3)
    push_refresh = asyncio.create_task(cache.refresh(REPOSITORY))
    release.set()
    await asyncio.wait_for(asyncio.gather(stale, push_refresh), 30)
    current = await cache.get(REPOSITORY)
    assert current is not None and current.manifests["2"].headers["Docker-Content-Digest"] == pushed[-1]
    assert len(loads) == 2
    await cache.close()


async def test_another_process_s_change_is_picked_up_without_a_request(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    layout = store.layout(REPOSITORY)
    write_versions(layout, 2)
    clock = FakeClock()
    cache = ManifestCache(store, clock)
    first = await cache.get(REPOSITORY)
    loaded = threading.Event()

    def noted_load(served: Layout) -> Snapshot:
        snapshot = load_snapshot(served)
        loaded.set()
        return snapshot

    monkeypatch.setattr(cache_module, "load_snapshot", noted_load)
    newer = write_versions(layout, 1, start=2)
    await clock.advance(CHECK_INTERVAL - 0.1)
    assert not loaded.is_set()  # the watcher looks once per interval
    await clock.advance(0.1)  # no request meanwhile: the watcher reloads on its own
    assert await asyncio.to_thread(loaded.wait, 10)
    await cache.close()  # waits for the load to be installed
    current = await cache.get(REPOSITORY)
    assert current is not first and current is not None
    assert current.manifests["2"].headers["Docker-Content-Digest"] == newer[-1]
    await cache.close()


def test_written_versions_are_a_valid_layout(store: Store) -> None:
    layout = store.layout(REPOSITORY)
    digests = write_versions(layout, 3)
    assert [str(entry.digest) for entry in layout.manifests()] == digests
    assert str(layout.tags()["2"].digest) == digests[-1]


async def test_a_herd_on_a_repository_not_loaded_yet_loads_it_once(store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """256 readers arriving together at a repository nobody asked for yet: one load, every reader gets it."""
    digests = write_versions(store.layout(REPOSITORY), 3)
    loads = 0
    release = threading.Event()

    def counted_load(served: Layout) -> Snapshot:
        nonlocal loads
        loads += 1
        assert release.wait(30)
        return load_snapshot(served)

    monkeypatch.setattr(cache_module, "load_snapshot", counted_load)
    cache = ManifestCache(store)
    herd = [asyncio.create_task(cache.get(REPOSITORY)) for _ in range(256)]
    await asyncio.sleep(0.1)
    release.set()
    snapshots = await asyncio.wait_for(asyncio.gather(*herd), 30)
    assert loads == 1
    assert all(s is snapshots[0] for s in snapshots) and snapshots[0] is not None
    assert snapshots[0].manifests["2"].headers["Docker-Content-Digest"] == digests[-1]
    await cache.close()
