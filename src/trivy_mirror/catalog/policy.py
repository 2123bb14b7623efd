"""The one publish policy: may this candidate be published over what the destination serves?

``sync`` (:mod:`trivy_mirror.mirror.assetsync`), ``import`` (the OCI and VEX sections of a bundle), the VEX sync
(:mod:`trivy_mirror.vex.sync`) and pushes into the catalog's repositories (:mod:`trivy_mirror.server.catalogpush`)
all decide with these functions, so one candidate is accepted or refused alike whichever way it arrives. Each
caller words the refusal for its users (``import`` names the bundle and offers ``--allow-downgrade``), from the
same :class:`Regression`.

========  =========================  ===============================  ====================================
asset     shape (:func:`check_shape`) version (:func:`check_version`) not older (:func:`regression`)
========  =========================  ===============================  ====================================
db,       one layer; a title that is  metadata.json Version is the     UpdatedAt not before the served one;
java-db   a local relative path with  tag's schema; UpdatedAt present  not more than :data:`MAX_FUTURE_SKEW`
          an archive extension; the   and not in the future            ahead of this host's clock
          asset's layer media type
checks    as above                    the major of                     the version annotation (semver core,
                                      org.opencontainers.image.version  ``v`` and ``-pre``/``+build`` ignored)
                                      is the tag                       not below the served one
vex       (the archive rules of       --                               index.json ``updated_at`` not before
          :mod:`trivy_mirror.vex`)                                     the served one (:func:`vex_regression`)
========  =========================  ===============================  ====================================

A candidate that passes every check may still be *held* (not published, the current version kept, the candidate
recorded in state), in this order: :func:`quorum_hold` while fewer than ``--quorum`` sources serve the same
digest; :func:`pin_hold` when an operator pinned the tag to another digest (``trivy-mirror pin``,
``rollback``); :func:`shrink_hold` when it is much smaller than the served version (``--max-shrink``);
:func:`soak_hold` while a new version has not yet been the candidate for the asset's ``--hold``
(``trivy-mirror approve`` lifts it for one digest); :func:`archive_hold`, with ``check_archive``, when a DB
layer is not a readable tar.gz holding its database file with the right magic bytes
(:class:`~trivy_mirror.catalog.assets.DbFile`) and a parsable metadata.json. A pin or a hold is a decision, not
a failure: the sync reports what it would publish and exits 0; too few agreeing sources or a failed sanity check
(``sanity``: size, archive) make it exit 1. The settings are one :class:`TrustSettings`.

Refused or held: a refusal (:class:`RefusedCandidate`) is for what no operator decision can make right, because
Trivy refuses it itself (the shape, the schema Version against the tag) or because publishing it would poison
later decisions (UpdatedAt in the future, older than what is served). A sanity hold is the mirror's own
judgement that a candidate looks wrong (much smaller than the served one, a layer that does not look like a DB):
an upstream format change can make it wrong, so ``approve`` publishes that digest anyway, with the refusals
still applied (a layer whose metadata.json cannot be read is then refused: Trivy fails on it).

What cannot be compared never refuses: a served version with no readable metadata, or a checks bundle without
a version annotation (a custom build, which Trivy accepts), may be replaced. Equal values are not older: the
same build under another digest (re-packed) may replace the served one.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.catalog.state import Candidate, Pin, approved_of, candidate_of, pin_of, tag_record
from trivy_mirror.errors import MirrorError, RefusedCandidate
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest
from trivy_mirror.store.index import DATED_TAG
from trivy_mirror.target import ReadTarget
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

ARCHIVE_EXTENSIONS = ("tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "tar.zst", "tzst", "tar", "zip",
                      "gz", "bz2", "xz", "zst")
"""Title extensions go-getter unpacks; a title without one is copied as a single file and Trivy fails."""

MAX_FUTURE_SKEW = timedelta(hours=1)
"""How far in this host's future a DB's UpdatedAt may be. Builds are published after they are made, so only
clock skew puts UpdatedAt ahead of now; a date far ahead would make every later, real DB look older and be
refused until that date. One hour covers clocks kept by NTP and refuses any planted date."""


def is_local_relative(path: str) -> bool:
    """Go's ``filepath.IsLocal`` for the title check Trivy applies since v0.72."""
    if not path or path.startswith(("/", "\\")) or "\\" in path or "\x00" in path:
        return False
    if len(path) >= 2 and path[1] == ":":
        return False
    normal = posixpath.normpath(path)
    return normal != ".." and not normal.startswith("../") and normal != "."


def check_shape(spec: AssetSpec, manifest: Manifest | Index) -> Descriptor:
    """Refuse what Trivy's ``Artifact.Download`` would refuse; returns the one layer.

    The checks run in Trivy's order: single layer, title present, title local, media type.
    """
    if isinstance(manifest, Index):
        raise RefusedCandidate(f"{spec.name}: an image index is not a Trivy {spec.name} artifact")
    if len(manifest.layers) != 1:
        raise RefusedCandidate(f"{spec.name}: artifact has {len(manifest.layers)} layers; Trivy needs exactly one")
    layer = manifest.layers[0]
    title = layer.title
    if title is None:
        raise RefusedCandidate(f"{spec.name}: layer has no org.opencontainers.image.title; Trivy refuses it")
    if not is_local_relative(title):
        raise RefusedCandidate(f"{spec.name}: layer title {title!r} is not a local relative path; Trivy refuses it")
    if not title.endswith(tuple(f".{ext}" for ext in ARCHIVE_EXTENSIONS)):
        raise RefusedCandidate(f"{spec.name}: layer title {title!r} has no archive extension; Trivy cannot unpack it")
    if layer.media_type != spec.layer_media_type:
        raise RefusedCandidate(
            f"{spec.name}: layer media type is {layer.media_type}, Trivy needs {spec.layer_media_type}"
        )
    return layer


def checks_version(manifest: Manifest) -> str | None:
    """The checks bundle's ``org.opencontainers.image.version`` as written (None: a custom build)."""
    return manifest.annotations.get(mediatype.ANNOTATION_VERSION) or None


def semver(version: str | None) -> tuple[int, ...] | None:
    """The numeric core of a version (``v2.10.0-rc1`` is (2, 10, 0)); None when it is not numeric."""
    core = re.split(r"[-+]", (version or "").lstrip("v"), maxsplit=1)[0]
    parts = core.split(".")
    return tuple(int(p) for p in parts) if core and all(p.isdigit() for p in parts) else None


def checks_major_version(manifest: Manifest) -> int | None:
    """The checks bundle's major version (None: a custom build without a numeric version)."""
    major = (checks_version(manifest) or "").lstrip("v").split(".", 1)[0]
    return int(major) if major.isdigit() else None


def check_version(spec: AssetSpec, tag: str, manifest: Manifest, metadata: LayerMetadata | None,
                  now: datetime | None = None) -> None:
    """Refuse a schema version that does not match the tag Trivy asks for, or an UpdatedAt in the future."""
    if spec.has_metadata:
        if metadata is None:
            raise RefusedCandidate(f"{spec.name}: layer has no readable metadata.json")
        if metadata.version != spec.schema_version:
            raise RefusedCandidate(
                f"{spec.name}: metadata.json Version is {metadata.version}, tag :{tag} needs {spec.schema_version}"
            )
        if metadata.updated_at is None:
            raise RefusedCandidate(f"{spec.name}: metadata.json has no UpdatedAt")
        limit = (now or datetime.now(UTC)) + MAX_FUTURE_SKEW
        if metadata.updated_at > limit:
            raise RefusedCandidate(
                f"{spec.name}: metadata.json UpdatedAt {iso(metadata.updated_at)} is in the future (more "
                f"than {MAX_FUTURE_SKEW} ahead of this host's clock); refused, it would make every real update "
                "look older"
            )
        return
    major = checks_major_version(manifest)
    if major is not None and tag.isdigit() and major != int(tag):
        raise RefusedCandidate(f"{spec.name}: bundle version is {major}.x, tag :{tag} needs {tag}.x")


@dataclass(frozen=True)
class Served:
    """What the destination serves under a tag, as far as the policy compares it."""

    metadata: LayerMetadata | None = None
    """A DB's metadata.json (None when unknown or for the checks bundle)."""
    manifest: Manifest | None = None
    """The served manifest (the checks bundle's version is an annotation)."""


NOTHING_SERVED = Served()


@dataclass(frozen=True)
class Regression:
    """Why a candidate is older than what is served: the value compared, on both sides, as a person reads it."""

    asset: str
    what: str
    """``UpdatedAt``, ``version`` or ``index.json updated_at``."""
    candidate: str
    served: str

    def __str__(self) -> str:
        return f"{self.asset}: candidate {self.what} {self.candidate} is older than the served {self.served}"


def regression(spec: AssetSpec, manifest: Manifest, metadata: LayerMetadata | None,
               served: Served) -> Regression | None:
    """The regression, if publishing this candidate would go back in time; None when it may be published."""
    if spec.has_metadata:
        new = metadata.updated_at if metadata is not None else None
        old = served.metadata.updated_at if served.metadata is not None else None
        if new is not None and old is not None and new < old:
            return Regression(spec.name, "UpdatedAt", iso(new) or "", iso(old) or "")
        return None
    if served.manifest is None:
        return None
    new_text, old_text = checks_version(manifest), checks_version(served.manifest)
    new_version, old_version = semver(new_text), semver(old_text)
    if new_version is not None and old_version is not None and new_version < old_version:
        assert new_text is not None and old_text is not None
        return Regression(spec.name, "version", new_text, old_text)
    return None


def check_not_older(spec: AssetSpec, manifest: Manifest, metadata: LayerMetadata | None, served: Served) -> None:
    """Refuse (:class:`RefusedCandidate`) a candidate older than what is served: sync's and pushes' wording."""
    found = regression(spec, manifest, metadata, served)
    if found is not None:
        raise RefusedCandidate(f"{found}; keeping the current version")


def vex_regression(name: str, candidate: datetime | None, served: datetime | None) -> Regression | None:
    """A VEX repository whose index.json was updated before the served one's goes back in time."""
    if candidate is not None and served is not None and candidate < served:
        return Regression(name, "index.json updated_at", iso(candidate) or "", iso(served) or "")
    return None


async def served_version(spec: AssetSpec, target: ReadTarget, state: dict[str, Any], tag: str,
                         current: Descriptor) -> Served:
    """What the destination serves under ``tag`` (``current``): a DB's metadata from the recorded state when
    it describes that digest, else read from the layer; the checks bundle's manifest. Unreadable: unknown."""
    if spec.has_metadata:
        record = tag_record(state, tag)
        if record is not None and record.digest == str(current.digest) and record.metadata is not None:
            return Served(metadata=record.metadata)
    try:
        manifest = (await target.get_manifest(str(current.digest))).parsed
        if not isinstance(manifest, Manifest):
            return NOTHING_SERVED
        if not spec.has_metadata:
            return Served(manifest=manifest)
        if len(manifest.layers) == 1:
            return Served(metadata=await read_layer_metadata(target, manifest.layers[0]))
    except (MirrorError, LayerInfoError) as err:
        log.warning("%s: cannot read the served version to compare: %s", spec.name, err)
    return NOTHING_SERVED


HoldReason = Literal["pinned", "hold", "quorum", "sanity"]
"""Why a candidate is held: a pin, a soak period not over, too few sources agree, a sanity check failed."""


@dataclass(frozen=True)
class Hold:
    """Why a candidate is not published now although it may be later; what is served stays."""

    asset: str
    reason: HoldReason
    detail: str

    def __str__(self) -> str:
        return f"{self.asset}: held ({self.reason}): {self.detail}"


def pin_hold(spec: AssetSpec, pin: Pin | None, candidate: str) -> Hold | None:
    """A pinned tag serves its pinned digest only: any other candidate is held until ``unpin``."""
    if pin is None or pin.digest == candidate:
        return None
    by = f" by {pin.by}" if pin.by else ""
    why = f" ({pin.reason})" if pin.reason else ""
    return Hold(spec.name, "pinned", f"pinned to {pin.digest}{by} at {iso(pin.at)}{why}")


DEFAULT_MAX_SHRINK = 0.5
"""Upstream DBs grow slowly and never halve between two builds: a candidate under half the served size is a
truncated or emptied build, held rather than sent to every scanner."""


@dataclass(frozen=True)
class TrustSettings:
    """The operator's trust controls for a sync (flags ``--hold``, config file, environment)."""

    holds: Mapping[str, timedelta] = field(default_factory=dict)
    """Soak period per asset name; the key ``""`` applies to every asset without its own."""
    quorum: int = 1
    """Sources that must serve the same manifest digest before it is published (:func:`quorum_hold`)."""
    max_shrink: float = DEFAULT_MAX_SHRINK
    """A candidate smaller than this fraction of the served version is held (:func:`shrink_hold`); 0: no check."""
    check_archive: bool = True
    """A DB layer must hold its database file with the right magic bytes (besides a parsable metadata.json)."""
    provenance: bool = False
    """Attach an in-toto provenance statement to each published version as an OCI referrer."""
    sign_key: Path | None = None
    """Sign that statement (a DSSE envelope) with this Ed25519 key (implies ``provenance``)."""

    def hold_for(self, asset: str) -> timedelta:
        return self.holds.get(asset, self.holds.get("", timedelta(0)))


DEFAULT_TRUST = TrustSettings()


def soak_hold(spec: AssetSpec, settings: TrustSettings, candidate: Candidate | None, digest: str,
              approved: str | None, now: datetime) -> Hold | None:
    """A new version is published only once it has been the candidate, continuously, for the asset's hold (a
    different candidate digest restarts the clock), unless ``approved`` names its digest."""
    hold = settings.hold_for(spec.name)
    if hold <= timedelta(0) or approved == digest:
        return None
    first_seen = candidate.first_seen if candidate is not None and candidate.digest == digest else None
    since = first_seen or now
    if now - since >= hold:
        return None
    release = since + hold
    return Hold(spec.name, "hold", f"{digest} is the candidate since {iso(since)}; hold {hold} ends at "
                                   f"{iso(release)} (trivy-mirror approve {spec.name} publishes it now)")


def quorum_hold(spec: AssetSpec, quorum: int, reports: Mapping[str, str | None],
                served: str | None) -> tuple[str | None, Hold | None]:
    """Agreement of the sources on a tag: ``reports`` is each source's manifest digest (None: it has none or did
    not answer). Returns a new digest (not ``served``) that at least ``quorum`` sources serve, and no hold; the
    served digest (or None when no source answers) and no hold when no source offers anything new; else no
    digest and the hold, naming each source's digest and telling a source that *lags* (still serves the
    published digest) from one that *disagrees*."""
    counts: dict[str, int] = {}
    for digest in reports.values():
        if digest is not None:
            counts[digest] = counts.get(digest, 0) + 1
    new = {d: n for d, n in counts.items() if d != served}
    agreed = sorted((d for d, n in new.items() if n >= quorum), key=lambda d: -new[d])
    if agreed:
        return agreed[0], None
    if not new:  # every source serves the published version (or none answers): nothing to decide
        return served if served in counts else None, None
    parts = []
    for source, digest in reports.items():
        if digest is None:
            parts.append(f"{source}: nothing")
        elif digest == served:
            parts.append(f"{source}: {digest} (lagging: the published version)")
        else:
            parts.append(f"{source}: {digest} (disagrees)")
    best = max(new.values())
    return None, Hold(spec.name, "quorum", f"{best} of the {quorum} sources needed agree on a new version, "
                                            f"the published one stays; {'; '.join(parts)}")


def shrink_hold(spec: AssetSpec, settings: TrustSettings, candidate: int, served: int | None) -> Hold | None:
    """Hold a candidate whose artifact size is below ``max_shrink`` times the served one's (sizes from the
    manifests: no download)."""
    if settings.max_shrink <= 0 or not served or candidate >= served * settings.max_shrink:
        return None
    return Hold(spec.name, "sanity", f"the candidate is {candidate} bytes, {candidate / served:.0%} of the served "
                                     f"{served}; below --max-shrink {settings.max_shrink:g} (trivy-mirror approve "
                                     f"{spec.name} publishes it anyway)")


def archive_hold(spec: AssetSpec, problem: str) -> Hold:
    """Hold a candidate whose layer failed the archive check (``problem``: what the layer reader found)."""
    return Hold(spec.name, "sanity", f"archive check failed: {problem} (trivy-mirror approve {spec.name} "
                                     "publishes it anyway)")


def is_dated_tag(spec: AssetSpec, tag: str) -> bool:
    """``2-20261130.0600`` for one of the asset's tags (:mod:`trivy_mirror.catalog.dated`)."""
    match = DATED_TAG.match(tag)
    return match is not None and match["base"] in {t.tag for t in spec.tags}


def check_dated_tag(spec: AssetSpec, tag: str, digest: str, held: bool, existing: str | None) -> None:
    """A dated tag pushed into a catalog repository (a sync into ``serve``) names a version the repository
    already holds, and is never moved to another digest."""
    if not held:
        raise RefusedCandidate(f"{spec.name}: {tag} must name a version the repository holds; push it under its "
                               f"tag first")
    if existing is not None and existing != digest:
        raise RefusedCandidate(f"{spec.name}: {tag} already names {existing}; dated tags are never moved")


def sanity_waived(state: Mapping[str, Any], tag: str, digest: str) -> bool:
    """An operator approved ``digest`` while it was held by a sanity check (``approve`` after ``held (sanity)``):
    the size and archive checks are waived for it. An approval given during a soak period waives only the soak:
    a sanity check failing after it holds the candidate again, for a second, informed approval."""
    candidate = candidate_of(dict(state), tag)
    return (approved_of(dict(state), tag) == digest and candidate is not None and candidate.digest == digest
            and candidate.held == "sanity")


def candidate_hold(spec: AssetSpec, settings: TrustSettings, state: Mapping[str, Any], tag: str, digest: str,
                   size: int, served_size: int | None, replaces: bool, now: datetime) -> Hold | None:
    """The hold a candidate meets before it is downloaded, in order: the pin, the size against the served one
    (:func:`sanity_waived` aside), the soak period. ``replaces``: something is served (an empty mirror is filled
    at once: there is nothing to keep). ``sync``, ``import`` and catalog pushes all call it."""
    approved = approved_of(dict(state), tag)
    held = pin_hold(spec, pin_of(dict(state), tag), digest)
    if held is None and replaces and not sanity_waived(state, tag, digest):
        held = shrink_hold(spec, settings, size, served_size)
    if held is None and replaces:
        held = soak_hold(spec, settings, candidate_of(dict(state), tag), digest, approved, now)
    return held


def waives_archive_check(settings: TrustSettings, state: Mapping[str, Any], tag: str, digest: str) -> bool:
    """No archive check for this candidate: it is off, or :func:`sanity_waived`."""
    return not settings.check_archive or sanity_waived(state, tag, digest)


def passed_checks(spec: AssetSpec, settings: TrustSettings, state: Mapping[str, Any], tag: str, digest: str,
                  replaces: bool) -> list[str]:
    """The trust checks a published candidate passed, as a person reads them (its provenance's ``decisions``)."""
    passed = []
    if pin_of(dict(state), tag) is not None:
        passed.append("pin: it is the pinned digest")
    approved = approved_of(dict(state), tag) == digest
    waived = sanity_waived(state, tag, digest)
    hold = settings.hold_for(spec.name)
    if replaces and hold:
        passed.append("hold: approved by an operator" if approved else f"hold: the candidate for at least {hold}")
    if replaces and settings.max_shrink:
        passed.append("size: not checked, approved by an operator" if waived
                      else f"size: at least {settings.max_shrink:g} of the served version")
    if spec.db_file is not None and settings.check_archive:
        passed.append("archive: not checked, approved by an operator" if waived
                      else f"archive: {spec.db_file.name} ({spec.db_file.kind}) and metadata.json")
    return passed


def held_candidate(state: Mapping[str, Any], tag: str, digest: str, source: str, hold: Hold, now: datetime,
                   reports: Mapping[str, str | None] | None = None) -> Candidate:
    """The candidate to record for a held digest: its first sighting is kept while the digest stays the same."""
    previous = candidate_of(dict(state), tag)
    first_seen = previous.first_seen if previous is not None and previous.digest == digest else now
    return Candidate(digest, source, first_seen, hold.reason, str(hold), dict(reports or {}))


def provenance_record(state: Mapping[str, Any], tag: str, digest: str, source: str, now: datetime,
                      decisions: list[str], reports: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Where a version published now came from (``source``: a source reference, ``bundle (...)``, ``push by
    USER``), what each source reported (``--quorum``), since when it was the candidate (held before: its first
    sighting), when it was published and the checks that let it through."""
    held = candidate_of(dict(state), tag)
    first_seen = held.first_seen if held is not None and held.digest == digest else now
    return {"digest": digest, "source": source, "reports": dict(reports) if reports is not None else None,
            "first_seen": iso(first_seen), "published_at": iso(now), "decisions": decisions}
