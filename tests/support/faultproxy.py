"""A fault-injecting HTTP proxy of the tests' own, in front of a real registry, on 127.0.0.1.

:class:`FaultProxy` forwards every request to ``upstream`` (a ``docker-registry``), unless a :class:`Fault` matches
it: then it answers as a misbehaving registry would (reset mid-body, truncated body, one flipped byte, a wrong
Content-Length, 429/5xx with or without ``Retry-After``, a stalled connection, a manifest that does not match its
digest, an oversize manifest). It records every request it received, so tests can prove retries are bounded.

It runs its own event loop in a thread, so synchronous tests drive the real CLI in a subprocess through it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}

FAST = {"TRIVY_MIRROR_RETRY_DELAY": "0.05", "TRIVY_MIRROR_READ_TIMEOUT": "1"}
"""``--retry-delay`` and ``--read-timeout`` (the read timeout detects a stalled server) as their variables,
shortened so faults cost milliseconds."""

KINDS = ("reset", "truncate", "flip", "wrong-length", "status", "stall", "manifest-mismatch", "oversize-manifest")


@dataclass
class Fault:
    """Answer requests matching ``method`` and ``path`` (a regex searched in the path) with ``kind``.

    ``times`` limits how many matching requests get the fault (None: all of them); ``status`` and
    ``retry_after`` are for ``kind="status"``; ``stall`` is how long a stalled connection stays silent.
    """

    kind: str
    path: str
    method: str = "GET"
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    stall: float = 30.0
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method != method or not re.search(self.path, path):
            return False
        return self.times is None or self.applied < self.times


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    at: float
    fault: str | None
    headers: dict[str, str] = field(default_factory=dict)


class FaultProxy:
    """``with FaultProxy(upstream_host) as proxy:`` then point the tool at ``proxy.host``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def requests(self, predicate: Callable[[Seen], bool] = lambda _: True) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if predicate(s)]

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.SockSite(runner, self._bind())
        await site.start()
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._session.close()
            await runner.cleanup()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        return sock

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.applied += 1
                    return fault
        return None

    async def _forward(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read() if request.can_read_body else None
        async with self._session.request(request.method, f"http://{self.upstream}{request.path_qs}",
                                         headers=headers, data=body, allow_redirects=False) as response:
            data = await response.read()
            out = {k: v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS}
            return response.status, out, data

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._pick(request.method, request.path)
        with self._lock:
            self.seen.append(Seen(request.method, request.path, time.monotonic(), fault.kind if fault else None,
                                  dict(request.headers)))
        if fault is None:
            status, headers, data = await self._forward(request)
            return web.Response(status=status, headers=headers, body=data if request.method != "HEAD" else None)
        if fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return web.Response(status=fault.status, headers=extra, text='{"errors":[]}',
                                content_type="application/json")
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall)  # accept, read the request, send nothing
            raise web.HTTPServiceUnavailable()
        status, headers, data = await self._forward(request)
        if status not in (200, 206) or not data:
            return web.Response(status=status, headers=headers, body=data)
        if fault.kind == "flip":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]
            return web.Response(status=status, headers=headers, body=data)
        if fault.kind == "wrong-length":
            return web.Response(status=status, headers=headers, body=data[:-1])
        if fault.kind == "manifest-mismatch":
            # Same Docker-Content-Digest header, different bytes: whitespace that changes the digest only.
            return web.Response(status=status, headers=headers, body=data + b"\n")
        if fault.kind == "oversize-manifest":
            padded = data.rstrip()[:-1] + b',"padding":"' + b"x" * (5 * 1024 * 1024) + b'"}'
            return web.Response(status=status, headers=headers, body=padded)
        # reset / truncate: announce the whole body, send half, then cut the connection.
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        transport = request.transport
        if transport is not None:
            if fault.kind == "reset":
                transport.abort()
            else:
                transport.close()
        return response
