"""Progress of long copies: rich bars on a terminal, a start and an end line otherwise."""

from __future__ import annotations

import logging
import time

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from trivy_mirror.ui import console

log = logging.getLogger("trivy_mirror.progress")


class BarProgress:
    """Rich progress bars on stderr; use as a context manager."""

    def __init__(self) -> None:
        self._bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TimeRemainingColumn(), console=console.stderr, transient=True)
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BarProgress:
        self._bars.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._bars.stop()

    def start(self, key: str, description: str, total: int) -> None:
        self._tasks[key] = self._bars.add_task(description, total=total)

    def advance(self, key: str, amount: int) -> None:
        if key in self._tasks:
            self._bars.advance(self._tasks[key], amount)

    def finish(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._bars.remove_task(task)


class LogProgress:
    """Plain log lines when stderr is not a terminal: one when a copy starts, one when it ends."""

    def __init__(self) -> None:
        self._started: dict[str, tuple[float, int, str]] = {}
        self._done: dict[str, int] = {}

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def start(self, key: str, description: str, total: int) -> None:
        self._started[key] = (time.monotonic(), total, description)
        self._done[key] = 0
        log.info("copying %s: %.1f MB", description, total / 1e6)

    def advance(self, key: str, amount: int) -> None:
        self._done[key] = self._done.get(key, 0) + amount

    def finish(self, key: str) -> None:
        started = self._started.pop(key, None)
        done = self._done.pop(key, 0)
        if started is not None:
            seconds = max(time.monotonic() - started[0], 1e-6)
            log.info("copied %s: %.1f MB in %.1fs (%.1f MB/s)", started[2], done / 1e6, seconds,
                        done / 1e6 / seconds)


def make_progress(enabled: bool) -> BarProgress | LogProgress | None:
    if not enabled:
        return None
    return BarProgress() if console.interactive() else LogProgress()
