"""Many small requests, fast: pipelined HTTP/1.1 over a few keep-alive connections, and process figures."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

BATCH = 200


def rss_mib(pid: int) -> float:
    """Resident memory of a running process, in MiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1)) / 1024


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _connection(host: str, paths: list[str], statuses: list[int]) -> None:
    address, port = host.rsplit(":", 1)
    with socket.create_connection((address, int(port)), timeout=60) as sock:
        for start in range(0, len(paths), BATCH):
            batch = paths[start : start + BATCH]
            sock.sendall(b"".join(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for path in batch))
            received = b""
            while received.count(b"HTTP/1.1 ") < len(batch) or not received.endswith((b"}", b"\n", b"\r\n\r\n")):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise AssertionError("the server closed the connection")
                received += chunk
            statuses.extend(int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", received))


def send(host: str, count: int, path_of: Callable[[int], str], connections: int = 4) -> list[int]:
    """GET ``path_of(i)`` for i in range(count) and return the statuses (order not kept)."""
    statuses: list[int] = []
    shares = [[path_of(i) for i in range(n, count, connections)] for n in range(connections)]
    threads = [threading.Thread(target=_connection, args=(host, share, statuses)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == count, f"{len(statuses)} answers to {count} requests"
    return statuses
