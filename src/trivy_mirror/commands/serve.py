"""``trivy-mirror serve``: the embedded registry plus the sync loop that keeps the store fresh."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.status import store_statuses
from trivy_mirror.commands.vex_sync import run_vex_sync
from trivy_mirror.errors import MirrorError
from trivy_mirror.oci.reference import Prefix
from trivy_mirror.server.census import plan_requested_tags
from trivy_mirror.server.runner import serve
from trivy_mirror.server.scheduler import SyncOutcome
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination
from trivy_mirror.sync.mirror import AssetSync, TagResult
from trivy_mirror.vex import VexSource, vex_statuses

log = logging.getLogger("trivy_mirror.serve")


class StoreSync:
    """One sync of the store, as the scheduler runs it: never raises, reports an outcome."""

    def __init__(self, store: Store, specs: Sequence[AssetSpec], sources: Sequence[Prefix],
                 options: ConnectionOptions, lock_timeout: float, vex: Sequence[VexSource] = ()) -> None:
        self.store = store
        self.vex = list(vex)
        self.specs = list(specs)
        self.sources = list(sources)
        self.options = options
        self.lock_timeout = lock_timeout

    async def __call__(self) -> SyncOutcome:
        started = time.monotonic()
        failures: list[str] = []
        results: list[TagResult] = []
        try:
            async with RegistryPool(self.options) as pool, self.store.alock(self.lock_timeout, on_wait=log.warning):
                try:
                    specs = plan_requested_tags(self.specs, self.store.root)
                    if specs:
                        results = await AssetSync(self.sources, pool, StoreDestination(self.store)).run(specs)
                except MirrorError as err:  # no source answers: recorded per asset; the VEX sources may still
                    failures.append(str(err))
                results += await run_vex_sync(self.store, self.vex, self.options, dry_run=False)
        except MirrorError as err:
            return SyncOutcome(False, str(err), time.monotonic() - started)
        failures += [f"{r.reference}: {r.message}" for r in results if r.failed]
        changed = [r.reference for r in results if r.outcome == "updated"]
        message = "; ".join(failures) if failures else (
            f"updated {', '.join(changed)}" if changed else "everything up to date")
        return SyncOutcome(not failures, message, time.monotonic() - started,
                           {r.reference: r.outcome for r in results})

    def statuses(self) -> list[AssetStatus]:
        return store_statuses(self.store, self.specs) + vex_statuses(self.store.root, [s.name for s in self.vex])

    def next_due(self) -> datetime | None:
        """The earliest NextUpdate the store serves: once it passes, clients re-download every hour."""
        due = [row.next_update for row in self.statuses() if row.next_update is not None]
        return min(due) if due else None


def unfilled(store: Store, statuses: Callable[[], list[AssetStatus]]) -> Callable[[], list[AssetStatus]]:
    """The statuses of a store nothing fills (``--no-sync``): a missing asset says why, naming the store."""
    def explained() -> list[AssetStatus]:
        why = _why_missing(store)
        return [replace(row, error=why) if row.state == "missing" and row.error is None else row
                for row in statuses()]
    return explained


def _why_missing(store: Store) -> str:
    if not store.root.is_dir():
        return f"the store {store.root} does not exist (a typo?) and serve --no-sync never fills it"
    return f"not in the store {store.root}, and serve --no-sync never syncs: fill it with sync --store or import"


def warn_if_unfilled(store: Store, statuses: Sequence[AssetStatus]) -> None:
    """The loud line at start of ``serve --no-sync`` on a store missing assets: clients would get 404s."""
    missing = [row.reference for row in statuses if row.state == "missing"]
    if not store.root.is_dir():
        log.warning("the store %s does not exist; with --no-sync nothing is served (Trivy gets 404s) "
                    "until sync --store or import fills it", store.root)
    elif missing:
        log.warning("the store %s does not hold %s; with --no-sync Trivy gets 404s for %s until sync "
                    "--store or import fills it", store.root, ", ".join(missing),
                    "them" if len(missing) > 1 else "it")


async def run_serve(settings: ServerSettings, store: Store, store_sync: StoreSync, sync: bool) -> None:
    if store.root.exists():
        store.refuse_links()  # serving must not follow a planted link out of the store either

    def started(url: str) -> None:
        log.info("serving %s on %s", store.root, url)

    statuses = store_sync.statuses
    if not sync:
        statuses = unfilled(store, store_sync.statuses)
        warn_if_unfilled(store, store_sync.statuses())
    await serve(settings, store, statuses, store_sync if sync else None, on_started=started)
