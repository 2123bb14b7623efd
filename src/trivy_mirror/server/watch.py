"""Noticing that a file was replaced, cheaply: compare its stat at most once per interval."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import UsageError

log = logging.getLogger(__name__)
T = TypeVar("T")

Signature = tuple[int, int, int]
"""(mtime_ns, inode, size): an atomic rename changes the inode even within one mtime tick."""

CHECK_INTERVAL = 1.0


def signature(path: Path) -> Signature | None:
    """The file's signature, or None when it does not exist (or cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class FileWatch:
    """Whether ``path`` differs from the version last loaded (recorded with :meth:`mark`).

    :meth:`check` runs a stat at most once per :data:`CHECK_INTERVAL`, so calling it on every request is cheap;
    it reports a change until the first :meth:`mark`.
    """

    __slots__ = ("_checked", "_clock", "_forced", "_marked", "path")

    def __init__(self, path: Path, clock: Clock = SYSTEM) -> None:
        self.path = path
        self._clock = clock
        self._checked = clock.monotonic()
        self._marked: Signature | None = None
        self._forced = True

    def check(self) -> bool:
        if self._forced:
            return True
        now = self._clock.monotonic()
        if now - self._checked < CHECK_INTERVAL:
            return False
        self._checked = now
        return signature(self.path) != self._marked

    def mark(self, loaded: Signature | None) -> None:
        """Record the signature taken *before* loading, so a change during the load is seen next time."""
        self._marked = loaded
        self._forced = False
        self._checked = self._clock.monotonic()


class ReloadingFile(Generic[T]):
    """A small file parsed again whenever it changes (credentials files), so edits need no restart.

    ``parse`` raises ValueError for content it refuses. A file that cannot be read or parsed at start is a
    :class:`UsageError`. Later, a missing, unreadable or refused version is logged once at ERROR and the last
    good one stays in force (an editor or a deployment tool replacing the file must not lock every client out);
    :attr:`problem` says so until a good version is back, for ``/readyz``.
    """

    def __init__(self, path: Path, parse: Callable[[str], T], *, what: str = "file", clock: Clock = SYSTEM) -> None:
        self._watch = FileWatch(path, clock)
        self._parse = parse
        self._what = what
        self.problem: str | None = None
        try:
            self._value = self._load()
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
        except ValueError as err:
            raise UsageError(f"{path}: {err}") from None

    @property
    def value(self) -> T:
        if self._watch.check():
            try:
                self._value = self._load()
            except (OSError, ValueError) as err:
                self._watch.mark(signature(self._watch.path))
                self._failed(err)
            else:
                if self.problem is not None:
                    log.warning("%s is readable again; its new version is in force", self._watch.path)
                    self.problem = None
        return self._value

    def _failed(self, err: OSError | ValueError) -> None:
        if isinstance(err, FileNotFoundError):
            reason = "is missing"
        elif isinstance(err, OSError):
            reason = f"cannot be read ({err.strerror or err})"
        else:
            reason = f"is refused ({err})"
        if self.problem is None:
            log.error("%s %s: the last good version stays in force until it is fixed", self._watch.path, reason)
        self.problem = f"the {self._what} {reason}; the last good version stays in force"

    def _load(self) -> T:
        loaded = signature(self._watch.path)
        value = self._parse(self._watch.path.read_text(encoding="utf-8"))
        self._watch.mark(loaded)
        return value
