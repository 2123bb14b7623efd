"""A static registry tree on disk (layout in :mod:`trivy_mirror.static.paths`): its places, lock and notes.

Writers hold :meth:`StaticTree.alock` (the lock of the work store inside ``DIR/.trivy-mirror``); readers, the web
servers, never lock: every file becomes visible by one rename of a complete, fsynced file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trivy_mirror.errors import UsageError
from trivy_mirror.fsutil import ensure_dir, os_errors, write_atomic
from trivy_mirror.jsonutil import object_or_none
from trivy_mirror.static.paths import (
    ALIASES,
    BLOBS_DIR,
    MANIFESTS_DIR,
    META_DIR,
    PING_BODY,
    PING_FILE,
    SETTINGS_FILE,
    V2_DIR,
    VEX_DIR,
    check_repository,
)
from trivy_mirror.store import Store
from trivy_mirror.store.paths import TMP_DIR

if TYPE_CHECKING:
    from trivy_mirror.static.repository import StaticRepository

HISTORY_DIR = "tags"
MAX_HISTORY = 32
"""Digests remembered per tag (the newest); pruning keeps at most ``--keep`` of them, so this is only a bound."""


class StaticTree:
    """The tree at ``root`` (created by the first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.v2 = self.root / V2_DIR
        self.vex = self.root / VEX_DIR
        self.meta = self.root / META_DIR
        self.work = Store(self.meta)
        """Holds the writer lock, the temp files and the VEX repositories as sync stores them before publishing."""
        self.tmp = self.meta / TMP_DIR
        self.mutex = threading.Lock()
        """Serialises the tag, history and sidecar updates of this process's concurrent pushes."""

    def __repr__(self) -> str:
        return f"StaticTree({self.root})"

    def repository(self, name: str) -> StaticRepository:
        from trivy_mirror.static.repository import StaticRepository

        return StaticRepository(self, check_repository(name))

    def alock(self, timeout: float, on_wait: Callable[[str], None] | None = None, *,
              purpose: str = "sync") -> contextlib.AbstractAsyncContextManager[None]:
        """The exclusive writer lock (see :meth:`Store.alock`); it also clears temp files a crash left."""
        return self.work.alock(timeout, on_wait, purpose=purpose)

    def repositories(self) -> list[str]:
        """The repositories written here (directories of ``v2/`` holding ``manifests/``), aliases not included."""
        found: list[str] = []
        for dirpath, dirnames, _ in os.walk(self.v2):  # symlinks (aliases) are listed but not followed
            if MANIFESTS_DIR in dirnames:
                found.append(Path(dirpath).relative_to(self.v2).as_posix())
            dirnames[:] = [d for d in dirnames if d not in (MANIFESTS_DIR, BLOBS_DIR)]
        return sorted(found)

    def aliases_of(self, repository: str) -> list[str]:
        """The alias names that point at ``repository`` in this tree (symlinks that exist)."""
        return [alias for alias, target in ALIASES.items()
                if target == repository and (self.v2 / alias).is_symlink()]

    # Writing (call holding the lock).

    def prepare(self, repository: str) -> None:
        """Before the first manifest of ``repository`` lands: ``v2/index.json`` and its alias symlinks."""
        ping = self.v2 / PING_FILE
        with os_errors(f"write {ping}"):
            if not ping.is_file():
                write_atomic(self.tmp, ping, PING_BODY)
            for alias, target in ALIASES.items():
                if target == repository:
                    self._link_alias(self.v2 / alias, self.v2 / target)

    def _link_alias(self, alias: Path, target: Path) -> None:
        if alias.is_symlink() or alias.exists():
            return  # already linked, or a repository of its own that was written there
        ensure_dir(alias.parent)
        link = self.tmp / f".alias.{os.getpid()}.{alias.name}"
        ensure_dir(self.tmp)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(target, alias.parent))
        os.replace(link, alias)

    # Per-tag history: which digests each tag pointed at, oldest first (what pruning keeps).

    def history(self, repository: str) -> dict[str, list[str]]:
        try:
            document = object_or_none(self._history_path(repository).read_bytes())
        except OSError:
            return {}
        if document is None:
            return {}
        return {tag: [d for d in digests if isinstance(d, str)] for tag, digests in document.items()
                if isinstance(tag, str) and isinstance(digests, list)}

    def save_history(self, repository: str, history: dict[str, list[str]]) -> None:
        path = self._history_path(repository)
        bounded = {tag: digests[-MAX_HISTORY:] for tag, digests in sorted(history.items())}
        with os_errors(f"write {path}"):
            write_atomic(self.tmp, path, json.dumps(bounded, indent=2).encode() + b"\n")

    def _history_path(self, repository: str) -> Path:
        return self.meta / HISTORY_DIR / f"{repository}.json"

    # Settings remembered between runs.

    def public_url(self, given: str | None) -> str | None:
        """The URL the tree is served at: ``given``, else the one remembered by :meth:`remember_public_url`.

        VEX manifests name their archive under it, and Trivy caches a VEX manifest for ever, so a run without
        ``--public-url`` keeps the URL clients already have. UsageError for a URL that is not http(s).
        """
        if given is None:
            try:
                settings = object_or_none((self.meta / SETTINGS_FILE).read_bytes())
            except OSError:
                return None
            remembered = settings.get("public_url") if settings is not None else None
            return remembered if isinstance(remembered, str) else None
        if not given.startswith(("http://", "https://")):
            raise UsageError(f"--public-url {given[:100]!r} must be an http:// or https:// URL")
        return given.rstrip("/")

    def remember_public_url(self, url: str) -> None:
        """Keep ``url`` for later runs (call holding the writer lock)."""
        if self.public_url(None) == url:
            return
        path = self.meta / SETTINGS_FILE
        with os_errors(f"write {path}"):
            write_atomic(self.tmp, path, json.dumps({"public_url": url}, indent=2).encode() + b"\n")
