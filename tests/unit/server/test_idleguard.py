"""Silent and slow clients are closed; clients that send requests are not (a real serve() on loopback)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import aiohttp
import pytest

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


def _trickle_after_one_request(port: int, seconds: float) -> tuple[float | None, bytes]:
    """Send one complete request, then trickle the next one's headers a byte every 0.1 s: when was it closed?"""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.5)
        first = sock.recv(4096)
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > seconds:
                    return None, first
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, first
        return None, first


async def test_every_request_on_a_keep_alive_connection_has_a_header_deadline(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ServerSettings(listen="127.0.0.1:0", first_request_timeout=0.6)
    task = asyncio.create_task(serve(settings, Store(tmp_path / "store"), list, None, started.set_result))
    try:
        url = await asyncio.wait_for(started, 10)
        port = int(url.rsplit(":", 1)[1])
        with caplog.at_level(logging.DEBUG, logger="trivy_mirror"):
            closed, first = await asyncio.to_thread(_trickle_after_one_request, port, 8)
        assert first.startswith(b"HTTP/1.1 200")
        assert closed is not None and closed < 3, closed
        lines = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("trivy_mirror.server")]
        assert len(lines) == 1 and "headers not complete" in lines[0].getMessage()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_malformed_header_is_neither_echoed_nor_logged(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ServerSettings(listen="127.0.0.1:0")
    task = asyncio.create_task(serve(settings, Store(tmp_path / "store"), list, None, started.set_result))
    secret = b"TOPSECRETCREDENTIAL" * 600
    try:
        url = await asyncio.wait_for(started, 10)
        port = int(url.rsplit(":", 1)[1])
        with caplog.at_level(logging.DEBUG):
            for payload in (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + secret + b"\r\n\r\n",
                            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Bad\x01: TOPSECRETCREDENTIAL\r\n\r\n"):
                answer = await asyncio.to_thread(_exchange, port, payload)
                assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:80]
                assert b"TOPSECRET" not in answer
        assert "TOPSECRET" not in caplog.text
        assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        sock.settimeout(3)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer
