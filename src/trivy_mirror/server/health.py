"""``/healthz`` (the process answers) and ``/readyz`` (every asset is in the mirror and fresh)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from trivy_mirror.freshness import AssetStatus
from trivy_mirror.server.scheduler import SchedulerState

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


class Readiness:
    def __init__(self, statuses: Callable[[], list[AssetStatus]],
                 scheduler: Callable[[], SchedulerState | None]) -> None:
        self._statuses = statuses
        self._scheduler = scheduler

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when every asset is ready, else 503; the body says why, asset by asset, and lists the assets
        whose last sync failed (``failures``, also while ready)."""
        try:
            statuses = await asyncio.to_thread(self._statuses)
        except Exception as err:
            log.exception("cannot read the asset statuses for /readyz")
            return web.json_response({"ready": False, "reasons": [f"cannot read the asset statuses: {err}"]},
                                     status=503, headers={"Cache-Control": "no-store"})
        ready = all(status.ready for status in statuses)
        body: dict[str, object] = {
            "ready": ready,
            "reasons": [status.reason for status in statuses if not status.ready],
            # A failed last attempt does not make the mirror unready (what it serves is still good), but says so.
            "failures": [status.failure for status in statuses if status.last_failed],
            "assets": [status.to_json() for status in statuses],
        }
        state = self._scheduler()
        if state is not None:
            body["sync"] = state.to_json()
        return web.json_response(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})
