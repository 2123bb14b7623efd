"""What the mirror remembers per destination repository: per tag, the metadata it read and the last attempt.

Kept beside the artifacts for the local store (``trivy-mirror.json`` in each layout) and in the state
directory for registry destinations, so ``status`` and the freshness checks need no blob download.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from trivy_mirror.catalog.assets import LayerMetadata
from trivy_mirror.catalog.attempt import Attempt, history_from_json, history_to_json, push_history
from trivy_mirror.store.fsutil import write_atomic
from trivy_mirror.target import WriteTarget
from trivy_mirror.timefmt import iso as _iso
from trivy_mirror.timefmt import parse_time


class StateBook(Protocol):
    """Load and save the state document of one destination repository."""

    def load(self, repository: str) -> dict[str, Any]: ...

    def save(self, repository: str, state: dict[str, Any]) -> None: ...


class Destination(Protocol):
    """Where mirrored assets go: repositories by their mirror-relative name, plus their state (implemented by
    :mod:`trivy_mirror.mirror.endpoints` and :mod:`trivy_mirror.static`)."""

    label: str
    state: StateBook

    async def target(self, repository: str) -> WriteTarget: ...


@dataclass(frozen=True)
class TagRecord:
    """The last artifact published under one tag, as remembered."""

    digest: str
    size: int
    source: str
    synced_at: datetime | None
    metadata: LayerMetadata | None

    @classmethod
    def from_json(cls, obj: Any) -> TagRecord | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str):
            return None
        meta = obj.get("metadata")
        metadata = None
        if isinstance(meta, dict):
            version = meta.get("version")
            metadata = LayerMetadata(version if isinstance(version, int) else None,
                                     parse_time(meta.get("updated_at")), parse_time(meta.get("next_update")))
        size = obj.get("size")
        return cls(obj["digest"], size if isinstance(size, int) else 0, str(obj.get("source", "")),
                   parse_time(obj.get("synced_at")), metadata)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"digest": self.digest, "size": self.size, "source": self.source,
                               "synced_at": _iso(self.synced_at)}
        if self.metadata is not None:
            obj["metadata"] = {"version": self.metadata.version, "updated_at": _iso(self.metadata.updated_at),
                               "next_update": _iso(self.metadata.next_update)}
        return obj


def tag_record(state: dict[str, Any], tag: str) -> TagRecord | None:
    tags = state.get("tags")
    return TagRecord.from_json(tags.get(tag)) if isinstance(tags, dict) else None


def last_attempt(state: dict[str, Any], tag: str) -> Attempt:
    attempts = state.get("attempts")
    return Attempt.from_json(attempts.get(tag) if isinstance(attempts, dict) else None)


def attempt_history(state: dict[str, Any], tag: str) -> tuple[Attempt, ...]:
    """The last attempts for ``tag``, newest first (empty for state written before histories were kept)."""
    histories = state.get("history")
    return history_from_json(histories.get(tag)) if isinstance(histories, dict) else ()


def with_attempt(state: dict[str, Any], tag: str, attempt: Attempt,
                 record: TagRecord | None = None) -> dict[str, Any]:
    """A copy of ``state`` with this attempt (and, on success, the new tag record) written in."""
    updated = dict(state)
    attempts = dict(updated.get("attempts") or {})
    attempts[tag] = attempt.to_json()
    updated["attempts"] = attempts
    histories = dict(updated.get("history") or {})
    histories[tag] = history_to_json(push_history(attempt_history(state, tag), attempt))
    updated["history"] = histories
    if record is not None:
        tags = dict(updated.get("tags") or {})
        tags[tag] = record.to_json()
        updated["tags"] = tags
    return updated


class DirectoryStateBook:
    """State of a registry destination: one JSON file per repository under a directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, repository: str) -> Path:
        return self.root / f"{repository}.json"

    def load(self, repository: str) -> dict[str, Any]:
        try:
            obj = json.loads(self._path(repository).read_text())
        except (OSError, ValueError):
            return {}
        return obj if isinstance(obj, dict) else {}

    def save(self, repository: str, state: dict[str, Any]) -> None:
        path = self._path(repository)
        write_atomic(path.parent, path, json.dumps(state, indent=2, sort_keys=True).encode())


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/trivy-mirror`` (``~/.local/state/trivy-mirror``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "trivy-mirror"

