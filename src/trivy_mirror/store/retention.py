"""Bounded disk: after every write (sync, import, a push into ``serve``), each repository of the store keeps its
tags plus their ``keep - 1`` newest older versions, and blobs nothing references any more are collected once the
grace period has passed.

Each repository is maintained on its own: one that cannot be (a damaged index, a manifest that cannot be read)
is skipped with a warning and never stops the others, and neither does an asset whose sync failed. VEX
repositories keep their current and previous archive by themselves (``vex.storage``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from trivy_mirror.errors import MirrorError
from trivy_mirror.oci.digest import Digest

log = logging.getLogger(__name__)

DEFAULT_KEEP = 2
"""Versions of each tag kept: the one served and the one before it (downloads still running, a quick rollback)."""
GC_GRACE = 600.0
"""Seconds an unreferenced blob survives: it may belong to a push or a sync still under way."""


class Prunable(Protocol):
    def prune(self, keep: int) -> list[Digest]: ...

    def collect_garbage(self, grace_seconds: float) -> int: ...


class MaintainedStore(Protocol):
    def stored_repositories(self) -> list[str]: ...

    def layout(self, repository: str) -> Prunable: ...


def maintain(store: MaintainedStore, keep: int = DEFAULT_KEEP, grace: float = GC_GRACE) -> int:
    """Prune old versions and collect unreferenced blobs in every repository; the bytes freed.

    Call under the store lock. Downloads of a pruned version that already opened their file finish (the file
    is only unlinked), and the grace period spares blobs written moments ago.
    """
    freed = 0
    for repository in store.stored_repositories():  # blobs of a push whose manifest never came are collected too
        try:
            layout = store.layout(repository)
            layout.prune(keep)
            freed += layout.collect_garbage(grace)
        except MirrorError as err:
            log.warning("maintenance of %s skipped: %s", repository, err)
    if freed:
        log.info("garbage collection freed %d bytes", freed)
    return freed
