"""The whole syncs of :mod:`trivy_mirror.orchestrate`, in-process: one destination, a fan-out to several, and the
server's scheduled :class:`StoreSync`. The source is the in-memory registry of the registry client's tests on a
loopback port; the destinations are temporary directories. Waits end on ``asyncio.Event`` gates, not the clock.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from tests.unit.registry.fake_registry import FakeRegistry

from support.trivy_assets import build_checks_bundle
from trivy_mirror.catalog.assets import CATALOG, AssetSpec, TagSpec
from trivy_mirror.catalog.state import last_attempt
from trivy_mirror.errors import UsageError
from trivy_mirror.http.transport import RetryPolicy, Timeouts
from trivy_mirror.mirror.endpoints import ConnectionOptions
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import StoreSync, sync_destination, sync_destinations
from trivy_mirror.static import StaticDestination
from trivy_mirror.static.tree import StaticTree
from trivy_mirror.store import Store

CHECKS = next(spec for spec in CATALOG if spec.name == "checks")
SPECS = [replace(CHECKS, name=f"asset-{i}", repository=f"trivy-checks-{i}", tags=(TagSpec("2"),)) for i in range(3)]
MISSING = replace(CHECKS, name="missing", repository="trivy-checks-missing", tags=(TagSpec("2"),))
"""An asset the source does not have: its required tag fails."""
GUARD = 10.0
"""Seconds before a wait that should end at once is called a hang (a failure, never a pass)."""
FAST = RetryPolicy(attempts=1, backoff_base=0.01, backoff_max=0.05, retry_after_floor=0.01, retry_after_cap=1.0)


class Upstream:
    """The source registry with every asset of :data:`SPECS`, and a gate its manifest reads may wait on."""

    def __init__(self, fake: FakeRegistry, host: str) -> None:
        self.fake = fake
        self.host = host
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()
        """Set when a manifest read reached the gate."""
        fake.hooks.append(self._hold)

    async def _hold(self, request: web.Request) -> web.StreamResponse | None:
        if "/manifests/" in request.path:
            self.reading.set()
            await self.gate.wait()
        return None

    @property
    def sources(self) -> list[Place]:
        return [Place.parse(f"{self.host}/aquasec")]

    @property
    def options(self) -> ConnectionOptions:
        return ConnectionOptions(retry=FAST, timeouts=Timeouts(connect=2.0, read=2.0, probe=1.0),
                                 schemes={self.host: "http"})

    def blob_reads(self) -> list[str]:
        """The paths of every blob download, in order."""
        return [seen.path for seen in self.fake.requests("GET", "/blobs/")]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    fake = FakeRegistry()
    for i, spec in enumerate(SPECS):
        artifact = build_checks_bundle(version=f"2.0.{i}", revision=f"{i:040x}", created=datetime(2026, 1, 1,
                                                                                                   tzinfo=UTC))
        repository = f"aquasec/{spec.repository}"
        for blob in artifact.blobs.values():
            fake.put_blob(repository, blob)
        fake.put_manifest(repository, "2", artifact.manifest)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield Upstream(fake, f"127.0.0.1:{server.port}")
    await server.close()


def _attempt(store: Store, spec: AssetSpec) -> str | None:
    return last_attempt(store.layout(spec.mirror_repository).read_state(), "2").result


async def test_sync_destination_into_the_store(upstream: Upstream, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    report = await sync_destination([*SPECS, MISSING], upstream.sources, upstream.options, ConnectionOptions(),
                                    store.root, None)
    assert report.destination == str(store.root)
    assert [(r.asset, r.outcome) for r in report.results] == [
        ("asset-0", "updated"), ("asset-1", "updated"), ("asset-2", "updated"), ("missing", "failed")]
    assert not report.ok
    assert [_attempt(store, spec) for spec in [*SPECS, MISSING]] == ["ok", "ok", "ok", "failed"]
    for spec in SPECS:
        assert await store.layout(spec.mirror_repository).resolve("2") is not None

    again = await sync_destination(SPECS, upstream.sources, upstream.options, ConnectionOptions(), store.root, None)
    assert again.ok and [r.outcome for r in again.results] == ["unchanged"] * len(SPECS)


async def test_sync_destinations_reports_each_and_reads_each_blob_once(upstream: Upstream, tmp_path: Path) -> None:
    trees = [tmp_path / "a", tmp_path / "b"]
    reports = await sync_destinations([f"static:{tree}" for tree in trees], SPECS, upstream.sources,
                                      upstream.options, ConnectionOptions())
    assert [report.destination for report in reports] == [f"static:{tree}" for tree in trees]
    for report, tree in zip(reports, trees, strict=True):
        assert report.ok and [r.outcome for r in report.results] == ["updated"] * len(SPECS)
        book = StaticDestination(tree).state
        assert all(last_attempt(book.load(spec.mirror_repository), "2").result == "ok" for spec in SPECS)
    reads = upstream.blob_reads()
    assert len(reads) == len(set(reads)) == len(SPECS)  # each layer once for both trees (the empty config is inline)


async def test_a_failing_destination_does_not_stop_the_others(upstream: Upstream, tmp_path: Path) -> None:
    good, locked = tmp_path / "good", tmp_path / "locked"
    with StaticTree(locked).work.lock(purpose="prune"):
        reports = await sync_destinations([f"static:{locked}", f"static:{good}"], SPECS, upstream.sources,
                                          upstream.options, ConnectionOptions(), lock_timeout=0)
    failed, done = reports
    assert failed.destination == f"static:{locked}" and not failed.ok
    assert [(r.asset, r.outcome) for r in failed.results] == [("destination", "failed")]
    assert "lock" in failed.results[0].message
    assert done.destination == f"static:{good}" and done.ok
    assert [r.outcome for r in done.results] == ["updated"] * len(SPECS)


async def test_sync_destinations_refuses_a_destination_given_twice(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="given twice"):
        await sync_destinations([f"static:{tmp_path}", f"static:{tmp_path}"], SPECS, upstream.sources,
                                upstream.options, ConnectionOptions())


def _store_sync(upstream: Upstream, store: Store, specs: list[AssetSpec]) -> StoreSync:
    return StoreSync(store, specs, upstream.sources, upstream.options, lock_timeout=GUARD)


async def test_store_sync_records_the_attempt(upstream: Upstream, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    outcome = await _store_sync(upstream, store, SPECS)()
    assert outcome.ok
    assert outcome.message == "updated " + ", ".join(f"{spec.mirror_repository}:2" for spec in SPECS)
    assert [_attempt(store, spec) for spec in SPECS] == ["ok"] * len(SPECS)
    again = await _store_sync(upstream, store, SPECS)()
    assert again.ok and again.message == "everything up to date"


async def test_store_sync_skips_while_another_sync_holds_the_store(upstream: Upstream, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    sync = _store_sync(upstream, store, SPECS)
    upstream.gate.clear()
    first = asyncio.create_task(sync())
    async with asyncio.timeout(GUARD):
        await upstream.reading.wait()  # the first sync holds the store's lock and reads the source
    reads = len(upstream.fake.requests(contains="/manifests/"))
    second = await sync()
    assert second.ok
    assert second.message.startswith(f"skipped: pid {os.getpid()} (serve sync) is syncing this store")
    assert len(upstream.fake.requests(contains="/manifests/")) == reads  # the second one read nothing
    upstream.gate.set()
    async with asyncio.timeout(GUARD):
        outcome = await first
    assert outcome.ok and outcome.message.startswith("updated ")
    assert [_attempt(store, spec) for spec in SPECS] == ["ok"] * len(SPECS)


async def test_store_sync_reports_failures_in_its_outcome(upstream: Upstream, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    outcome = await _store_sync(upstream, store, [*SPECS, MISSING])()
    assert not outcome.ok
    assert outcome.message.startswith(f"{MISSING.mirror_repository}:2: no source could be used: ")
    assert _attempt(store, MISSING) == "failed"
    assert [_attempt(store, spec) for spec in SPECS] == ["ok"] * len(SPECS)


async def test_store_sync_without_a_reachable_source(tmp_path: Path) -> None:
    """No source answering is one failure line, recorded for every asset; the sync itself does not raise."""
    idle = TestServer(web.Application(), host="127.0.0.1")
    await idle.start_server()
    host = f"127.0.0.1:{idle.port}"
    await idle.close()  # a port nothing listens on any more
    store = Store(tmp_path / "store")
    options = ConnectionOptions(retry=FAST, timeouts=Timeouts(connect=2.0, read=2.0, probe=1.0),
                                schemes={host: "http"})
    outcome = await StoreSync(store, SPECS, [Place.parse(f"{host}/aquasec")], options, lock_timeout=GUARD)()
    assert not outcome.ok
    assert host in outcome.message
    assert [_attempt(store, spec) for spec in SPECS] == ["failed"] * len(SPECS)
