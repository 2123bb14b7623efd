"""What the mirror remembers per destination repository: per tag, the metadata it read and the last attempt.

Kept beside the artifacts for the local store (``trivy-mirror.json`` in each layout) and in the state
directory for registry destinations, so ``status`` and the freshness checks need no blob download.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from trivy_mirror.catalog.assets import LayerMetadata
from trivy_mirror.catalog.attempt import Attempt, history_from_json, history_to_json, push_history
from trivy_mirror.fsutil import write_atomic
from trivy_mirror.jsonutil import object_or_none
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
    return updated if record is None else with_published(updated, tag, record)


class DirectoryStateBook:
    """State of a registry destination: one JSON file per repository under a directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, repository: str) -> Path:
        return self.root / f"{repository}.json"

    def load(self, repository: str) -> dict[str, Any]:
        try:
            return object_or_none(self._path(repository).read_bytes()) or {}
        except OSError:
            return {}

    def save(self, repository: str, state: dict[str, Any]) -> None:
        path = self._path(repository)
        write_atomic(path.parent, path, json.dumps(state, indent=2, sort_keys=True).encode())


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/trivy-mirror`` (``~/.local/state/trivy-mirror``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "trivy-mirror"



VERSIONS = 10
"""Digests remembered per tag as published (newest first): ``rollback`` on a registry, which keeps no history of
its own, takes the previous one that still resolves. A state file stays small."""


@dataclass(frozen=True)
class Pin:
    """An operator froze what a tag serves: the digest, who, when and why (``trivy-mirror pin``/``rollback``)."""

    digest: str
    by: str
    at: datetime | None
    reason: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> Pin | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str):
            return None
        return cls(obj["digest"], str(obj.get("by", "")), parse_time(obj.get("at")), str(obj.get("reason", "")))

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "by": self.by, "at": _iso(self.at), "reason": self.reason}


@dataclass(frozen=True)
class Candidate:
    """What the sources offer for a tag that is not published (pinned, held): the digest, where it came from, and
    since when it has been the candidate without interruption (a different digest restarts the clock)."""

    digest: str
    source: str
    first_seen: datetime | None
    held: str = ""
    """Why it is not published: one word of :data:`trivy_mirror.catalog.policy.HoldReason`."""
    detail: str = ""
    """The line a person reads."""
    reports: dict[str, str | None] = field(default_factory=dict)
    """With ``--quorum``: the manifest digest each source reported (None: none)."""

    @classmethod
    def from_json(cls, obj: Any) -> Candidate | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str):
            return None
        found = obj.get("reports")
        reports = {str(k): v if isinstance(v, str) else None for k, v in found.items()} \
            if isinstance(found, dict) else {}
        return cls(obj["digest"], str(obj.get("source", "")), parse_time(obj.get("first_seen")),
                   str(obj.get("held", "")), str(obj.get("detail", "")), reports)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "source": self.source, "first_seen": _iso(self.first_seen),
                "held": self.held, "detail": self.detail, "reports": self.reports}


def _tag_map(state: dict[str, Any], key: str) -> dict[str, Any]:
    found = state.get(key)
    return found if isinstance(found, dict) else {}


def pin_of(state: dict[str, Any], tag: str) -> Pin | None:
    return Pin.from_json(_tag_map(state, "pins").get(tag))


def candidate_of(state: dict[str, Any], tag: str) -> Candidate | None:
    return Candidate.from_json(_tag_map(state, "candidates").get(tag))


def published_versions(state: dict[str, Any], tag: str) -> list[str]:
    """Digests published under ``tag``, newest first (as far as this state remembers)."""
    found = _tag_map(state, "versions").get(tag)
    return [d for d in found if isinstance(d, str)] if isinstance(found, list) else []


def _with_tag_value(state: dict[str, Any], key: str, tag: str, value: Any) -> dict[str, Any]:
    updated = dict(state)
    values = dict(_tag_map(state, key))
    if value is None:
        values.pop(tag, None)
    else:
        values[tag] = value
    updated[key] = values
    return updated


def with_pin(state: dict[str, Any], tag: str, pin: Pin | None) -> dict[str, Any]:
    """A copy of ``state`` with ``tag`` pinned (None: unpinned)."""
    return _with_tag_value(state, "pins", tag, None if pin is None else pin.to_json())


def with_candidate(state: dict[str, Any], tag: str, candidate: Candidate | None) -> dict[str, Any]:
    """A copy of ``state`` with the unpublished candidate of ``tag`` (None: there is none)."""
    return _with_tag_value(state, "candidates", tag, None if candidate is None else candidate.to_json())


def with_published(state: dict[str, Any], tag: str, record: TagRecord) -> dict[str, Any]:
    """A copy of ``state`` where ``record`` is what ``tag`` serves: its record, and its digest first in the tag's
    version history (bounded to :data:`VERSIONS`)."""
    updated = dict(state)
    tags = dict(_tag_map(state, "tags"))
    tags[tag] = record.to_json()
    updated["tags"] = tags
    history = [record.digest, *(d for d in published_versions(state, tag) if d != record.digest)]
    return _with_tag_value(updated, "versions", tag, history[:VERSIONS])


def approved_of(state: dict[str, Any], tag: str) -> str | None:
    """The candidate digest an operator approved (``trivy-mirror approve``), published regardless of the hold."""
    found = _tag_map(state, "approved").get(tag)
    return found if isinstance(found, str) else None


def with_approved(state: dict[str, Any], tag: str, digest: str | None) -> dict[str, Any]:
    return _with_tag_value(state, "approved", tag, digest)


def provenance_of(state: dict[str, Any], tag: str, digest: str) -> dict[str, Any] | None:
    """Where the published version ``digest`` of ``tag`` came from and why it was published (see
    :func:`with_provenance`); None when this state did not publish it."""
    found = _tag_map(state, "provenance").get(tag)
    records = found if isinstance(found, list) else []
    return next((r for r in records if isinstance(r, dict) and r.get("digest") == digest), None)


def with_provenance(state: dict[str, Any], tag: str, record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with the provenance of a published version first (bounded to :data:`VERSIONS`):
    ``digest``, ``source``, ``reports`` (each source's digest), ``first_seen``, ``published_at``, ``decisions``."""
    found = _tag_map(state, "provenance").get(tag)
    older = [r for r in (found if isinstance(found, list) else [])
             if isinstance(r, dict) and r.get("digest") != record.get("digest")]
    return _with_tag_value(state, "provenance", tag, [record, *older][:VERSIONS])
