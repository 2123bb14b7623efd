"""Progress of long copies: rich bars on a terminal, periodic log lines otherwise (the engine's TransferLog)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from trivy_mirror.engine.events import TransferLog
from trivy_mirror.ui import console


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
        self._tasks[key] = self._bars.add_task(description, total=total or None)  # 0: size unknown

    def advance(self, key: str, amount: int) -> None:
        if key in self._tasks:
            self._bars.advance(self._tasks[key], amount)

    def finish(self, key: str, ok: bool = True) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._bars.remove_task(task)


@contextlib.contextmanager
def progress_display(enabled: bool) -> Iterator[BarProgress | TransferLog | None]:
    """How a command shows its transfers while it runs: rich bars on a terminal, a ``TransferLog`` line every few
    seconds otherwise, nothing when not ``enabled`` (``--json``: stdout is the document). Every command opens
    it the same way: ``with progress_display(not as_json) as progress:``."""
    if not enabled:
        yield None
        return
    display = BarProgress() if console.interactive() else TransferLog()
    with display:
        yield display
