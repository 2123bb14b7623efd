"""The ``oci`` section on import: check each staged OCI asset as ``sync`` would, then publish it with the engine.

The staged layouts are ordinary :class:`~trivy_mirror.store.Layout` read targets, so publishing is
``copier.copy`` exactly as ``sync --to`` does it (into the store it hard-links the staged blobs). A DB layer's
``metadata.json`` (and, with the archive check, its database file's magic bytes) is read while the layer streams
in, not in a second pass.

The publish policy is sync's (:mod:`trivy_mirror.catalog.policy`): the refusals, then the holds a bundle can meet
(a pin, ``--max-shrink``, the archive check; the settings are :class:`~trivy_mirror.catalog.policy.TrustSettings`,
the defaults unless given; its ``quorum`` and ``holds`` do not apply: a bundle is one source, imported at once).
A held asset fails the whole import (nothing is published) with one line, and is recorded as the held candidate
(``status`` shows it; ``approve ASSET DIGEST`` lets the next import publish it).
A published version's provenance names the bundle as its source.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.bundle.oci_export import BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, ROOT, member
from trivy_mirror.bundle.sections import ImportResult, MemberObserver, PlannedAsset
from trivy_mirror.catalog import assets, policy
from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.catalog.dated import dated_tag
from trivy_mirror.catalog.layerinfo import LayerInfoError, LayerInfoReader, read_layer_metadata
from trivy_mirror.catalog.policy import DEFAULT_TRUST, Hold, TrustSettings
from trivy_mirror.catalog.state import (
    Destination,
    TagRecord,
    with_approved,
    with_attempt,
    with_candidate,
    with_provenance,
)
from trivy_mirror.engine import copier
from trivy_mirror.engine.events import Listener, as_item
from trivy_mirror.errors import BundleError, InvalidDigest, InvalidReference, MirrorError, RefusedCandidate
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor, Manifest
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store import Layout, Store
from trivy_mirror.target import ReadTarget, WriteTarget
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

_BLOB = re.compile(rf"(?P<repo>.+)/{BLOBS_DIR}/(?P<algorithm>[a-z0-9]+)/(?P<hex>[a-f0-9]+)")
SPECS = {spec.mirror_repository: spec for spec in assets.CATALOG}


@dataclass(frozen=True)
class _Member:
    repository: str
    digest: Digest | None
    """The blob's digest; None for ``oci-layout`` and ``index.json``."""


def _parse_member(file: BundleFile) -> _Member:
    """What an ``oci/...`` path is; BundleError for anything an exported layout never holds."""
    rest = file.path.removeprefix(f"{ROOT}/")
    repository: str | None = None
    digest = None
    for name in (LAYOUT_FILE, INDEX_FILE):
        if rest.endswith(f"/{name}"):
            repository = rest[: -len(name) - 1]
    if repository is None:
        match = _BLOB.fullmatch(rest)
        if match is None:
            raise BundleError(f"bundle member {file.path!r} is not part of an OCI image layout; refusing the bundle")
        repository = match["repo"]
        try:
            digest = Digest.parse(f"{match['algorithm']}:{match['hex']}")
        except InvalidDigest as err:
            raise BundleError(f"bundle member {file.path!r}: {err}") from None
        if digest != file.digest:
            raise BundleError(f"bundle manifest is invalid: blob {file.path!r} is listed with digest {file.digest}")
    try:
        Store.check_repository(repository)
    except InvalidReference as err:
        raise BundleError(f"bundle member {file.path!r}: {err}") from None
    if repository not in SPECS:
        raise BundleError(f"bundle member {file.path!r} belongs to {repository!r}, which is not a Trivy asset")
    return _Member(repository, digest)


class OciImport:
    """Imports the bundle's OCI assets into one destination (the store or a registry prefix)."""

    kind = "oci"
    root = ROOT

    def __init__(self, staging_root: Path, destination: Destination, trust: TrustSettings = DEFAULT_TRUST,
                 events: Listener | None = None) -> None:
        self.staged = Store(staging_root / ROOT)
        self.destination = destination
        self.trust = replace(trust, holds={}, quorum=1)
        """The sanity checks given; no soak period or quorum: a bundle is one source, imported at once."""
        self.events = events
        """Receives each asset's layer pushed into the destination, as a named item (a registry; into the store
        the staged blobs are linked, not copied)."""
        self._readers: dict[tuple[str, Digest], LayerInfoReader] = {}
        self._metadata: dict[tuple[str, Digest], LayerMetadata] = {}
        self._staged_blobs: set[tuple[str, Digest]] = set()

    def check_files(self, files: Sequence[BundleFile]) -> None:
        for file in files:
            _parse_member(file)

    async def needs_staging(self, file: BundleFile) -> bool:
        member = _parse_member(file)
        # Small blobs (manifests, configs) are always staged: planning reads them from the staging layouts.
        if member.digest is not None and file.size > MAX_MANIFEST_SIZE:
            target = await self.destination.target(member.repository)
            if await target.blob_exists(Descriptor("application/octet-stream", member.digest, file.size)):
                return False
        if member.digest is not None:
            self._staged_blobs.add((member.repository, member.digest))
        return True

    def observer(self, file: BundleFile) -> MemberObserver | None:
        member = _parse_member(file)
        spec = SPECS[member.repository]
        if member.digest is None or not spec.has_metadata:
            return None
        layout = self.staged.layout(member.repository)
        try:
            for entry in layout.manifests():
                if not layout.blob_path(entry.digest).exists():
                    continue
                manifest = layout.read_manifest(str(entry.digest))
                parsed = manifest.parsed if manifest is not None else None
                if isinstance(parsed, Manifest) and [layer.digest for layer in parsed.layers] == [member.digest]:
                    reader = LayerInfoReader(spec.db_file if self.trust.check_archive else None)
                    self._readers[(member.repository, member.digest)] = reader
                    return reader.feed
        except MirrorError:
            return None  # planning reports what is wrong with the layout
        return None

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()

    async def plan(self, entries: Sequence[AssetEntry]) -> list[PlannedAsset]:
        return [await self._plan(entry) for entry in entries]

    async def _plan(self, entry: AssetEntry) -> PlannedAsset:
        repository, _, tag = entry.reference.rpartition(":")
        spec = SPECS.get(repository)
        if spec is None or spec.name != entry.asset or tag not in {t.tag for t in spec.tags}:
            raise BundleError(f"bundle carries {entry.asset} {entry.reference!r}, which is not a Trivy asset this "
                              f"trivy-mirror knows")
        staged = self.staged.layout(repository)
        manifest = staged.read_manifest(tag)
        if manifest is None or str(manifest.digest) != entry.digest:
            raise BundleError(f"bundle is inconsistent: {member(repository, INDEX_FILE)} does not tag :{tag} as "
                              f"{entry.digest} as its manifest says")
        parsed = manifest.parsed
        layer = policy.check_shape(spec, parsed)
        assert isinstance(parsed, Manifest)
        target = await self.destination.target(repository)
        current = await target.resolve(tag)
        changed = current is None or current.digest != manifest.digest
        state = self.destination.state.load(repository)
        digest = str(manifest.digest)
        size = sum(blob.size for blob in parsed.blobs)
        if changed:
            served_size = await _served_size(target, current) if current is not None else None
            held = policy.candidate_hold(spec, self.trust, state, tag, digest, size, served_size,
                                         current is not None, datetime.now(UTC))
            if held is not None:
                self._hold(entry, spec, tag, digest, held)
        check_archive = changed and not policy.waives_archive_check(self.trust, state, tag, digest)
        metadata = None
        if spec.has_metadata:
            try:
                metadata = await self._layer_metadata(spec, repository, layer, check_archive)
            except _ArchiveFailed as failed:
                self._hold(entry, spec, tag, digest, policy.archive_hold(spec, str(failed)))
        policy.check_version(spec, tag, parsed, metadata)
        self._check_entry(entry, parsed, metadata)
        planned = OciPlanned(entry, spec, tag, manifest, metadata, staged, target, self.destination,
                             changed=changed, events=self.events)
        if changed:
            planned.decisions = policy.passed_checks(spec, self.trust, state, tag, digest, current is not None)
        if changed and current is not None:
            planned.downgrade = await self._downgrade(spec, target, tag, current, metadata, parsed)
        return planned

    def _hold(self, entry: AssetEntry, spec: AssetSpec, tag: str, digest: str, held: Hold) -> None:
        """Record the held candidate (``status`` shows it) and refuse the import: nothing is published."""
        book = self.destination.state
        state = book.load(spec.mirror_repository)
        candidate = policy.held_candidate(state, tag, digest, _source(entry), held, datetime.now(UTC))
        if held.reason == "pinned":
            message = f"{held}; the bundle's {digest} is not imported over a pin (trivy-mirror unpin {spec.name})"
        else:
            message = (f"{held}; nothing imported: after trivy-mirror approve {spec.name} {digest}, import the "
                       "bundle again")
        attempt = Attempt.now("held" if held.reason == "pinned" else "failed", message)
        try:
            book.save(spec.mirror_repository, with_attempt(with_candidate(state, tag, candidate), tag, attempt))
        except (OSError, MirrorError) as err:
            log.warning("cannot record the held candidate of %s: %s", entry.reference, err)
        raise RefusedCandidate(message)

    async def _layer_metadata(self, spec: AssetSpec, repository: str, layer: Descriptor,
                              check_archive: bool) -> LayerMetadata:
        """The layer's metadata.json; :class:`_ArchiveFailed` when ``check_archive`` and the layer fails the
        archive check, RefusedCandidate when the metadata cannot be read at all."""
        key = (repository, layer.digest)
        if key not in self._metadata:
            expect = spec.db_file if self.trust.check_archive else None
            try:
                reader = self._readers.pop(key, None)
                if reader is not None:
                    self._metadata[key] = await reader.result()
                else:
                    self._metadata[key] = await read_layer_metadata(await self._layer_source(repository, key), layer,
                                                                    expect)
            except LayerInfoError as err:
                if check_archive:
                    raise _ArchiveFailed(str(err)) from None
                if expect is None:
                    raise RefusedCandidate(f"{spec.name}: {err}") from None
                try:  # the archive check is waived (approved): only the metadata is needed
                    self._metadata[key] = await read_layer_metadata(await self._layer_source(repository, key), layer)
                except LayerInfoError as again:
                    raise RefusedCandidate(f"{spec.name}: {again}") from None
        return self._metadata[key]

    async def _layer_source(self, repository: str, key: tuple[str, Digest]) -> ReadTarget:
        """Where the layer is: staged, or already in the destination (it was not staged again)."""
        if key in self._staged_blobs:
            return self.staged.layout(repository)
        return await self.destination.target(repository)

    @staticmethod
    def _check_entry(entry: AssetEntry, parsed: Manifest, metadata: LayerMetadata | None) -> None:
        """The manifest's description must match the artifact: a mismatch means the manifest was altered."""
        size = sum(blob.size for blob in parsed.blobs)
        differences = []
        if entry.size != size:
            differences.append(f"size {entry.size} != {size}")
        if metadata is not None:
            for name, listed, actual in (("updated_at", entry.updated_at, metadata.updated_at),
                                         ("next_update", entry.next_update, metadata.next_update)):
                if listed is not None and listed != actual:
                    differences.append(f"{name} {iso(listed)} != {iso(actual)}")
        if differences:
            raise BundleError(f"bundle manifest does not match the {entry.asset} artifact it carries "
                              f"({', '.join(differences)}); the bundle was altered")

    async def _downgrade(self, spec: AssetSpec, target: WriteTarget, tag: str, current: Descriptor,
                         metadata: LayerMetadata | None, parsed: Manifest) -> str | None:
        """Why publishing would go back in time (the publish policy's rule, import's words); None if it would not."""
        state = self.destination.state.load(spec.mirror_repository)
        served = await policy.served_version(spec, target, state, tag, current)
        found = policy.regression(spec, parsed, metadata, served)
        if found is None:
            return None
        reference = f"{spec.mirror_repository}:{tag}"
        if found.what == "version":
            return f"{reference} in the bundle is version {found.candidate}, older than the served {found.served}"
        return f"{reference} in the bundle was built {found.candidate}, before the one served ({found.served})"


class OciPlanned:
    """One checked OCI asset; :meth:`publish` copies it from the staging layout and records it."""

    def __init__(self, entry: AssetEntry, spec: AssetSpec, tag: str, manifest: ManifestBytes,
                 metadata: LayerMetadata | None, staged: Layout, target: WriteTarget, destination: Destination,
                 *, changed: bool, events: Listener | None = None) -> None:
        self.entry = entry
        self.spec = spec
        self.tag = tag
        self.manifest = manifest
        self.metadata = metadata
        self.staged = staged
        self.target = target
        self.destination = destination
        self.changed = changed
        self.events = events
        self.downgrade: str | None = None
        self.decisions: list[str] = []
        """The trust checks it passed, for its provenance."""

    async def publish(self) -> ImportResult:
        updated_at = self.metadata.updated_at if self.metadata else None
        next_update = self.metadata.next_update if self.metadata else None
        if not self.changed:  # nothing written, not even the state: re-importing a bundle changes nothing
            unchanged = copier.CopyStats()  # but referrers the destination lacks (a signature added later) go in
            await copier.copy_referrers(self.staged, self.target, self.manifest.digest, unchanged)
            return ImportResult(self.entry, "unchanged", updated_at, next_update, unchanged)
        parsed = self.manifest.parsed
        assert isinstance(parsed, Manifest)
        layers = {layer.digest for layer in parsed.layers}
        shown = as_item(self.events, f"{self.spec.name} to {self.target.location}",
                        lambda blob: blob.digest in layers) if self.events is not None else None
        stats = await copier.copy(self.staged, self.manifest, self.target, self.tag,
                                  copier.CopyHooks(shown, referrer_depth=MAX_DEPTH))
        await self._tag_dated()
        self._record()
        return ImportResult(self.entry, "updated", updated_at, next_update, stats)

    async def _tag_dated(self) -> None:
        """The imported version's dated tag too (:mod:`trivy_mirror.catalog.dated`), unless that name is taken."""
        parsed = self.manifest.parsed
        assert isinstance(parsed, Manifest)
        name = dated_tag(self.spec, self.tag, parsed, self.metadata, datetime.now(UTC))
        if name is not None and await self.target.resolve(name) is None:
            await self.target.tag(name, self.manifest)

    def _record(self) -> None:
        """The published version, its provenance (the bundle as its source); no held candidate or approval left."""
        source = _source(self.entry)
        now = datetime.now(UTC)
        digest = str(self.manifest.digest)
        record = TagRecord(digest, self.entry.size, source, now, self.metadata)
        attempt = Attempt.now("imported", f"from {source}")
        book = self.destination.state
        repository = self.spec.mirror_repository
        try:
            state = book.load(repository)
            provenance = policy.provenance_record(state, self.tag, digest, source, now,
                                                  ["import: from a bundle", *self.decisions])
            state = with_approved(with_candidate(with_provenance(state, self.tag, provenance), self.tag, None),
                                  self.tag, None)
            book.save(repository, with_attempt(state, self.tag, attempt, record))
        except (OSError, MirrorError) as err:
            log.warning("cannot record the import of %s: %s", self.entry.reference, err)


class _ArchiveFailed(Exception):
    """The layer failed the archive check (the reader's words); the asset is held (never leaves this module)."""


def _source(entry: AssetEntry) -> str:
    return f"bundle ({entry.source})" if entry.source else "bundle"


async def _served_size(target: WriteTarget, current: Descriptor) -> int | None:
    """The served artifact's size, from its manifest; None when it cannot be read (no size check then)."""
    try:
        parsed = (await target.get_manifest(str(current.digest))).parsed
    except MirrorError as err:
        log.warning("cannot read the served version's size: %s", err)
        return None
    return sum(blob.size for blob in (parsed.blobs if isinstance(parsed, Manifest) else parsed.manifests))
