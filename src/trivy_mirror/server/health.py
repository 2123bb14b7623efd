"""``/healthz`` (the process answers) and ``/readyz`` (every asset is in the mirror and fresh).

With auth on, ``/readyz`` answers anyone (probes carry no credentials) but only with states: the full body
(references, digests, sources, sync errors naming upstream hosts, credentials-file problems) needs credentials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.server.scheduler import SchedulerState

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


class Readiness:
    def __init__(self, statuses: Callable[[], list[AssetStatus]],
                 scheduler: Callable[[], SchedulerState | None],
                 authenticated: Callable[[web.Request], Awaitable[bool]] | None = None,
                 problems: Callable[[], list[str]] = list, integrity: Callable[[], list[str]] = list) -> None:
        """``authenticated`` (auth on) tells whether a request may see the details; ``problems`` lists
        credentials files whose last good version is in force; ``integrity`` what the store audit found and no
        repair removed (not ready while there is any: a client would fail on it)."""
        self._statuses = statuses
        self._scheduler = scheduler
        self._authenticated = authenticated
        self._problems = problems
        self._integrity = integrity

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when every asset is ready, else 503; the body says why, asset by asset, and lists the assets
        whose last sync failed (``failures``, also while ready)."""
        try:
            statuses = await asyncio.to_thread(self._statuses)
        except Exception as err:
            log.exception("cannot read the asset statuses for /readyz")
            # Never the exception text: it names files of the store.
            detail = err.strerror if isinstance(err, OSError) and err.strerror else "see the server log"
            return web.json_response({"ready": False, "reasons": [f"cannot read the asset statuses: {detail}"]},
                                     status=503, headers=NO_STORE)
        integrity = self._integrity()
        ready = all(status.ready for status in statuses) and not integrity
        status = 200 if ready else 503
        if self._authenticated is not None and not await self._authenticated(request):
            states = [{"asset": row.asset, "state": row.state} for row in statuses]
            return web.json_response({"ready": ready, "assets": states}, status=status, headers=NO_STORE)
        body: dict[str, object] = {
            "ready": ready,
            "reasons": [row.reason for row in statuses if not row.ready],
            # A failed last attempt does not make the mirror unready (what it serves is still good), but says so.
            "failures": [row.failure for row in statuses if row.last_failed],
            # A held candidate (pin, hold, quorum, sanity) leaves what is served as it is: ready stays as it was.
            "held": [{"asset": row.asset, "reference": row.reference, "reason": row.held, "served": row.digest,
                      "candidate": row.candidate} for row in statuses if row.held is not None],
            "integrity": integrity,
            "assets": [row.to_json() for row in statuses],
        }
        state = self._scheduler()
        if state is not None:
            body["sync"] = state.to_json()
        if self._authenticated is not None:
            body["credentials"] = self._problems()
        return web.json_response(body, status=status, headers=NO_STORE)
