"""Fixtures for the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trivy_mirror.store import Layout, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def layout(store: Store) -> Layout:
    return store.layout("aquasec/trivy-db")
