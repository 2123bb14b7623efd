"""``--to static:DIR``: the static tree as a sync and import destination, and the work after the copies."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from trivy_mirror.catalog.state import DirectoryStateBook, StateBook
from trivy_mirror.errors import UsageError
from trivy_mirror.static.paths import SCHEME
from trivy_mirror.static.prune import prune
from trivy_mirror.static.sidecar import write_sidecar
from trivy_mirror.static.tree import StaticTree
from trivy_mirror.static.vex import publish_vex, stored_vex
from trivy_mirror.store.retention import DEFAULT_KEEP
from trivy_mirror.target import WriteTarget

log = logging.getLogger(__name__)

STATE_DIR = "state"


class StaticDestination:
    """A static tree; the sync state lives inside it (``DIR/.trivy-mirror/state``), so ``status`` reads it."""

    def __init__(self, root: Path) -> None:
        self.tree = StaticTree(root)
        self.label = f"{SCHEME}{self.tree.root}"
        self.state: StateBook = DirectoryStateBook(self.tree.meta / STATE_DIR)

    async def target(self, repository: str) -> WriteTarget:
        return self.tree.repository(repository)

    def vex_public_url(self, given: str | None, *, required: bool) -> str | None:
        """The URL VEX manifests name (``--public-url``, else the one the tree remembers); UsageError when VEX
        needs one and there is none."""
        url = self.tree.public_url(given)
        if url is None and required:
            raise UsageError(f"--to {self.label} with VEX repositories needs --public-url: the URL the tree is "
                             f"served at (each VEX manifest names its archive under it)")
        return url

    async def finish(self, keep: int, public_url: str | None) -> None:
        """After the copies: publish VEX repositories, drop versions beyond ``keep``, rewrite the sidecar."""
        await asyncio.to_thread(self._finish, keep, public_url)

    def _finish(self, keep: int, public_url: str | None) -> None:
        with self.tree.mutex:
            self._publish_and_prune(keep, public_url)

    def _publish_and_prune(self, keep: int, public_url: str | None) -> None:
        if public_url is not None:
            self.tree.remember_public_url(public_url)
            publish_vex(self.tree, public_url)
        elif stored_vex(self.tree):
            log.warning("%s: VEX repositories are not published without --public-url", self.label)
        deleted = prune(self.tree, keep)
        if deleted:
            log.info("%s: pruned %d files of versions beyond the newest %d", self.label, deleted, keep)
        write_sidecar(self.tree)


def check_keep(keep: int | None, destination: object) -> int:
    """``--keep`` of a static tree (the store's is handled by its writers; a registry keeps everything)."""
    if keep is not None and not isinstance(destination, StaticDestination):
        raise UsageError("--keep applies to the store and to --to static:DIR, not to a registry")
    return DEFAULT_KEEP if keep is None else keep

