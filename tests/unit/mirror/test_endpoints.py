"""``open_destination``: the place ``--to`` names decides the destination (store, registry, static tree)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trivy_mirror.errors import UsageError
from trivy_mirror.mirror.endpoints import (
    ConnectionOptions,
    RegistryDestination,
    RegistryPool,
    StoreDestination,
    open_destination,
)
from trivy_mirror.static import StaticDestination


async def test_the_place_scheme_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    async with RegistryPool(ConnectionOptions()) as pool:
        store = open_destination(tmp_path / "store", None, pool)
        assert isinstance(store, StoreDestination) and store.label == str(tmp_path / "store")
        static = open_destination(None, f"static:{tmp_path / 'tree'}", pool)
        assert isinstance(static, StaticDestination) and static.label == f"static:{tmp_path / 'tree'}"
        registry = open_destination(None, "https://registry.internal:5000/trivy", pool)
        assert isinstance(registry, RegistryDestination) and registry.label == "registry.internal:5000/trivy"
        assert registry.prefix.transport == "https"
        with pytest.raises(UsageError, match="an OCI layout holds one artifact"):
            open_destination(None, f"oci-layout:{tmp_path}", pool)
        with pytest.raises(UsageError, match="cannot be used together"):
            open_destination(tmp_path, "registry.internal/x", pool)
