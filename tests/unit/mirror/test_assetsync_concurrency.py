"""AssetSync's scheduling, in-process: at most ``concurrency`` asset tags are copied at once, a slow asset does
not hold up the others, a failing one does not stop them.

The sources are an in-memory fake whose manifest reads and blob streams wait on ``asyncio.Event`` gates the test
opens; the destination is a store in a temporary directory. Nothing here waits on the wall clock: the
``asyncio.timeout`` guards only turn a hang (the behaviour under test broken) into a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from support.trivy_assets import Artifact, build_checks_bundle
from trivy_mirror.catalog.assets import CATALOG, AssetSpec, TagSpec
from trivy_mirror.catalog.state import StateBook, last_attempt
from trivy_mirror.errors import NotFound, RegistryError, Unreachable
from trivy_mirror.mirror.assetsync import AssetSync
from trivy_mirror.mirror.endpoints import RegistryPool, StoreDestination
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.oci.place import Place
from trivy_mirror.store import Store

CHECKS = next(spec for spec in CATALOG if spec.name == "checks")
SOURCE = Place("source.invalid", "aquasec")
GUARD = 10.0
"""Seconds before a wait that should end at once is called a hang (a failure, never a pass)."""


def _specs(count: int) -> list[AssetSpec]:
    """``count`` checks-shaped assets with one tag each: distinct repositories, each a job of its own."""
    return [replace(CHECKS, name=f"asset-{i}", repository=f"trivy-checks-{i}", tags=(TagSpec("2"),))
            for i in range(count)]


def _artifact(index: int) -> Artifact:
    return build_checks_bundle(version=f"2.0.{index}", revision=f"{index:040x}",
                               created=datetime(2026, 1, 1, tzinfo=UTC))


async def _settle() -> None:
    """Let every ready task run until it blocks (on a gate or the semaphore): yields, no clock."""
    for _ in range(50):
        await asyncio.sleep(0)


class Sources:
    """The source registry (pool, client and repositories in one): every asset's artifact, gates on the manifest
    reads and per-repository blob streams, and a record of which jobs are inside a copy."""

    def __init__(self, specs: Iterable[AssetSpec]) -> None:
        self.artifacts = {SOURCE.repository(spec.repository): _artifact(i) for i, spec in enumerate(specs)}
        self.manifest_gate = asyncio.Event()
        self.manifest_gate.set()
        self.blob_gates: dict[str, asyncio.Event] = {}
        self.failing_manifest: set[str] = set()
        self.failing_blobs: set[str] = set()
        self.active: set[str] = set()
        """Repositories whose copy has started (manifest read) and whose result is not recorded yet."""
        self.peak = 0
        self.recorded: set[str] = set()
        self.changed = asyncio.Event()

    async def client(self, registry: str) -> Sources:
        return self

    async def ping(self) -> None:
        return None

    def repository(self, name: str) -> Repository:
        return Repository(self, name)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def enter(self, name: str) -> None:
        self.active.add(name)
        self.peak = max(self.peak, len(self.active))
        self.changed.set()

    def done(self, name: str) -> None:
        self.active.discard(name)
        self.recorded.add(name)
        self.changed.set()


class Repository:
    """One source repository as a ReadTarget."""

    def __init__(self, sources: Sources, name: str) -> None:
        self.sources = sources
        self.name = name
        self.location = f"{SOURCE.registry}/{name}"

    @property
    def artifact(self) -> Artifact:
        return self.sources.artifacts[self.name]

    async def resolve(self, reference: str) -> Descriptor | None:
        data = self.artifact.manifest
        return Descriptor(mediatype.OCI_MANIFEST, Digest.of(data), len(data))

    async def get_manifest(self, reference: str) -> ManifestBytes:
        self.sources.enter(self.name)
        await self.sources.manifest_gate.wait()
        if self.name in self.sources.failing_manifest:
            raise RegistryError(f"{self.location}: 500 internal error")
        return ManifestBytes(self.artifact.manifest, mediatype.OCI_MANIFEST)

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return str(descriptor.digest) in self.artifact.blobs

    async def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        gate = self.sources.blob_gates.get(self.name)
        if gate is not None:
            await gate.wait()
        data = self.artifact.blobs.get(str(descriptor.digest))
        if data is None:
            raise NotFound(f"{descriptor.digest} is not in {self.location}")
        yield data[:10]
        if self.name in self.sources.failing_blobs:
            raise Unreachable(f"{self.location}: connection reset")
        yield data[10:]


class RecordingBook:
    """The store's state book, telling the sources when a job's result is recorded (its end)."""

    def __init__(self, inner: StateBook, sources: Sources) -> None:
        self.inner = inner
        self.sources = sources

    def load(self, repository: str) -> dict[str, object]:
        return self.inner.load(repository)

    def save(self, repository: str, state: dict[str, object]) -> None:
        self.inner.save(repository, state)
        self.sources.done(SOURCE.repository(repository.split("/")[-1]))


def _sync(tmp_path: Path, specs: list[AssetSpec], concurrency: int) -> tuple[AssetSync, Sources, Store]:
    sources = Sources(specs)
    store = Store(tmp_path / "store")
    destination = StoreDestination(store)
    destination.state = RecordingBook(destination.state, sources)
    return AssetSync([SOURCE], cast(RegistryPool, sources), destination, concurrency=concurrency), sources, store


def _attempt(store: Store, spec: AssetSpec) -> str | None:
    return last_attempt(store.layout(spec.mirror_repository).read_state(), "2").result


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_at_most_concurrency_tags_are_copied_at_once(tmp_path: Path, concurrency: int) -> None:
    specs = _specs(5)
    sync, sources, store = _sync(tmp_path, specs, concurrency)
    sources.manifest_gate.clear()
    run = asyncio.create_task(sync.run(specs))
    await sources.wait_until(lambda: len(sources.active) >= concurrency)
    await _settle()
    assert len(sources.active) == concurrency, "more jobs started than the bound allows"
    sources.manifest_gate.set()
    async with asyncio.timeout(GUARD):
        results = await run
    assert sources.peak == concurrency
    assert [r.outcome for r in results] == ["updated"] * len(specs)
    assert all(_attempt(store, spec) == "ok" for spec in specs)


async def test_a_slow_asset_does_not_hold_up_the_others(tmp_path: Path) -> None:
    specs = _specs(4)
    sync, sources, store = _sync(tmp_path, specs, concurrency=2)
    slow = SOURCE.repository(specs[0].repository)
    sources.blob_gates[slow] = asyncio.Event()
    run = asyncio.create_task(sync.run(specs))
    others = {SOURCE.repository(spec.repository) for spec in specs[1:]}
    await sources.wait_until(lambda: others <= sources.recorded)
    assert not run.done()
    assert slow in sources.active and slow not in sources.recorded
    assert all(_attempt(store, spec) == "ok" for spec in specs[1:])
    assert _attempt(store, specs[0]) is None
    sources.blob_gates[slow].set()
    async with asyncio.timeout(GUARD):
        results = await run
    assert [r.outcome for r in results] == ["updated"] * len(specs)
    assert _attempt(store, specs[0]) == "ok"


async def test_a_failing_asset_does_not_stop_the_others(tmp_path: Path) -> None:
    specs = _specs(4)
    sync, sources, store = _sync(tmp_path, specs, concurrency=2)
    sources.failing_manifest.add(SOURCE.repository(specs[1].repository))
    sources.failing_blobs.add(SOURCE.repository(specs[2].repository))
    async with asyncio.timeout(GUARD):
        results = await sync.run(specs)
    assert [(r.asset, r.outcome) for r in results] == [
        ("asset-0", "updated"), ("asset-1", "failed"), ("asset-2", "failed"), ("asset-3", "updated")]
    assert "500 internal error" in results[1].message
    assert "connection reset" in results[2].message
    assert [_attempt(store, spec) for spec in specs] == ["ok", "failed", "failed", "ok"]
