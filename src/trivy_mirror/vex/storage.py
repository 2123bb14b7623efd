"""Mirrored VEX repositories in the store: ``STORE/vex/NAME/``.

::

    STORE/vex/NAME/repository.json      the state: upstream manifest, current version, last attempt
    STORE/vex/NAME/blobs/sha256/HEX     repacked archives, content-addressed (current and previous)

A new version becomes visible by one atomic rename of ``repository.json`` after its archive is in place, so a
reader (the server, ``status``) sees the old version or the new one, whole. The previous archive is kept so a
download that read the old state a moment before the switch still finds its file. Writers hold the store lock.
No file here is named ``index.json``: the OCI side of the store treats directories holding one as layouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from trivy_mirror.catalog.attempt import NO_ATTEMPT, Attempt, history_from_json, history_to_json, push_history
from trivy_mirror.errors import MirrorError, StoreError
from trivy_mirror.fsutil import commit, os_errors, write_atomic
from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci.digest import Digest
from trivy_mirror.store.paths import TMP_DIR
from trivy_mirror.timefmt import iso, parse_time
from trivy_mirror.vex.manifest import RepositoryManifest, RepositoryVersion
from trivy_mirror.vex.source import NAME_RE

VEX_DIR = "vex"
STATE_FILE = "repository.json"
BLOBS_DIR = "blobs"
WORK_PREFIX = "vex-"
"""Prefix of the work directories a sync creates under ``STORE/.tmp``."""


class StoreRoot(Protocol):
    """Anything with the store's root directory (a :class:`~trivy_mirror.store.Store`): VEX repositories live
    under ``ROOT/vex``, beside the OCI layouts, without needing the OCI store's API."""

    @property
    def root(self) -> Path: ...


@dataclass(frozen=True)
class VexVersion:
    """The archive served for one repository, and what is known about it."""

    digest: str
    size: int
    location: str
    """The manifest location it came from, as written there (the key of ``etag``)."""
    source: str
    """``location`` for display: no credentials, no query."""
    etag: str | None
    index_updated_at: datetime | None
    packages: int
    documents: int
    synced_at: datetime
    """When this content was first stored."""
    checked_at: datetime
    """When upstream last confirmed it (a download or a 304)."""

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "location": self.location, "source": self.source,
                "etag": self.etag, "index_updated_at": iso(self.index_updated_at), "packages": self.packages,
                "documents": self.documents, "synced_at": iso(self.synced_at), "checked_at": iso(self.checked_at)}

    @classmethod
    def from_json(cls, obj: Any) -> VexVersion | None:
        if not isinstance(obj, dict):
            return None
        try:
            Digest.parse(obj["digest"])
            synced, checked = parse_time(obj["synced_at"]), parse_time(obj.get("checked_at"))
            if synced is None:
                return None
            etag = obj.get("etag")
            return cls(obj["digest"], int(obj["size"]), str(obj["location"]), str(obj.get("source", "")),
                       etag if isinstance(etag, str) else None, parse_time(obj.get("index_updated_at")),
                       int(obj.get("packages", 0)), int(obj.get("documents", 0)), synced, checked or synced)
        except (KeyError, TypeError, ValueError, MirrorError):
            return None


@dataclass(frozen=True)
class VexState:
    """Everything ``repository.json`` holds; fields are None until known."""

    name: str
    url: str | None = None
    """The repository URL (without credentials), for people reading the file."""
    manifest: dict[str, Any] | None = None
    """The upstream manifest document that goes with ``current``."""
    current: VexVersion | None = None
    previous: str | None = None
    """Digest of the version served before ``current``; its archive is kept."""
    attempt: Attempt = NO_ATTEMPT
    history: tuple[Attempt, ...] = ()
    """The last attempts, newest first (``attempt`` among them), for the status page."""

    def version(self) -> RepositoryVersion | None:
        """The manifest's spec-0.1 version (its ``update_interval``), None when unknown or invalid."""
        if self.manifest is None:
            return None
        try:
            return RepositoryManifest.from_json(self.manifest).version()
        except MirrorError:
            return None

    def with_attempt(self, attempt: Attempt) -> VexState:
        return replace(self, attempt=attempt, history=push_history(self.history, attempt))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "manifest": self.manifest,
                "current": self.current.to_json() if self.current else None, "previous": self.previous,
                "attempt": self.attempt.to_json(), "history": history_to_json(self.history)}

    @classmethod
    def from_json(cls, name: str, obj: Any) -> VexState:
        if not isinstance(obj, dict):
            return cls(name)
        manifest, url, previous = obj.get("manifest"), obj.get("url"), obj.get("previous")
        return cls(name, url if isinstance(url, str) else None, manifest if isinstance(manifest, dict) else None,
                   VexVersion.from_json(obj.get("current")), previous if isinstance(previous, str) else None,
                   Attempt.from_json(obj.get("attempt")), history_from_json(obj.get("history")))


class VexRepository:
    """``STORE/vex/NAME``: reading needs nothing; writing needs the store lock."""

    def __init__(self, store_root: Path, name: str) -> None:
        if not NAME_RE.fullmatch(name):
            raise StoreError(f"invalid VEX repository name {name[:80]!r}")
        self.name = name
        self.store_root = store_root
        self.dir = store_root / VEX_DIR / name
        self.state_path = self.dir / STATE_FILE
        self.tmp_dir = store_root / TMP_DIR

    def blob_path(self, digest: str) -> Path:
        parsed = Digest.parse(digest)
        return self.dir / BLOBS_DIR / parsed.algorithm / parsed.hex

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def load(self) -> VexState:
        """The state; an empty one when there is none yet or it cannot be read."""
        try:
            document = json.loads(self.state_path.read_bytes())
        except (OSError, ValueError):
            return VexState(self.name)
        return VexState.from_json(self.name, document)

    def read_document(self) -> dict[str, Any]:
        """``repository.json`` as it is, for a check (:meth:`load` forgives): OSError when it cannot be read,
        ValueError saying why it is not a JSON object."""
        return load_object(self.state_path.read_bytes(), "", ValueError, not_json="{detail}",
                           not_object="not a JSON object", too_deep="nested too deeply")

    def remove_state(self) -> None:
        """Remove an unreadable ``repository.json`` (the next sync starts the repository afresh)."""
        with contextlib.suppress(FileNotFoundError), os_errors(f"remove {self.state_path}"):
            self.state_path.unlink()

    def save(self, state: VexState) -> None:
        data = json.dumps(state.to_json(), indent=2, sort_keys=True).encode() + b"\n"
        with os_errors(f"write {self.state_path}"):
            write_atomic(self.tmp_dir, self.state_path, data)

    def add_blob(self, tmp: Path, digest: str) -> None:
        """Move a complete, fsynced archive into place under its digest (no-op when it is already there)."""
        target = self.blob_path(digest)
        with os_errors(f"store {target}"):
            if target.is_file():
                tmp.unlink()
                return
            commit(tmp, target)

    def prune(self, keep: set[str]) -> None:
        """Delete archives other than ``keep`` (best effort: a leftover is only disk space)."""
        wanted = {self.blob_path(digest) for digest in keep}
        for algorithm_dir in (self.dir / BLOBS_DIR).glob("*"):
            for path in algorithm_dir.glob("*"):
                if path not in wanted:
                    with contextlib.suppress(OSError):
                        path.unlink()


def stored_names(store_root: Path) -> list[str]:
    """Names of the repositories that have a state file, sorted."""
    try:
        entries = list(os.scandir(store_root / VEX_DIR))
    except OSError:
        return []
    return sorted(e.name for e in entries if NAME_RE.fullmatch(e.name) and os.path.isfile(Path(e.path) / STATE_FILE))


def present_names(store_root: Path) -> list[str]:
    """Names of the directories of ``STORE/vex`` with anything called ``repository.json`` in them (a file, a
    directory, through a link), sorted: what ``verify`` looks at, where :func:`stored_names` sees only the valid."""
    names = set(stored_names(store_root))
    with contextlib.suppress(OSError):
        names.update(e.name for e in os.scandir(store_root / VEX_DIR)
                     if e.is_dir(follow_symlinks=False) and (Path(e.path) / STATE_FILE).exists())
    return sorted(names)


def clean_work_dirs(store_root: Path) -> None:
    """Remove work directories a crashed sync left in ``STORE/.tmp`` (call with the store lock held)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(store_root / TMP_DIR):
            if entry.name.startswith(WORK_PREFIX) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)


def served_names(store_root: Path) -> list[str]:
    """The repositories a client can use now (a version and its archive in place), sorted by name."""
    names = []
    for name in stored_names(store_root):
        repository = VexRepository(store_root, name)
        state = repository.load()
        if state.current is not None and state.manifest is not None and repository.has_blob(state.current.digest):
            names.append(name)
    return names
