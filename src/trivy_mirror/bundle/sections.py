"""The extension point of bundles: one *section* per kind of asset, owning one top-level directory of the tar.

The OCI assets are the ``oci`` section (:mod:`~trivy_mirror.bundle.oci_export`,
:mod:`~trivy_mirror.bundle.oci_import`), VEX repositories the ``vex`` section (:mod:`~trivy_mirror.bundle.vex_export`,
:mod:`~trivy_mirror.bundle.vex_import`). Another kind of asset is added by writing an :class:`ExportSection` and an
:class:`ImportSection` for it and listing them where the commands build their sections; the tar format, the
verification and the staging stay as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.engine.copier import CopyStats
from trivy_mirror.timefmt import iso

MemberObserver = Callable[[bytes], Awaitable[None]]
"""Sees every chunk of one bundle member as it is read (the DB metadata reader), before it is staged."""


@dataclass(frozen=True)
class SourceFile:
    """A member to export: read from ``path`` (and verified against the digest), or the ``data`` given."""

    file: BundleFile
    path: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class ExportPart:
    """What one section puts in a bundle: its asset entries and its members, in the order they are written."""

    assets: tuple[AssetEntry, ...]
    files: tuple[SourceFile, ...]


class ExportSection(Protocol):
    kind: str

    async def collect(self) -> ExportPart:
        """The current version of each selected asset; MirrorError when one is missing or damaged."""
        ...


ImportOutcome = Literal["updated", "unchanged", "skipped"]


@dataclass
class ImportResult:
    """What importing one asset did; ``to_json`` uses the keys of ``sync --json``."""

    entry: AssetEntry
    outcome: ImportOutcome
    updated_at: datetime | None = None
    next_update: datetime | None = None
    stats: CopyStats = field(default_factory=CopyStats)

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.entry.asset, "reference": self.entry.reference, "outcome": self.outcome,
                "digest": self.entry.digest, "size": self.entry.size, "source": self.entry.source,
                "updated_at": iso(self.updated_at), "next_update": iso(self.next_update),
                "version": self.entry.version, **self.stats.to_json()}


class PlannedAsset(Protocol):
    """One asset checked against the destination, ready to publish."""

    entry: AssetEntry

    @property
    def changed(self) -> bool:
        """False when the destination already serves exactly this version."""
        ...

    @property
    def downgrade(self) -> str | None:
        """Why this would replace a newer version (one line), or None."""
        ...

    async def publish(self) -> ImportResult: ...


class ImportSection(Protocol):
    kind: str
    root: str
    """The top-level directory of the tar this section owns (``oci``)."""

    def check_files(self, files: Sequence[BundleFile]) -> None:
        """Refuse (BundleError) a listed path this section never writes: checked before any member is read."""
        ...

    async def needs_staging(self, file: BundleFile) -> bool:
        """False when the destination already holds this content: it is then verified and not written."""
        ...

    def observer(self, file: BundleFile) -> MemberObserver | None:
        """Called as a member starts; may return a function that sees its chunks (e.g. a metadata reader)."""
        ...

    async def plan(self, entries: Sequence[AssetEntry]) -> list[PlannedAsset]:
        """Check every asset once all members are staged and verified; raise to refuse the bundle."""
        ...

    def close(self) -> None:
        """Release what the observers hold (threads); called whatever happened."""
        ...
