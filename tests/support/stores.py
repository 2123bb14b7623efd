"""A store synced once per test module, and a private copy of it for each test that damages it.

Syncing takes seconds and copying a few milliseconds, so the tests that tamper with a store (verify, the store
escapes) share one sync. In a test module: ``synced, store = synced_store_fixtures("db")``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess


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
