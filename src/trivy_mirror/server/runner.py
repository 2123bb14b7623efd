"""``serve``: run the application and the sync loop until SIGTERM or SIGINT, then drain and return."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.errors import MirrorError
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.app import CACHE_KEY, create_app, runner_options
from trivy_mirror.server.audit import StoreAudit
from trivy_mirror.server.idleguard import FirstRequestGuard, GuardedAppRunner
from trivy_mirror.server.scheduler import SyncScheduler
from trivy_mirror.server.settings import ServerSettings, parse_listen
from trivy_mirror.server.storage import ServedStore
from trivy_mirror.server.tls import server_ssl_context
from trivy_mirror.store.retention import maintain

log = logging.getLogger(__name__)

MAINTENANCE_LOCK_TIMEOUT = 600.0
PERIODIC_LOCK_TIMEOUT = 1.0
"""The periodic maintenance gives way to a writer holding the store (a sync, an import) instead of waiting."""
MAINTENANCE_MIN_INTERVAL = 60.0
"""Periodic maintenance never runs more often than this, whatever the grace period."""


async def serve(
    settings: ServerSettings,
    store: ServedStore,
    statuses: Callable[[], list[AssetStatus]],
    sync_once: Callable[[], Awaitable[SyncOutcome]] | None,
    on_started: Callable[[str], None] | None = None,
    audit: StoreAudit | None = None,
) -> None:
    """Serve until a signal (or cancellation); ``on_started`` gets the base URL once the socket listens.

    ``audit`` re-hashes the store after start and after every sync (see ``server.audit``)."""
    host, port = parse_listen(settings.listen)
    ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key \
        else None

    async def maintenance(*, periodic: bool) -> None:
        """Prune and collect (see ``store.retention``). After a sync it waits for the lock; the periodic run
        skips quietly while another writer holds it (that writer's own maintenance follows)."""
        if not store.root.is_dir():
            return  # nothing to maintain, and taking the lock would create the directory
        timeout, on_wait = (PERIODIC_LOCK_TIMEOUT, None) if periodic else (MAINTENANCE_LOCK_TIMEOUT, log.info)
        try:
            async with store.alock(timeout, on_wait=on_wait, purpose="prune"):
                await asyncio.to_thread(maintain, store, settings.keep, settings.gc_grace)
        except MirrorError as err:
            (log.debug if periodic else log.warning)("store maintenance skipped: %s", err)
        await app[CACHE_KEY].refresh()

    async def after_sync(outcome: SyncOutcome) -> None:
        # After every sync, failed or not: one failing asset must not keep the others' old versions on disk.
        await app[CACHE_KEY].refresh()
        await maintenance(periodic=False)
        if audit is not None:
            await audit.run()

    async def maintain_periodically(start_now: bool) -> None:
        # Pushes and other processes write too. Without a sync loop, also at start (a store filled while no
        # server ran); with one, its first sync is followed by maintenance anyway.
        interval = max(settings.gc_grace, MAINTENANCE_MIN_INTERVAL)
        if not start_now:
            await asyncio.sleep(interval)
        while True:
            await maintenance(periodic=True)
            await asyncio.sleep(interval)

    scheduler = None
    if sync_once is not None:
        scheduler = SyncScheduler(sync_once, settings.sync_every, next_due=lambda: _earliest_next_update(statuses),
                                  after_run=after_sync)
    if audit is not None and scheduler is not None:
        audit.resync = scheduler.trigger
    app = create_app(settings, store, statuses, scheduler, audit)
    guard = FirstRequestGuard(settings.first_request_timeout)
    app.middlewares.insert(0, guard.middleware)
    runner = GuardedAppRunner(app, header_timeout=settings.first_request_timeout, **runner_options(app))
    await runner.setup()
    server = runner.server
    assert server is not None
    watcher = asyncio.create_task(guard.watch(lambda: server.connections), name="trivy-mirror-idle-guard")
    maintainer = asyncio.create_task(maintain_periodically(start_now=scheduler is None),
                                     name="trivy-mirror-maintenance")
    # With a sync loop the first audit follows the first sync; without one it runs at start.
    auditor = asyncio.create_task(audit.run(), name="trivy-mirror-audit") \
        if audit is not None and scheduler is None else None
    stop = asyncio.Event()
    installed = _install_signal_handlers(stop)
    try:
        # "::" means every address, IPv4 too (asyncio alone would bind IPv6 only).
        site = web.TCPSite(runner, None if host == "::" else host, port, ssl_context=ssl_context,
                           reuse_port=settings.workers > 1 or None)
        try:
            await site.start()
        except OSError as err:
            raise MirrorError(f"cannot listen on {settings.listen}: {err.strerror or err}") from None
        url = _base_url(settings, runner.addresses)
        if scheduler is not None:
            scheduler.start()
        if on_started is not None:
            on_started(url)
        else:
            log.info("serving %s on %s", store.root, url)
        await stop.wait()
        log.info("stopping: finishing requests in progress (up to %.0f s)", settings.shutdown_timeout)
    finally:
        for signum in installed:
            asyncio.get_running_loop().remove_signal_handler(signum)
        if scheduler is not None:
            await scheduler.stop()
        for task in (watcher, maintainer, *([auditor] if auditor is not None else [])):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()


def _install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    return installed


def _base_url(settings: ServerSettings, addresses: list[object]) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    address = addresses[0]
    assert isinstance(address, tuple)
    host, port = address[0], address[1]
    return f"{settings.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _earliest_next_update(statuses: Callable[[], list[AssetStatus]]) -> datetime | None:
    """When the first served asset goes stale: the sync loop wakes up then instead of waiting its interval."""
    due = [status.next_update for status in statuses() if status.next_update is not None]
    return min(due) if due else None
