"""The outcome of syncing one asset tag (an OCI asset or a VEX repository), as ``sync`` reports and records it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trivy_mirror.catalog.assets import LayerMetadata
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.engine.copier import CopyStats
from trivy_mirror.timefmt import iso

Outcome = Literal["updated", "unchanged", "would-update", "held", "refused", "failed", "absent"]
FAILED_OUTCOMES = frozenset({"refused", "failed"})
FAILED_HOLDS = frozenset({"quorum", "sanity"})
"""Holds a sync reports as a failure (exit 1): the sources disagree or the candidate looks wrong. A pin or a
soak period is a decision an operator made, not a failure."""


@dataclass
class TagResult:
    """The outcome of syncing one asset tag; ``message`` is the one line a person reads."""

    asset: str
    reference: str
    outcome: Outcome
    message: str = ""
    digest: str | None = None
    size: int | None = None
    source: str | None = None
    metadata: LayerMetadata | None = None
    stats: CopyStats = field(default_factory=CopyStats)
    seconds: float = 0.0
    unchecked: list[str] = field(default_factory=list)
    """What a dry run could not check without downloading the layer."""
    held: str | None = None
    """With outcome ``held``: the reason (:data:`trivy_mirror.catalog.policy.HoldReason`)."""
    reports: dict[str, str | None] | None = None
    """With ``--quorum``: the manifest digest each source reported (None: none)."""
    decisions: list[str] = field(default_factory=list)
    """Why a published version was published: the trust checks it passed, as a person reads them."""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED_OUTCOMES or (self.outcome == "held" and self.held in FAILED_HOLDS)

    def attempt(self) -> Attempt:
        """What the state records for this result (a dry run and an absent optional tag record nothing)."""
        if self.outcome in ("refused", "failed"):
            return Attempt.now(self.outcome, self.message)
        if self.outcome == "held":
            return Attempt.now("failed" if self.failed else "held", self.message)
        return Attempt.now("ok", self.message)

    def to_json(self) -> dict[str, object]:
        return {
            "asset": self.asset, "reference": self.reference, "outcome": self.outcome, "message": self.message,
            "digest": self.digest, "size": self.size, "source": self.source,
            "updated_at": iso(self.metadata.updated_at) if self.metadata else None,
            "next_update": iso(self.metadata.next_update) if self.metadata else None,
            **self.stats.to_json(), "seconds": round(self.seconds, 3), "unchecked": self.unchecked, "held": self.held,
            "reports": self.reports, "decisions": self.decisions,
        }
