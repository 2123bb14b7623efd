"""Stores for tests: one synced once per test module with a private copy for each test that damages it, and
artifacts put into a store through its own API (:func:`put`).

Syncing takes seconds and copying a few milliseconds, so the tests that tamper with a store (verify, the store
escapes) share one sync. In a test module: ``synced, store = synced_store_fixtures("db")``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess
from support.trivy_assets import Artifact
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store


def synced_store_fixtures(*assets: str) -> tuple[Callable[..., Path], Callable[..., Path]]:
    """The ``synced`` fixture (module scope: ``assets`` synced from the e2e upstream, every asset when none are
    named) and the ``store`` fixture (a copy of it in the test's own directory)."""

    @pytest.fixture(scope="module", name="synced")
    def synced(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess) -> Path:
        base = tmp_path_factory.mktemp("synced-store")
        chosen = ["--assets", ",".join(assets)] if assets else []
        result = MirrorCli(base / "home").run(["sync", "--from", f"{upstream.host}/aquasec", "--store",
                                               str(base / "store"), *chosen])
        assert result.returncode == 0, result.stderr
        return base / "store"

    @pytest.fixture(name="store")
    def store(synced: Path, tmp_path: Path) -> Path:
        copy = tmp_path / "store"
        shutil.copytree(synced, copy)
        return copy

    return synced, store


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(store: Store, repository: str, tag: str, artifact: Artifact) -> None:
    """Store ``artifact`` under ``repository:tag`` as sync would leave it (without sync's state notes)."""
    layout = store.layout(repository)
    for blob in artifact.blobs.values():
        await layout.push_blob(Descriptor("application/octet-stream", Digest.of(blob), len(blob)), _one(blob))
    await layout.tag(tag, ManifestBytes(artifact.manifest, artifact.media_type))
