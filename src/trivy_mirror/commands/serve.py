"""``trivy-mirror serve``: the embedded registry plus the sync loop that keeps the store fresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
from collections.abc import Callable, Sequence
from dataclasses import replace

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.mirror.endpoints import ConnectionOptions
from trivy_mirror.mirror.parent import Parent
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import StoreSync
from trivy_mirror.server.audit import StoreAudit
from trivy_mirror.server.census import plan_requested_tags
from trivy_mirror.server.runner import serve
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store
from trivy_mirror.vex import VexSource

log = logging.getLogger("trivy_mirror.serve")


def serve_sync(store: Store, specs: Sequence[AssetSpec], sources: Sequence[Place], options: ConnectionOptions,
               lock_timeout: float, vex: Sequence[VexSource] = (), parent: Parent | None = None,
               trust: TrustSettings = DEFAULT_TRUST) -> StoreSync:
    """The sync ``serve`` runs: the store's assets plus the checks tags its clients asked for (the census), and
    the VEX repositories of a ``parent`` mirror, under the trust settings (holds, quorum, sanity checks)."""
    return StoreSync(store, specs, sources, options, lock_timeout, vex, plan=plan_requested_tags, parent=parent,
                     trust=trust)


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
    """Serve (and sync) in this process; with ``settings.workers`` > 1, start the other serving processes first
    (they only serve: each picks up what this one syncs within a second) and stop them when this one stops."""
    workers = start_workers(settings, store, store_sync)
    try:
        await _serve(settings, store, store_sync, sync)
    finally:
        stop_workers(workers)


def start_workers(settings: ServerSettings, store: Store,
                  store_sync: StoreSync) -> Sequence[multiprocessing.process.BaseProcess]:
    context = multiprocessing.get_context("spawn")  # never fork a process with an event loop and threads
    workers = [context.Process(target=_worker, args=(settings, store, store_sync, os.getpid()),
                               name=f"trivy-mirror-worker-{number}", daemon=True)
               for number in range(1, settings.workers)]
    for worker in workers:
        worker.start()
    if workers:
        log.info("started %d more serving processes on %s (SO_REUSEPORT)", len(workers), settings.listen)
    return workers


def stop_workers(workers: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for worker in workers:
        worker.terminate()  # SIGTERM: each drains its requests like the main process
    for worker in workers:
        worker.join(30)
        if worker.is_alive():
            worker.kill()


def _worker(settings: ServerSettings, store: Store, store_sync: StoreSync, parent: int) -> None:
    """One extra serving process: no sync, no audit (the main process does both); exits with its parent."""
    from trivy_mirror.ui import logs

    logs.setup(fmt=settings.log_format)

    async def main() -> None:
        task = asyncio.create_task(serve(settings, store, store_sync.statuses, None, on_started=lambda _url: None))
        while not task.done():
            await asyncio.wait([task], timeout=1)
            if os.getppid() != parent:  # the main process died without stopping us
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


async def _serve(settings: ServerSettings, store: Store, store_sync: StoreSync, sync: bool) -> None:
    if store.root.exists():
        store.refuse_links()  # serving must not follow a planted link out of the store either

    def started(url: str) -> None:
        log.info("serving %s on %s", store.root, url)

    statuses = store_sync.statuses
    if not sync:
        statuses = unfilled(store, store_sync.statuses)
        warn_if_unfilled(store, store_sync.statuses())
    await serve(settings, store, statuses, store_sync if sync else None, on_started=started,
                audit=StoreAudit(store, repair=sync))
