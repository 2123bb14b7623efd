"""Status rows of mirrored VEX repositories, for ``status``, ``/readyz`` and ``/metrics``.

A row's ``updated_at`` is the index's own ``updated_at`` (else when the content was stored), and its
``next_update`` is when upstream was last checked plus the manifest's ``update_interval``: past it, the mirror
has not confirmed upstream for longer than the publisher asks clients to wait, and the row is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from trivy_mirror.catalog.freshness import AssetStatus, state_of
from trivy_mirror.vex.storage import VexRepository, VexState, stored_names

ASSET = "vex"


def reference(name: str) -> str:
    return f"{ASSET}/{name}"


def dates(state: VexState) -> tuple[datetime | None, datetime | None]:
    """(updated_at, next_update) of the served version."""
    current = state.current
    if current is None:
        return None, None
    version = state.version()
    next_update = current.checked_at + timedelta(seconds=version.interval_seconds) if version else None
    return current.index_updated_at or current.synced_at, next_update


def repository_status(repository: VexRepository, now: datetime | None = None) -> AssetStatus:
    state = repository.load()
    current = state.current
    if current is None or not repository.has_blob(current.digest):
        return AssetStatus(ASSET, reference(state.name), last_attempt=state.attempt.at,
                           last_result=state.attempt.result, last_message=state.attempt.message)
    updated_at, next_update = dates(state)
    return AssetStatus(ASSET, reference(state.name), current.digest, current.size, updated_at, next_update,
                       current.source, state.attempt.at, state.attempt.result, state_of(True, next_update, now),
                       state.attempt.message)


def vex_statuses(store_root: Path, expected: Sequence[str] = (), now: datetime | None = None) -> list[AssetStatus]:
    """One row per repository named in ``expected`` (missing when absent), then any other stored one."""
    names = list(dict.fromkeys([*expected, *stored_names(store_root)]))
    return [repository_status(VexRepository(store_root, name), now) for name in names]
