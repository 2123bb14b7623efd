"""``serve``: run the application and the sync loop until SIGTERM or SIGINT, then drain and return."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from trivy_mirror.errors import MirrorError
from trivy_mirror.freshness import AssetStatus
from trivy_mirror.server.app import CACHE_KEY, create_app, runner_options
from trivy_mirror.server.idleguard import FirstRequestGuard, GuardedAppRunner
from trivy_mirror.server.scheduler import SyncOutcome, SyncScheduler
from trivy_mirror.server.settings import ServerSettings, parse_listen
from trivy_mirror.server.storage import ServedStore
from trivy_mirror.server.tls import server_ssl_context

log = logging.getLogger(__name__)

MAINTENANCE_LOCK_TIMEOUT = 600.0


async def serve(
    settings: ServerSettings,
    store: ServedStore,
    statuses: Callable[[], list[AssetStatus]],
    sync_once: Callable[[], Awaitable[SyncOutcome]] | None,
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve until a signal (or cancellation); ``on_started`` gets the base URL once the socket listens."""
    settings.validate()
    host, port = parse_listen(settings.listen)
    ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key \
        else None

    async def after_sync(outcome: SyncOutcome) -> None:
        await app[CACHE_KEY].refresh()
        async with store.alock(MAINTENANCE_LOCK_TIMEOUT, on_wait=log.info, purpose="prune"):
            freed = await asyncio.to_thread(maintain, store, settings.keep, settings.gc_grace)
        await app[CACHE_KEY].refresh()
        if freed:
            log.info("garbage collection freed %d bytes", freed)

    scheduler = None
    if sync_once is not None:
        scheduler = SyncScheduler(sync_once, settings.sync_every, next_due=lambda: _earliest_next_update(statuses),
                                  on_success=after_sync)
    app = create_app(settings, store, statuses, scheduler)
    guard = FirstRequestGuard(settings.first_request_timeout)
    app.middlewares.insert(0, guard.middleware)
    runner = GuardedAppRunner(app, header_timeout=settings.first_request_timeout, **runner_options(app))
    await runner.setup()
    server = runner.server
    assert server is not None
    watcher = asyncio.create_task(guard.watch(lambda: server.connections), name="trivy-mirror-idle-guard")
    stop = asyncio.Event()
    installed = _install_signal_handlers(stop)
    try:
        # "::" means every address, IPv4 too (asyncio alone would bind IPv6 only).
        site = web.TCPSite(runner, None if host == "::" else host, port, ssl_context=ssl_context)
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
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await runner.cleanup()


def maintain(store: ServedStore, keep: int, grace: float) -> int:
    """Prune old versions and collect unreferenced blobs in every repository; the bytes freed.

    Blobs of the versions still kept stay; downloads of a pruned version that already opened their file finish
    (the file is only unlinked), and the grace period spares blobs pushed moments ago.
    """
    freed = 0
    for repository in store.repositories():
        layout = store.layout(repository)
        try:
            layout.prune(keep)
            freed += layout.collect_garbage(grace)
        except MirrorError as err:
            log.warning("maintenance of %s skipped: %s", repository, err)
    return freed


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
