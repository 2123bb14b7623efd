"""Closes connections that never complete a request: slowloris clients, port scanners, stuck proxies.

aiohttp times out idle keep-alive connections, but not a new connection that sends nothing (or sends headers
forever). The guard watches the server's connections and force-closes those that have not delivered one complete
request within ``timeout`` seconds of being seen. A connection counts as served once its first request reaches
the outermost middleware, whatever the answer (401s included).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class FirstRequestGuard:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # Keyed by id() but holding the handler itself: while it is referenced here its id cannot be reused by
        # a new connection, which would otherwise inherit another connection's "served" mark.
        self._first_seen: dict[int, tuple[RequestHandler, float]] = {}
        self._served: dict[int, RequestHandler] = {}
        self.closed = 0

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.protocol is not None:
            self._served[id(request.protocol)] = request.protocol
        return await handler(request)

    def sweep(self, connections: Sequence[RequestHandler], now: float) -> int:
        """Close the connections past their deadline; returns how many were closed."""
        alive = {id(connection): connection for connection in connections}
        self._first_seen = {key: entry for key, entry in self._first_seen.items() if alive.get(key) is entry[0]}
        self._served = {key: handler for key, handler in self._served.items() if alive.get(key) is handler}
        closed = 0
        for key, connection in alive.items():
            _, seen = self._first_seen.setdefault(key, (connection, now))
            if key not in self._served and now - seen >= self.timeout:
                connection.force_close()
                closed += 1
        self.closed += closed
        return closed

    async def watch(self, connections: Callable[[], Sequence[RequestHandler]]) -> None:
        """Sweep every quarter of the timeout until cancelled."""
        while True:
            await asyncio.sleep(self.timeout / 4)
            self.sweep(connections(), time.monotonic())
