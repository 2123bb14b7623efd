"""Silent and slow clients are closed; clients that send requests are not (a real serve() on loopback)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp

from trivy_mirror.server.runner import serve
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store


def _closed_within(port: int, payload: bytes, seconds: float) -> float | None:
    """Seconds until the server closed a connection that sent ``payload``; None if it stayed open."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        sock.settimeout(seconds)
        started = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return None
        return time.monotonic() - started


async def test_silent_and_half_sent_connections_are_closed_others_served(tmp_path: Path) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ServerSettings(listen="127.0.0.1:0", first_request_timeout=0.4)
    task = asyncio.create_task(serve(settings, Store(tmp_path / "store"), list, None, started.set_result))
    try:
        url = await asyncio.wait_for(started, 10)
        port = int(url.rsplit(":", 1)[1])
        silent = asyncio.ensure_future(asyncio.to_thread(_closed_within, port, b"", 5))
        half = asyncio.ensure_future(asyncio.to_thread(_closed_within, port, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n", 5))
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.get(f"{url}/healthz") as response:
                    assert response.status == 200
                await asyncio.sleep(0.2)  # the same keep-alive connection outlives the guard's deadline
        silent_closed, half_closed = await asyncio.gather(silent, half)
        assert silent_closed is not None and silent_closed < 2
        assert half_closed is not None and half_closed < 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
