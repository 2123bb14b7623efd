"""What is known about one mirrored asset at a destination, and whether it is fresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from trivy_mirror.catalog.assets import MIRROR_NAMESPACE
from trivy_mirror.catalog.attempt import FAILED_RESULTS
from trivy_mirror.timefmt import iso as _iso

State = Literal["fresh", "stale", "missing"]


@dataclass(frozen=True)
class AssetStatus:
    """One row of ``status`` (and of ``/readyz``, ``/metrics``); ``to_json`` gives DESIGN.md's keys."""

    asset: str
    reference: str
    digest: str | None = None
    size: int | None = None
    updated_at: datetime | None = None
    next_update: datetime | None = None
    source: str | None = None
    last_attempt: datetime | None = None
    last_result: str | None = None
    """One word of :data:`trivy_mirror.catalog.attempt.RESULTS`."""
    state: State = "missing"
    last_message: str = ""
    error: str | None = None
    """Why the asset cannot be served (a damaged store, a store nothing fills); the state is then missing."""
    pinned: dict[str, Any] | None = None
    """The pin an operator set (digest, by, at, reason: :class:`trivy_mirror.catalog.state.Pin`), or None."""
    candidate: dict[str, Any] | None = None
    """A newer version the sources offer that is held (digest, source, first_seen, reason), or None."""
    held: str | None = None
    """Why the candidate is held (pinned, hold, quorum, sanity); None when nothing is held."""
    provenance: dict[str, Any] | None = None
    """Where the served version came from and why it was published, when this mirror published it."""

    @property
    def display_name(self) -> str:
        """``trivy-db:2``, ``vex/vexhub``: the reference without the mirror namespace every OCI asset shares."""
        return self.reference.removeprefix(f"{MIRROR_NAMESPACE}/")

    @property
    def last_failed(self) -> bool:
        """The last attempt to write this asset failed or was refused (what is served may still be fresh)."""
        return self.last_result in FAILED_RESULTS

    @property
    def failure(self) -> str:
        """The line monitoring shows for a failed last attempt."""
        return f"{self.asset}: last sync of {self.reference} {self.last_result} at {_iso(self.last_attempt)}: " \
               f"{self.last_message}"

    @property
    def ready(self) -> bool:
        return self.state == "fresh"

    @property
    def reason(self) -> str:
        if self.error is not None:
            return f"{self.asset}: {self.reference}: {self.error}"
        if self.state == "missing":
            return f"{self.asset}: {self.reference} is not in the mirror"
        if self.state == "stale":
            return f"{self.asset}: {self.reference} is stale (NextUpdate {_iso(self.next_update)} has passed)"
        return f"{self.asset}: fresh"

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "reference": self.reference,
            "digest": self.digest,
            "size": self.size,
            "updated_at": _iso(self.updated_at),
            "next_update": _iso(self.next_update),
            "source": self.source,
            "last_attempt": _iso(self.last_attempt),
            "last_result": self.last_result,
            "last_message": self.last_message,
            "state": self.state,
            "error": self.error,
            "pinned": self.pinned,
            "candidate": self.candidate,
            "held": self.held,
            "provenance": self.provenance,
        }


def state_of(present: bool, next_update: datetime | None, now: datetime | None = None) -> State:
    """Missing when absent; stale once NextUpdate has passed; fresh otherwise (no NextUpdate: fresh)."""
    if not present:
        return "missing"
    if next_update is not None and (now or datetime.now(UTC)) >= next_update:
        return "stale"
    return "fresh"

