"""Item 4 and part of item 10 of the review: slow and malformed requests.

Replayed: after one complete request, a client trickling the next request's headers was never dropped (the
server wrote 202 MB of tracebacks in a minute doing so); an oversized header line, ``Authorization`` included,
was echoed in the 400 body and logged with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trivy_mirror.server.runner import serve
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .conftest import Served

pytestmark = pytest.mark.security
TRICKLERS = 20
HEADER_DEADLINE = 1.0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def short_deadline_server(tmp_path: Path) -> AsyncIterator[int]:
    """``serve`` in this process with a one-second header deadline (the CLI's is 30 s)."""
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ServerSettings(listen="127.0.0.1:0", first_request_timeout=HEADER_DEADLINE)
    task = asyncio.create_task(serve(settings, Store(tmp_path / "store"), list, None, started.set_result))
    try:
        url = await asyncio.wait_for(started, 10)
        yield int(url.rsplit(":", 1)[1])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _trickle(port: int, limit: float) -> float | None:
    """One good request, then the next one's headers a byte every 50 ms: seconds until the server hung up."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(2)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.settimeout(0.05)
        header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        for byte in header:
            if time.monotonic() - started > limit:
                return None
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - started
        return None


async def test_slow_headers_after_a_first_request_are_cut_with_one_line_each(short_deadline_server: int) -> None:
    lines = _Lines()
    root, ours = logging.getLogger(), logging.getLogger("trivy_mirror")
    level = ours.level
    root.addHandler(lines)
    ours.setLevel(logging.INFO)  # as serve runs by default
    try:
        closed = await asyncio.gather(*(asyncio.to_thread(_trickle, short_deadline_server, 10)
                                        for _ in range(TRICKLERS)))
    finally:
        root.removeHandler(lines)
        ours.setLevel(level)
    assert all(seconds is not None and seconds < HEADER_DEADLINE + 2 for seconds in closed), closed
    noisy = [r for r in lines.records if r.levelno >= logging.INFO and not r.name.endswith("access")]
    assert 0 < len(noisy) <= TRICKLERS and not any(r.exc_info for r in lines.records)
    print(f"\n{TRICKLERS} trickling clients cut after {max(s for s in closed if s):.2f} s at most, "
          f"{len(noisy)} log lines")


def test_an_oversized_authorization_header_is_neither_echoed_nor_logged(served: Served) -> None:
    secret = "Basic " + "c2VjcmV0LXZhbHVl" * 1000
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(f"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {secret}\r\n\r\n".encode())
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b" ")[1] == b"400" and b"c2VjcmV0" not in answer
    time.sleep(0.2)
    log = served.process.log()
    assert "c2VjcmV0" not in log and "Traceback" not in log
