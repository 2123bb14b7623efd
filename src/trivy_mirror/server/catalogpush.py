"""Pushes into the catalog's repositories pass the checks ``sync`` applies before it publishes.

A push to ``aquasec/trivy-db:2`` (or an alias) replaces what every scanner downloads next, so it must be what
Trivy accepts and no older than what is served: one layer with the right media type and title, the schema
version the tag stands for (read from the pushed layer's ``metadata.json``), the checks bundle's major version,
and an UpdatedAt not in the future: :mod:`trivy_mirror.catalog.policy`, as for ``sync`` and ``import``. A
referrer (a manifest with a subject) pushed by digest is accepted there too: it is only listed by the referrers
API. Other repositories take any well-formed artifact.

The holds apply too, with serve's trust settings and the store's state: a pin, ``--max-shrink``, the archive
check and ``--hold`` (the first push of a digest starts its soak period; a push of it after the period is
published). A held push raises :class:`PushHeld`: the push API answers ``DENIED`` with the reason and records the
held candidate (``push by USER``), which ``status``, ``/readyz`` and ``/metrics`` show and ``approve`` lets
through at the next push. ``--quorum`` does not apply: a push is one source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import CATALOG, AssetSpec, LayerMetadata
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.catalog.state import (
    TagRecord,
    with_approved,
    with_attempt,
    with_candidate,
    with_provenance,
)
from trivy_mirror.errors import MirrorError, RefusedCandidate
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.manifest import Manifest
from trivy_mirror.target import WriteTarget

CATALOG_REPOSITORIES: Mapping[str, AssetSpec] = {spec.mirror_repository: spec for spec in CATALOG}
"""Store names of the catalog (aliases resolve to these before the check)."""


class PushHeld(Exception):
    """A push into a catalog tag that is held, not published (the push API answers ``DENIED``)."""

    def __init__(self, hold: policy.Hold, tag: str, digest: str) -> None:
        super().__init__(str(hold))
        self.hold = hold
        self.tag = tag
        self.digest = digest

    def recorded(self, state: Mapping[str, Any], who: str, now: datetime) -> dict[str, Any]:
        """``state`` with the held candidate and the failed (or, for a pin, held) attempt."""
        candidate = policy.held_candidate(state, self.tag, self.digest, pushed_by(who), self.hold, now)
        attempt = Attempt.now("held" if self.hold.reason in ("pinned", "hold") else "failed",
                              f"{self.hold}; push by {who or 'an unknown user'} denied")
        return with_attempt(with_candidate(dict(state), self.tag, candidate), self.tag, attempt)


@dataclass(frozen=True)
class AcceptedPush:
    """A push into a catalog tag that passed: what to record once it is published."""

    spec: AssetSpec
    tag: str
    digest: str
    size: int
    metadata: LayerMetadata | None
    decisions: list[str] = field(default_factory=list)

    def recorded(self, state: Mapping[str, Any], who: str, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """``state`` with the published version, its provenance (the pushing identity as its source) and no held
        candidate or approval left; and that provenance."""
        source = pushed_by(who)
        provenance = policy.provenance_record(state, self.tag, self.digest, source, now,
                                              [f"push: by {who or 'an unknown user'}", *self.decisions])
        updated = with_approved(with_candidate(with_provenance(dict(state), self.tag, provenance), self.tag, None),
                                self.tag, None)
        record = TagRecord(self.digest, self.size, source, now, self.metadata)
        return with_attempt(updated, self.tag, Attempt.now("ok", f"pushed by {who}"), record), provenance


def pushed_by(who: str) -> str:
    return f"push by {who or '-'}"


async def check_catalog_push(repository: str, target: WriteTarget, manifest: ManifestBytes, tag: str | None,
                             trust: policy.TrustSettings = policy.DEFAULT_TRUST,
                             state: Mapping[str, Any] | None = None,
                             now: datetime | None = None) -> AcceptedPush | None:
    """Raise :class:`RefusedCandidate` when a push into a catalog repository is not one sync would publish, and
    :class:`PushHeld` when sync would hold it; the accepted push of a new version to a catalog tag (None for
    anything else: another repository, a referrer, a dated tag, the version already served).

    The blobs the manifest references must already be in ``target`` (the layer is read from there).
    """
    spec = CATALOG_REPOSITORIES.get(repository)
    if spec is None:
        return None
    tags = [tag_spec.tag for tag_spec in spec.tags]
    if tag is None and manifest.parsed.subject is not None:
        return None  # a referrer (a signature, an attestation): Trivy never reads it in place of the asset
    if tag is None:
        raise RefusedCandidate(f"{spec.name}: push Trivy's {spec.name} by tag ({', '.join(tags)}), not by digest")
    if policy.is_dated_tag(spec, tag):
        existing = await target.resolve(tag)
        policy.check_dated_tag(spec, tag, str(manifest.digest), await target.resolve(str(manifest.digest)) is not None,
                               str(existing.digest) if existing is not None else None)
        return None
    if tag not in tags:
        raise RefusedCandidate(f"{spec.name}: Trivy reads only the tag(s) {', '.join(tags)} of {repository}, "
                               f"not {tag!r}")
    parsed = manifest.parsed
    layer = policy.check_shape(spec, parsed)
    assert isinstance(parsed, Manifest)  # check_shape refuses an index
    state = state or {}
    digest = str(manifest.digest)
    size = sum(blob.size for blob in parsed.blobs)
    current = await target.resolve(tag)
    changed = current is None or current.digest != manifest.digest
    if changed:
        served_size = await _served_size(target, str(current.digest)) if current is not None else None
        held = policy.candidate_hold(spec, trust, state, tag, digest, size, served_size, current is not None,
                                     now or datetime.now(UTC))
        if held is not None:
            raise PushHeld(held, tag, digest)
    metadata = None
    if spec.has_metadata:
        check_archive = changed and not policy.waives_archive_check(trust, state, tag, digest)
        try:
            metadata = await read_layer_metadata(target, layer, spec.db_file if check_archive else None)
        except LayerInfoError as err:
            if check_archive:
                raise PushHeld(policy.archive_hold(spec, str(err)), tag, digest) from None
            raise RefusedCandidate(f"{spec.name}: {err}") from None
    policy.check_version(spec, tag, parsed, metadata)
    if not changed:
        return None
    if current is not None:
        served = await policy.served_version(spec, target, dict(state), tag, current)
        policy.check_not_older(spec, parsed, metadata, served)
    return AcceptedPush(spec, tag, digest, size, metadata,
                        policy.passed_checks(spec, trust, state, tag, digest, current is not None))


async def _served_size(target: WriteTarget, digest: str) -> int | None:
    try:
        parsed = (await target.get_manifest(digest)).parsed
    except MirrorError:
        return None
    return sum(blob.size for blob in (parsed.blobs if isinstance(parsed, Manifest) else parsed.manifests))
