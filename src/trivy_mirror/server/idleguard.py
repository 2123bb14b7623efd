"""Closes connections that do not deliver complete requests in time: slowloris clients, port scanners, stuck
proxies, and quietens what malformed requests cost.

Two deadlines:

* a new connection that has not delivered one complete request within ``timeout`` seconds of being seen is
  closed by :class:`FirstRequestGuard` (aiohttp times out idle keep-alive connections, but not a new connection
  that sends nothing);
* on every request, first or later on a keep-alive connection, the headers must be complete within ``timeout``
  seconds of their first byte, or :class:`GuardedRequestHandler` closes the connection with one log line.

A malformed request (a header line too long, a bad token) gets a fixed 400 body: aiohttp's own answer echoes
the offending line (an ``Authorization`` header included) and logs a traceback for each one. Its access-log line
is the only line it costs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

BAD_REQUEST_BODY = "malformed HTTP request\n"


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


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with a header deadline on every request and a quiet answer to bad ones."""

    __slots__ = ("_header_timer", "header_timeout")

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        awaiting_request = self._awaiting_request()
        super().data_received(data)
        if not self._awaiting_request() or self._force_close or self._close:
            self._stop_header_timer()  # headers complete (or a request body, or closing)
        elif awaiting_request and self._header_timer is None:
            self._header_timer = self._loop.call_later(self.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        log.debug("malformed request from %s: %s", request.remote, type(exc).__name__ if exc else "bad request")
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        response = web.Response(status=status, text=f"{status} {BAD_REQUEST_BODY}")
        response.force_close()
        return response

    def _awaiting_request(self) -> bool:
        """Between requests: no request being handled and none parsed and waiting."""
        return not self._request_in_progress and not self._messages and self._task_handler is not None \
            and self._waiter is not None and not self._waiter.done()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_request() and not self._force_close:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            log.info("closed a connection from %s: request headers not complete within %.0f s",
                     peer[0] if isinstance(peer, tuple) else "?", self.header_timeout)
            self.force_close()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None


class GuardedServer(web.Server):
    """A server whose connections are :class:`GuardedRequestHandler` instances."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, header_timeout=self._header_timeout, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`GuardedServer`."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return GuardedServer(made.request_handler, request_factory=made.request_factory,
                             handler_cancellation=made.handler_cancellation, loop=made._loop,
                             header_timeout=self._header_timeout, **made._kwargs)
