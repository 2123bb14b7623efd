"""Pins and rollback: an operator decides what a destination serves under a tag, and the sync respects it.

``pin`` moves the tag to a digest the destination already holds (a store keeps ``--keep`` versions; a registry
must have it, e.g. from an earlier sync) and records who, when and why; from then on a sync still looks at the
sources and reports what it would publish, but the tag stays (:func:`trivy_mirror.catalog.policy.pin_hold`).
``rollback`` pins the previous version: the newest older digest of the tag's history that still resolves (the
store's index keeps older versions; the state remembers the digests published, for registries). ``unpin``
lets the next sync publish again. ``approve`` lets a candidate held by ``--hold`` or a sanity check
(``--max-shrink``, ``--check-archive``) be published at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import CATALOG, AssetSpec, LayerMetadata
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.catalog.state import (
    Destination,
    Pin,
    TagRecord,
    candidate_of,
    pin_of,
    published_versions,
    tag_record,
    with_approved,
    with_candidate,
    with_pin,
    with_published,
)
from trivy_mirror.errors import MirrorError, NotFound, UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.static import StaticDestination
from trivy_mirror.store import Layout
from trivy_mirror.store.index import ANNOTATION_PREVIOUS_TAG, tag_of
from trivy_mirror.target import WriteTarget

log = logging.getLogger(__name__)

Action = Literal["pin", "unpin", "rollback"]


@dataclass(frozen=True)
class AssetTag:
    """``db``, ``java-db``, ``checks:1``: a catalog asset and one of its tags (the first when none is given)."""

    spec: AssetSpec
    tag: str

    @classmethod
    def parse(cls, text: str) -> AssetTag:
        name, _, tag = text.partition(":")
        spec = next((s for s in CATALOG if s.name == name), None)
        if spec is None:
            raise UsageError(f"unknown asset {name!r}: choose from {', '.join(s.name for s in CATALOG)} "
                             "(with an optional :TAG, e.g. checks:1)")
        tags = [t.tag for t in spec.tags]
        if tag and tag not in tags:
            raise UsageError(f"{name} has no tag {tag!r}: choose from {', '.join(tags)}")
        return cls(spec, tag or tags[0])

    @property
    def reference(self) -> str:
        return f"{self.spec.mirror_repository}:{self.tag}"


@dataclass(frozen=True)
class PinResult:
    """What ``pin``/``rollback``/``unpin`` did, as one line and as JSON."""

    reference: str
    digest: str | None
    previous: str | None
    pin: Pin | None
    message: str

    def to_json(self) -> dict[str, object]:
        return {"reference": self.reference, "digest": self.digest, "previous": self.previous,
                "pinned": self.pin.to_json() if self.pin else None, "message": self.message}


async def pin(destination: Destination, asset: AssetTag, digest: str, by: str, reason: str = "",
              now: datetime | None = None) -> PinResult:
    """Serve ``digest`` under the asset's tag and freeze it there. UsageError for a malformed digest; NotFound
    when the destination does not hold it; RefusedCandidate when it is not a usable Trivy artifact."""
    try:
        wanted = Digest.parse(digest)
    except MirrorError as err:
        raise UsageError(f"{digest!r} is not a digest (sha256:<64 hex>): {err}") from None
    target = await destination.target(asset.spec.mirror_repository)
    if await target.resolve(str(wanted)) is None:
        raise NotFound(f"{asset.reference}: {wanted} is not in {destination.label}; pin a digest it holds "
                       "(trivy-mirror status --json lists the served one; a store keeps --keep versions)")
    manifest = await target.get_manifest(str(wanted))
    layer = policy.check_shape(asset.spec, manifest.parsed)
    current = await target.resolve(asset.tag)
    if current is None or current.digest != manifest.digest:
        await target.tag(asset.tag, manifest)
    moment = now or datetime.now(UTC)
    record = Pin(str(wanted), by, moment, reason)
    book = destination.state
    state = book.load(asset.spec.mirror_repository)
    known = tag_record(state, asset.tag)
    if known is None or known.digest != str(wanted):
        metadata = await _metadata(asset.spec, target, layer) if asset.spec.has_metadata else None
        parsed = manifest.parsed
        size = sum(b.size for b in parsed.blobs) if isinstance(parsed, Manifest) else 0
        state = with_published(state, asset.tag, TagRecord(str(wanted), size, f"pin by {by}", moment, metadata))
    book.save(asset.spec.mirror_repository, with_candidate(with_pin(state, asset.tag, record), asset.tag, None))
    previous = str(current.digest) if current is not None else None
    moved = "" if previous == str(wanted) else f" (was {previous})"
    return PinResult(asset.reference, str(wanted), previous, record,
                     f"{asset.reference} pinned to {wanted}{moved}")


async def unpin(destination: Destination, asset: AssetTag) -> PinResult:
    """Let the next sync publish again; UsageError when the tag is not pinned."""
    book = destination.state
    state = book.load(asset.spec.mirror_repository)
    found = pin_of(state, asset.tag)
    if found is None:
        raise UsageError(f"{asset.reference} is not pinned in {destination.label}")
    book.save(asset.spec.mirror_repository, with_pin(state, asset.tag, None))
    return PinResult(asset.reference, found.digest, None, None,
                     f"{asset.reference} unpinned (was pinned to {found.digest}); the next sync may publish")


async def rollback(destination: Destination, asset: AssetTag, by: str, reason: str = "",
                   now: datetime | None = None) -> PinResult:
    """Serve the previous kept version and pin it; NotFound when no older version is kept."""
    target = await destination.target(asset.spec.mirror_repository)
    current = await target.resolve(asset.tag)
    served = str(current.digest) if current is not None else None
    state = destination.state.load(asset.spec.mirror_repository)
    for candidate in await _history(target, asset.tag, published_versions(state, asset.tag)):
        if candidate != served and await target.resolve(candidate) is not None:
            why = reason or f"rollback from {served}"
            done = await pin(destination, asset, candidate, by, why, now)
            return PinResult(done.reference, done.digest, served, done.pin,
                             f"{asset.reference} rolled back to {candidate} (was {served}) and pinned")
    raise NotFound(f"{asset.reference}: no previous version is kept in {destination.label} to roll back to")


def approve(destination: Destination, asset: AssetTag, digest: str | None) -> str:
    """Record that ``digest`` (default: the held candidate) may be published regardless of the hold and the
    sanity checks; the next sync fetches and publishes it (the policy's refusals still apply). The digest
    approved. UsageError when there is nothing to approve or the tag is pinned to another digest."""
    book = destination.state
    state = book.load(asset.spec.mirror_repository)
    candidate = candidate_of(state, asset.tag)
    wanted = digest or (candidate.digest if candidate is not None else None)
    if wanted is None:
        raise UsageError(f"{asset.reference}: no held candidate in {destination.label}; name the DIGEST to approve")
    try:
        wanted = str(Digest.parse(wanted))
    except MirrorError as err:
        raise UsageError(f"{wanted!r} is not a digest (sha256:<64 hex>): {err}") from None
    pinned = pin_of(state, asset.tag)
    if pinned is not None and pinned.digest != wanted:
        raise UsageError(f"{asset.reference} is pinned to {pinned.digest}: unpin it first")
    book.save(asset.spec.mirror_repository, with_approved(state, asset.tag, wanted))
    return wanted


def delivered_candidate(destination: Destination, asset: AssetTag, digest: str) -> str | None:
    """Where the held candidate ``digest`` came from when no sync fetches it: ``bundle (...)`` (an import) or
    ``push by USER`` (a push into ``serve``); None when a sync found it (or it is not the held candidate). Such a
    candidate is published by importing or pushing it again once approved."""
    candidate = candidate_of(destination.state.load(asset.spec.mirror_repository), asset.tag)
    if candidate is None or candidate.digest != digest:
        return None
    return candidate.source if candidate.source.startswith(("bundle", "push by ")) else None


@contextlib.asynccontextmanager
async def decided(options: ConnectionOptions, store: Path | None, destination: str | None, lock_timeout: float,
                  *, refuse_static: str | None = None) -> AsyncIterator[Destination]:
    """The destination a decision is recorded in (the store, ``store`` or the default, a registry prefix or
    ``static:DIR``), under the store's lock. UsageError for a static tree when ``refuse_static`` names the
    action: a pin is made in a store, and the tree synced from it."""
    async with RegistryPool(options) as pool:
        target = open_destination(store, destination, pool)
        if refuse_static is not None and isinstance(target, StaticDestination):
            raise UsageError(f"{refuse_static} applies to the store (--store) or a registry (--to REGISTRY), not to a "
                             "static tree: sync the tree from a pinned store instead")
        locked = target.store.alock(lock_timeout) if isinstance(target, StoreDestination) \
            else contextlib.nullcontext()
        async with locked:
            yield target


async def decide(action: Action, asset: AssetTag, options: ConnectionOptions, store: Path | None,
                 destination: str | None, *, digest: str = "", by: str = "", reason: str = "",
                 lock_timeout: float = 600.0) -> PinResult:
    """Open the destination, take its lock and ``pin``, ``unpin`` or ``rollback`` one asset tag there."""
    async with decided(options, store, destination, lock_timeout, refuse_static=action) as target:
        if action == "pin":
            return await pin(target, asset, digest, by, reason)
        if action == "unpin":
            return await unpin(target, asset)
        return await rollback(target, asset, by, reason)


async def _history(target: WriteTarget, tag: str, remembered: list[str]) -> list[str]:
    """Older digests of ``tag``, newest first: a store layout's index history first, then what the state
    remembers (the only history a registry has)."""
    found: list[str] = []
    if isinstance(target, Layout):
        found += [str(e.digest) for e in reversed(target.manifests())
                  if tag_of(e) is None and e.annotations.get(ANNOTATION_PREVIOUS_TAG) == tag]
    return list(dict.fromkeys([*found, *remembered]))


async def _metadata(spec: AssetSpec, target: WriteTarget, layer: Descriptor) -> LayerMetadata | None:
    try:
        return await read_layer_metadata(target, layer)
    except (MirrorError, LayerInfoError) as err:
        log.warning("%s: cannot read the pinned version's metadata: %s", spec.name, err)
        return None

