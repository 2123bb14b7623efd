"""The local store: a directory of OCI image layouts, one per repository (``STORE/aquasec/trivy-db``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from trivy_mirror.errors import InvalidReference
from trivy_mirror.fsutil import clean_dir
from trivy_mirror.store.layout import Layout
from trivy_mirror.store.links import refuse_links, store_links
from trivy_mirror.store.lock import StoreLock, exclusive_holder
from trivy_mirror.store.paths import BLOBS_DIR, INDEX_FILE, TMP_DIR, check_repository


class Store:
    """The store at ``root``. Writers hold :meth:`lock` (or :meth:`alock`) while they write; readers never lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"Store({self.root})"

    def layout(self, repository: str) -> Layout:
        """The layout of ``repository``; raises InvalidReference for a name that is invalid or reserved."""
        return Layout(self.root, repository)

    def repositories(self) -> list[str]:
        """Sorted names of the repositories that have an index.json."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            # Never descend into blobs/ (large) or the store's own .tmp and .lock.
            dirnames[:] = [d for d in dirnames if d != BLOBS_DIR and not d.startswith(".")]
            name = Path(dirpath).relative_to(self.root).as_posix()
            if INDEX_FILE in filenames and name != ".":
                with contextlib.suppress(InvalidReference):
                    found.append(check_repository(name))
        return sorted(found)

    def stored_repositories(self) -> list[str]:
        """Sorted names of every layout directory, with an index.json or only blobs (uploaded by a push whose
        manifest never came): what the garbage collector and an anonymous mount look through."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            holds_blobs = BLOBS_DIR in dirnames
            dirnames[:] = [d for d in dirnames if d != BLOBS_DIR and not d.startswith(".")]
            name = Path(dirpath).relative_to(self.root).as_posix()
            if (INDEX_FILE in filenames or holds_blobs) and name != ".":
                with contextlib.suppress(InvalidReference):
                    found.append(check_repository(name))
        return sorted(found)

    def refuse_links(self) -> None:
        """StoreError (one line) when a control file or directory of the store is a symbolic link."""
        refuse_links(self.root)

    def links(self) -> list[Path]:
        """Every link in place of a control file or directory of the store, sorted (what :meth:`refuse_links`
        refuses; ``verify`` reports them and its repair removes the links themselves)."""
        return store_links(self.root)

    def blob_files(self) -> Iterator[Path]:
        """Every file in a ``blobs/ALG/`` directory of the store, the layouts' and the VEX repositories', stored
        under its name or not; never through a link to a directory."""
        blob_dirs = []
        for dirpath, dirnames, _ in os.walk(self.root):
            if BLOBS_DIR in dirnames and not os.path.islink(Path(dirpath) / BLOBS_DIR):
                blob_dirs.append(Path(dirpath) / BLOBS_DIR)
            dirnames[:] = [d for d in dirnames if d != BLOBS_DIR and not d.startswith(".")]
        for blobs_dir in sorted(blob_dirs):
            with contextlib.suppress(FileNotFoundError):
                for algorithm_dir in sorted(blobs_dir.iterdir()):
                    if algorithm_dir.is_dir() and not algorithm_dir.is_symlink():
                        yield from sorted(algorithm_dir.iterdir())

    def writer(self) -> dict[str, Any] | None:
        """Who holds the writer lock now, as it recorded itself (``pid``, ``purpose``, ``started``; {} before it
        wrote), or None when nobody does."""
        return exclusive_holder(self.root)

    @contextlib.contextmanager
    def lock(self, timeout: float = 600, on_wait: Callable[[str], None] | None = None, *,
             purpose: str = "sync", allow_links: bool = False) -> Iterator[None]:
        """Hold the exclusive writer lock, waiting up to ``timeout`` seconds (StoreError after that).

        ``on_wait`` is told once, in one line, who holds the lock; ``purpose`` is what others are told about us.
        Taking the lock removes temp files a crashed writer left behind. A store with a link in place of a
        control file or directory is refused (StoreError) unless ``allow_links`` (``verify --repair`` removes
        the links).
        """
        if not allow_links:
            self.refuse_links()
        attempt = StoreLock(self.root, timeout, on_wait, purpose)
        while (delay := attempt.poll()) is not None:
            time.sleep(delay)
        try:
            clean_dir(self.root / TMP_DIR)
            yield
        finally:
            attempt.release()

    @contextlib.asynccontextmanager
    async def alock(self, timeout: float = 600,  # noqa: ASYNC109 - the wait for another process, as in lock()
                    on_wait: Callable[[str], None] | None = None, *, purpose: str = "sync",
                    shared: bool = False) -> AsyncIterator[None]:
        """:meth:`lock` for ``async with``: waits with asyncio.sleep, never blocking the event loop.

        ``shared``: many holders at once (pushes writing blobs), none while an exclusive holder (a sync, a
        prune, a manifest commit) has it; a shared holder removes no temp files.
        """
        await asyncio.to_thread(self.refuse_links)
        attempt = StoreLock(self.root, timeout, on_wait, purpose, shared)
        # Polling: nothing signals the release of another process's flock.
        while (delay := attempt.poll()) is not None:  # noqa: ASYNC110
            await asyncio.sleep(delay)
        try:
            if not shared:
                clean_dir(self.root / TMP_DIR)
            yield
        finally:
            attempt.release()

    # Staging files before publishing them (a bundle import).

    @staticmethod
    def check_repository(repository: str) -> str:
        """``repository`` when it can name a layout of a store (what :meth:`layout` accepts); InvalidReference,
        naming what is wrong, when it is invalid or reserved."""
        return check_repository(repository)

    def scratch_dir(self, prefix: str) -> Path:
        """A new directory path ``PREFIX<unique>`` in the store's temp area: on the store's file system, so files
        written there can be hard-linked into its layouts, and outside every layout, so readers never see them.

        The ``PREFIX*`` directories that crashed writers left there are removed first, so call it holding the
        writer lock. The caller creates the directory and removes it when done.
        """
        tmp = self.root / TMP_DIR
        for stale in tmp.glob(f"{prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
        return tmp / f"{prefix}{uuid.uuid4().hex}"
