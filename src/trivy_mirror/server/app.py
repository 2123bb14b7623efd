"""Assembling the aiohttp application from the settings, the store and the status sources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.server.accesslog import ACCESS_LOGGER, ROUTE_KEY, USER_KEY, access_logger_class
from trivy_mirror.server.audit import StoreAudit
from trivy_mirror.server.auth import Authenticator
from trivy_mirror.server.cache import ManifestCache
from trivy_mirror.server.census import Census, census_path
from trivy_mirror.server.delete import DeleteApi
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.health import Readiness, healthz
from trivy_mirror.server.metrics import Metrics
from trivy_mirror.server.pull import PullApi
from trivy_mirror.server.push import PushApi
from trivy_mirror.server.scheduler import SchedulerState, SyncScheduler
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.server.statuspage import StatusPage
from trivy_mirror.server.storage import ServedStore
from trivy_mirror.server.token_endpoint import TokenEndpoint
from trivy_mirror.server.uploads import Uploads
from trivy_mirror.server.v2 import V2
from trivy_mirror.vex import add_vex_routes

CACHE_KEY = web.AppKey("trivy_mirror_cache", ManifestCache)
CENSUS_KEY = web.AppKey("trivy_mirror_census", Census)
METRICS_KEY = web.AppKey("trivy_mirror_metrics", Metrics)
SETTINGS_KEY = web.AppKey("trivy_mirror_settings", ServerSettings)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` writes (the classic text format)."""


def _no_statuses() -> list[AssetStatus]:
    return []


def create_app(
    settings: ServerSettings,
    store: ServedStore,
    statuses: Callable[[], list[AssetStatus]] = _no_statuses,
    scheduler: SyncScheduler | None = None,
    audit: StoreAudit | None = None,
    clock: Clock = SYSTEM,
) -> web.Application:
    """The whole server as an application; raises :class:`UsageError` for unreadable files.

    ``clock`` times the re-reads of the credentials files and indexes and the password-check memory (tests
    pass a fake one).

    Serve it with :func:`runner_options` so the access log and request metrics are wired in.
    """
    auth = Authenticator(settings, clock)
    cache = ManifestCache(store, clock)
    scheduler_state: Callable[[], SchedulerState | None] = scheduler.state if scheduler else lambda: None
    metrics = Metrics(statuses, scheduler_state)
    uploads = Uploads(settings.upload_dir, settings.max_uploads, settings.max_uploads_per_user,
                      settings.max_spool_per_user) if settings.allow_push else None
    push = PushApi(cache, settings.aliases, uploads, settings.trust) if uploads is not None else None
    delete = DeleteApi(cache, settings.aliases, settings.gc_grace) if settings.allow_delete else None
    v2 = V2(auth, PullApi(store, cache, settings.aliases, audit), push, delete)

    census = Census(census_path(Path(store.root)))
    metrics.registry.register(census.collector())
    if audit is not None:
        metrics.registry.register(audit.collector())
    app = web.Application(client_max_size=settings.client_max_size, middlewares=[census.middleware])
    app[CACHE_KEY] = cache
    app[CENSUS_KEY] = census
    app[METRICS_KEY] = metrics
    app[SETTINGS_KEY] = settings
    app.router.add_route("*", "/v2", v2.handle)
    app.router.add_route("*", "/v2/{path:.*}", v2.handle)
    if settings.auth_enabled:
        tokens = TokenEndpoint(auth)
        app.router.add_get("/token", _labelled("token", tokens.get), allow_head=False)
        app.router.add_post("/token", _labelled("token", tokens.post))
    app.router.add_get("/healthz", _labelled("healthz", healthz))
    readiness = Readiness(statuses, scheduler_state, auth.authenticated if settings.auth_enabled else None,
                          auth.problems, audit.problems if audit is not None else list)
    app.router.add_get("/readyz", _labelled("readyz", readiness.readyz))
    app.router.add_get("/metrics", _labelled("metrics", _metrics_handler(metrics)))
    page = StatusPage(settings, Path(store.root), statuses, lambda: census.to_json()["clients"],
                      lambda: state.to_json() if (state := scheduler_state()) else None,
                      auth.authenticated if settings.auth_enabled else None, auth.problems)
    app.router.add_get("/", _labelled("status-page", page.handle))

    async def vex_authorize(request: web.Request) -> web.StreamResponse | None:
        """VEX reads follow the registry's rules: Basic (htpasswd), Bearer (token file, /token), anonymous_pull."""
        try:
            identity = await auth.require(request, write=False, ping=False, name=None)
        except OciError as err:
            return err.response()
        if identity is not None and identity.user is not None:
            request[USER_KEY] = identity.user
        return None

    add_vex_routes(app, store, settings.public_url, authorize=vex_authorize if settings.auth_enabled else None,
                   route_key=ROUTE_KEY)

    saver: list[asyncio.Task[None]] = []

    async def startup(_: web.Application) -> None:
        saver.append(asyncio.create_task(census.keep_saved()))

    async def cleanup(_: web.Application) -> None:
        for task in saver:
            task.cancel()
        if census.dirty:
            await census.save_now()
        await cache.close()
        auth.close()
        if uploads is not None:
            uploads.close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


def runner_options(app: web.Application) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (or aiohttp's test server) that wire in the access log."""
    settings = app[SETTINGS_KEY]
    return {
        "access_log_class": access_logger_class(app[METRICS_KEY], settings.log_format == "json"),
        "access_log": ACCESS_LOGGER,
        "shutdown_timeout": settings.shutdown_timeout,
    }


def _labelled(route: str, handler: Handler) -> Handler:
    """``handler``, with ``route`` as the route label of its access log line and metrics."""

    async def labelled(request: web.Request) -> web.StreamResponse:
        request[ROUTE_KEY] = route
        return await handler(request)

    return labelled


def _metrics_handler(metrics: Metrics) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await asyncio.to_thread(metrics.render)  # the asset gauges read the store
        return web.Response(body=body, headers={"Content-Type": PROMETHEUS_TEXT})

    return handler
