"""Helpers shared by the air-gap end-to-end tests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_snapshot(store: Path) -> dict[str, bytes]:
    """Every file of a store with its content, but the lock file (any run creates it)."""
    if not store.exists():
        return {}
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != ".lock"}
