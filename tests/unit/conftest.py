"""Fixtures every unit test folder may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.stores import put
from support.trivy_assets import AssetSet
from trivy_mirror.store import Store


@pytest.fixture
async def full_store(tmp_path: Path, assets: AssetSet) -> Store:
    """A store with the four upstream tags."""
    store = Store(tmp_path / "store")
    for repository, tag, artifact in assets.upstream_tags():
        await put(store, repository, tag, artifact)
    return store
