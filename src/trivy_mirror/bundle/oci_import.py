"""The ``oci`` section on import: check each staged OCI asset as ``sync`` would, then publish it with the engine.

The staged layouts are ordinary :class:`~trivy_mirror.store.Layout` read targets, so publishing is
``copier.copy`` exactly as ``sync --to`` does it (into the store it hard-links the staged blobs). A DB layer's
``metadata.json`` is read while the layer streams in, not in a second pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.bundle.oci_export import ROOT
from trivy_mirror.bundle.sections import ImportResult, MemberObserver, PlannedAsset
from trivy_mirror.catalog import assets, policy
from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.catalog.dated import dated_tag
from trivy_mirror.catalog.layerinfo import LayerInfoError, LayerInfoReader, read_layer_metadata
from trivy_mirror.catalog.state import Destination, TagRecord, pin_of, with_attempt
from trivy_mirror.engine import copier
from trivy_mirror.errors import BundleError, InvalidDigest, InvalidReference, MirrorError, RefusedCandidate
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor, Manifest
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store import Layout, Store
from trivy_mirror.store.paths import INDEX_FILE, LAYOUT_FILE, check_repository
from trivy_mirror.target import ReadTarget, WriteTarget
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

_BLOB = re.compile(r"(?P<repo>.+)/blobs/(?P<algorithm>[a-z0-9]+)/(?P<hex>[a-f0-9]+)")
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
        check_repository(repository)
    except InvalidReference as err:
        raise BundleError(f"bundle member {file.path!r}: {err}") from None
    if repository not in SPECS:
        raise BundleError(f"bundle member {file.path!r} belongs to {repository!r}, which is not a Trivy asset")
    return _Member(repository, digest)


class OciImport:
    """Imports the bundle's OCI assets into one destination (the store or a registry prefix)."""

    kind = "oci"
    root = ROOT

    def __init__(self, staging_root: Path, destination: Destination) -> None:
        self.staged = Store(staging_root / ROOT)
        self.destination = destination
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
                    reader = LayerInfoReader()
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
            raise BundleError(f"bundle is inconsistent: {ROOT}/{repository}/{INDEX_FILE} does not tag :{tag} as "
                              f"{entry.digest} as its manifest says")
        parsed = manifest.parsed
        layer = policy.check_shape(spec, parsed)
        assert isinstance(parsed, Manifest)
        metadata = await self._layer_metadata(spec, repository, layer) if spec.has_metadata else None
        policy.check_version(spec, tag, parsed, metadata)
        self._check_entry(entry, parsed, metadata)
        target = await self.destination.target(repository)
        current = await target.resolve(tag)
        planned = OciPlanned(entry, spec, tag, manifest, metadata, staged, target, self.destination,
                             changed=current is None or current.digest != manifest.digest)
        if planned.changed:
            held = policy.pin_hold(spec, pin_of(self.destination.state.load(repository), tag), str(manifest.digest))
            if held is not None:
                raise RefusedCandidate(f"{held}; the bundle's {manifest.digest} is not imported over a pin "
                                       f"(trivy-mirror unpin {spec.name})")
        if planned.changed and current is not None:
            planned.downgrade = await self._downgrade(spec, target, tag, current, metadata, parsed)
        return planned

    async def _layer_metadata(self, spec: AssetSpec, repository: str, layer: Descriptor) -> LayerMetadata:
        key = (repository, layer.digest)
        if key not in self._metadata:
            try:
                reader = self._readers.pop(key, None)
                if reader is not None:
                    self._metadata[key] = await reader.result()
                else:
                    source: ReadTarget = (self.staged.layout(repository) if key in self._staged_blobs
                                          else await self.destination.target(repository))
                    self._metadata[key] = await read_layer_metadata(source, layer)
            except LayerInfoError as err:
                raise RefusedCandidate(f"{spec.name}: {err}") from None
        return self._metadata[key]

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
                 *, changed: bool) -> None:
        self.entry = entry
        self.spec = spec
        self.tag = tag
        self.manifest = manifest
        self.metadata = metadata
        self.staged = staged
        self.target = target
        self.destination = destination
        self.changed = changed
        self.downgrade: str | None = None

    async def publish(self) -> ImportResult:
        updated_at = self.metadata.updated_at if self.metadata else None
        next_update = self.metadata.next_update if self.metadata else None
        if not self.changed:  # nothing written, not even the state: re-importing a bundle changes nothing
            unchanged = copier.CopyStats()  # but referrers the destination lacks (a signature added later) go in
            await copier.copy_referrers(self.staged, self.target, self.manifest.digest, unchanged)
            return ImportResult(self.entry, "unchanged", updated_at, next_update, unchanged)
        stats = await copier.copy(self.staged, self.manifest, self.target, self.tag,
                                  copier.CopyHooks(referrer_depth=MAX_DEPTH))
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
        source = f"bundle ({self.entry.source})" if self.entry.source else "bundle"
        record = TagRecord(str(self.manifest.digest), self.entry.size, source, datetime.now(UTC), self.metadata)
        attempt = Attempt.now("imported", f"from {source}")
        book = self.destination.state
        repository = self.spec.mirror_repository
        try:
            book.save(repository, with_attempt(book.load(repository), self.tag, attempt, record))
        except (OSError, MirrorError) as err:
            log.warning("cannot record the import of %s: %s", self.entry.reference, err)
