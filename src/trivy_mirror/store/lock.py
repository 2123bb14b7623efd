"""The store's writer lock: one trivy-mirror process writes a store at a time; readers never lock.

``fcntl.flock`` on ``STORE/.lock``: the kernel drops it when the holder dies, so a crash never leaves a stale
lock. The holder writes its pid, purpose and start time into the file so a waiting process can say who it waits
for. The lock is not re-entrant: a second acquisition in the same process waits for the first, like any other.

Shared holders (``serve`` writing pushed blobs into ``.tmp``) may be many at once and keep exclusive holders
out, so a writer taking the lock never deletes their temp files; they write nothing into the lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from trivy_mirror.errors import StoreError
from trivy_mirror.fsutil import ensure_dir, os_errors
from trivy_mirror.store.paths import LOCK_FILE

POLL_INTERVAL = 0.25


def _holder(path: Path) -> dict[str, Any]:
    """What the current holder wrote into the lock file; {} while it has not written yet."""
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(path.read_bytes())
        if isinstance(info, dict):
            return info
    return {}


def _started(text: Any) -> str:
    try:
        started = datetime.fromisoformat(text).astimezone()
    except (TypeError, ValueError):
        return "at an unknown time"
    today = started.date() == datetime.now().astimezone().date()
    shown = started.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S")
    return f"started {shown}"


def exclusive_holder(root: Path) -> dict[str, Any] | None:
    """What the process holding the exclusive lock of the store at ``root`` recorded ({} when it has not yet),
    or None when no process holds it. A snapshot: the lock may change hands right after."""
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file: nobody ever locked; a link: the lock itself refuses it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared holders (pushes) do not count
        except BlockingIOError:
            return _holder(root / LOCK_FILE)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class StoreLock:
    """One attempt to take the lock, driven by :meth:`poll` from a blocking or an async wait loop."""

    def __init__(self, root: Path, timeout: float, on_wait: Callable[[str], None] | None, purpose: str,
                 shared: bool = False) -> None:
        self.root = root
        self.shared = shared
        self.path = root / LOCK_FILE
        self.timeout = timeout
        self.on_wait = on_wait
        self.purpose = purpose
        self._deadline = time.monotonic() + timeout
        self._fd: int | None = None
        self._told = False

    def poll(self) -> float | None:
        """Try once without blocking: None once the lock is ours, else seconds to sleep before trying again.

        Raises StoreError when the timeout has passed.
        """
        with os_errors(f"lock store {self.root}"):
            if self._fd is None:
                ensure_dir(self.root)
                # Never through a link: truncating the lock file would truncate its target.
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            try:
                fcntl.flock(self._fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._wait()
            except BaseException:
                self._close()
                raise
            if not self.shared:
                self._record()
        return None

    def _wait(self) -> float:
        holder = _holder(self.path)
        pid = holder.get("pid", "unknown")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._close()
            raise StoreError(
                f"store {self.root} is locked by another trivy-mirror (pid {pid}); gave up after {self.timeout:g}s"
            )
        if self.on_wait is not None and not self._told:
            self._told = True
            who = (f"pid {pid} ({holder.get('purpose', 'trivy-mirror')} {_started(holder.get('started'))})"
                   if holder else "another trivy-mirror")
            self.on_wait(f"store {self.root} is locked by {who}; waiting up to {self.timeout:g}s")
        return min(POLL_INTERVAL, remaining)

    def _record(self) -> None:
        assert self._fd is not None
        info = {"pid": os.getpid(), "purpose": self.purpose, "started": datetime.now().astimezone().isoformat()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if self._fd is not None and not self.shared:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
