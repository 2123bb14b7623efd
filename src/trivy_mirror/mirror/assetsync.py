"""Sync Trivy's OCI assets: for each asset and tag, try the sources in order and publish a safe candidate."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata, TagSpec
from trivy_mirror.catalog.dated import dated_tag, has_own_time
from trivy_mirror.catalog.layerinfo import LayerInfoError, LayerInfoReader, read_layer_metadata
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.catalog.state import (
    Candidate,
    Destination,
    TagRecord,
    candidate_of,
    tag_record,
    with_approved,
    with_attempt,
    with_candidate,
    with_provenance,
)
from trivy_mirror.engine import copier
from trivy_mirror.engine.events import Event, NoProgress, Progress, fan_out, progress_listener
from trivy_mirror.errors import CopyError, MirrorError, NotFound, RefusedCandidate, Unreachable
from trivy_mirror.mirror import provenance as provenance_referrer
from trivy_mirror.mirror.endpoints import RegistryPool
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.oci.place import Place
from trivy_mirror.target import ReadTarget, WriteTarget

log = logging.getLogger(__name__)

DRY_RUN_UNCHECKED = ("metadata.json Version (schema)", "UpdatedAt (not older than the served version)")
"""A DB's metadata.json comes after the DB file in its layer: a dry run cannot read it without the whole download."""


class _Held(Exception):
    """The archive check failed while the candidate was copied: it is held, not published (never leaves this
    module)."""

    def __init__(self, hold: policy.Hold) -> None:
        super().__init__(str(hold))
        self.hold = hold


class AssetSync:
    """Syncs the catalog's assets from source prefixes into one destination."""

    def __init__(self, sources: Sequence[Place], source_pool: RegistryPool, destination: Destination, *,
                 dry_run: bool = False, progress: Progress | None = None, concurrency: int = 3,
                 referrers: bool = True,
                 wrap_source: Callable[[ReadTarget], ReadTarget] | None = None,
                 trust: policy.TrustSettings = policy.DEFAULT_TRUST) -> None:
        self.sources = list(sources)
        self.referrers = referrers
        """Copy each asset's referrers too (signatures, attestations), whether the asset changed or not."""
        self.wrap_source = wrap_source
        """Applied to every source repository (fan-out reads each blob once for several destinations)."""
        self.source_pool = source_pool
        self.destination = destination
        self.dry_run = dry_run
        self.trust = trust
        self.progress = progress or NoProgress()
        self._limit = asyncio.Semaphore(concurrency)

    async def run(self, specs: Sequence[AssetSpec]) -> list[TagResult]:
        """Every tag of every asset, concurrently (bounded); one failing never stops the others.

        Raises Unreachable, before any work, when no source registry answers: one line instead of one failure
        per asset for the same cause (the failure is still recorded for every asset, for ``status``).
        """
        try:
            await self._drop_unreachable_sources()
        except Unreachable as err:
            for spec in specs:
                for tag in spec.tags:
                    self._record(spec, tag.tag, TagResult(spec.name, f"{spec.mirror_repository}:{tag.tag}", "failed",
                                                          f"no source could be used: {err}"))
            raise
        jobs = [self._guarded(spec, tag) for spec in specs for tag in spec.tags]
        return list(await asyncio.gather(*jobs))

    async def _drop_unreachable_sources(self) -> None:
        failures: dict[str, str] = {}
        for registry in dict.fromkeys(prefix.registry for prefix in self.sources):
            try:
                await (await self.source_pool.client(registry)).ping()
            except Unreachable as err:
                failures[registry] = str(err)
            except MirrorError:
                pass  # it answers; whatever is wrong (auth, a 5xx) shows per asset with its reference
        reachable = [prefix for prefix in self.sources if prefix.registry not in failures]
        if not reachable:
            raise Unreachable("; ".join(failures.values()))
        for message in failures.values():
            log.warning("skipping a source: %s", message)
        self.sources = reachable

    async def _guarded(self, spec: AssetSpec, tag: TagSpec) -> TagResult:
        async with self._limit:
            started = time.monotonic()
            try:
                result = await self.sync_tag(spec, tag)
            except MirrorError as err:
                result = TagResult(spec.name, f"{spec.mirror_repository}:{tag.tag}", "failed", str(err))
            result.seconds = time.monotonic() - started
            provenance = self._record(spec, tag.tag, result)
            if provenance is not None and (self.trust.provenance or self.trust.sign_key is not None):
                await self._attest(spec, result, provenance)
            return result

    async def _attest(self, spec: AssetSpec, result: TagResult, provenance: dict[str, object]) -> None:
        """Attach the provenance referrer; a failure is a warning: the version is published and recorded."""
        assert result.digest is not None
        try:
            target = await self.destination.target(spec.mirror_repository)
            subject = await target.resolve(result.digest)
            if subject is None:
                raise NotFound(f"{result.digest} is not in the destination")
            digest = await provenance_referrer.attach(target, result.reference, subject, provenance,
                                                      self.trust.sign_key)
            result.message += f"; provenance {digest.short} attached"
        except (MirrorError, OSError) as err:
            log.warning("%s: cannot attach the provenance of %s: %s", spec.name, result.digest, err)

    def _record(self, spec: AssetSpec, tag: str, result: TagResult) -> dict[str, object] | None:
        """Write the attempt (and what it published or held) into the state; the provenance of a published
        version."""
        if self.dry_run or result.outcome == "absent":
            return None
        book = self.destination.state
        state = book.load(spec.mirror_repository)
        record = None
        now = datetime.now(UTC)
        if result.outcome == "updated" and result.digest and result.source:
            record = TagRecord(result.digest, result.size or 0, result.source, now, result.metadata)
        candidate = None
        if result.outcome == "held" and result.digest:
            previous = candidate_of(state, tag)
            first_seen = previous.first_seen if previous is not None and previous.digest == result.digest else now
            candidate = Candidate(result.digest, result.source or "", first_seen, result.held or "", result.message,
                                  result.reports or {})
        provenance = None
        if result.outcome == "updated" and result.digest:  # before the candidate it was is cleared
            provenance = policy.provenance_record(state, tag, result.digest, result.source or "", now,
                                                  result.decisions, result.reports)
            state = with_provenance(state, tag, provenance)
        if result.outcome in ("updated", "unchanged", "held"):
            state = with_candidate(state, tag, candidate)
        if result.outcome in ("updated", "unchanged"):
            state = with_approved(state, tag, None)
        try:
            book.save(spec.mirror_repository, with_attempt(state, tag, result.attempt(), record))
        except OSError as err:
            log.warning("cannot record the sync state of %s: %s", spec.mirror_repository, err)
        return provenance

    async def sync_tag(self, spec: AssetSpec, tag_spec: TagSpec) -> TagResult:
        tag = tag_spec.tag
        reference = f"{spec.mirror_repository}:{tag}"
        target = await self.destination.target(spec.mirror_repository)
        tried: list[str] = []
        refused = False
        not_found = 0
        sources, wanted, reports = self.sources, tag, None
        if self.trust.quorum > 1:
            agreement = await self._agree(spec, tag, reference, target)
            if isinstance(agreement, TagResult):
                return agreement
            sources, wanted, reports = agreement
        for prefix in sources:
            source_ref = f"{prefix.reference(spec.repository, tag)}"
            try:
                client = await self.source_pool.client(prefix.registry)
                source: ReadTarget = client.repository(prefix.repository(spec.repository))
                if self.wrap_source is not None:
                    source = self.wrap_source(source)
                manifest = await source.get_manifest(wanted)
                result = await self._publish(spec, tag, reference, source, source_ref, manifest, target)
                result.reports = reports
                if reports is not None and result.outcome == "updated":
                    agreeing = sum(1 for d in reports.values() if d == result.digest)
                    result.decisions.insert(0, f"quorum: {agreeing} of {len(reports)} sources serve it "
                                               f"(--quorum {self.trust.quorum})")
                if self.referrers and not self.dry_run:
                    await _copy_referrers(source, target, manifest, result)
                return result
            except CopyError as err:
                if err.side == "destination":  # no other source can fix it: say so once, not once per source
                    return TagResult(spec.name, reference, "failed", str(err))
                tried.append(f"{source_ref}: {err.reason}")
            except NotFound as err:
                not_found += 1
                tried.append(f"{source_ref}: {err}")
            except RefusedCandidate as err:
                refused = True
                tried.append(f"{source_ref}: refused: {err}")
            except MirrorError as err:
                tried.append(f"{source_ref}: {err}")
            log.info("%s: %s", spec.name, tried[-1])
        if not_found == len(self.sources) and not tag_spec.required:
            return TagResult(spec.name, reference, "absent", "not published by any source")
        summary = "; ".join(tried)
        if refused:
            return TagResult(spec.name, reference, "refused", f"kept the current version: {summary}")
        return TagResult(spec.name, reference, "failed", f"no source could be used: {summary}")

    async def _agree(self, spec: AssetSpec, tag: str, reference: str,
                     target: WriteTarget) -> TagResult | tuple[list[Place], str, dict[str, str | None]]:
        """``--quorum``: one manifest HEAD per source, no blob traffic. The sources serving the agreed digest and
        that digest (fetched by digest, so a source moving its tag meanwhile cannot slip another in), or the
        held result when too few agree (:func:`policy.quorum_hold`)."""

        async def head(prefix: Place) -> str | None:
            try:
                client = await self.source_pool.client(prefix.registry)
                found = await client.repository(prefix.repository(spec.repository)).resolve(tag)
            except MirrorError as err:
                log.info("%s: %s: %s", spec.name, prefix.reference(spec.repository, tag), err)
                return None
            return str(found.digest) if found is not None else None

        digests = await asyncio.gather(*(head(prefix) for prefix in self.sources))
        reports = {str(prefix.reference(spec.repository, tag)): d
                   for prefix, d in zip(self.sources, digests, strict=True)}
        with copier.side("destination", target):
            current = await target.resolve(tag)
        agreed, held = policy.quorum_hold(spec, self.trust.quorum, reports, str(current.digest) if current else None)
        if held is not None:
            offered = [d for d in digests if d is not None and (current is None or d != str(current.digest))]
            top = max(offered, key=offered.count) if offered else None
            return TagResult(spec.name, reference, "held", str(held), top, source=None, held="quorum",
                             reports=reports)
        if agreed is None:
            return list(self.sources), tag, reports  # no source has it: the usual loop reports why
        return [p for p, d in zip(self.sources, digests, strict=True) if d == agreed], agreed, reports

    async def _publish(self, spec: AssetSpec, tag: str, reference: str, source: ReadTarget, source_ref: str,
                       manifest: ManifestBytes, target: WriteTarget) -> TagResult:
        with copier.side("destination", target):
            current = await target.resolve(tag)
        if current is not None and current.digest == manifest.digest:
            known = await self._known_metadata(spec, tag, current)
            parsed_now = manifest.parsed
            if not self.dry_run and isinstance(parsed_now, Manifest) and has_own_time(spec, parsed_now, known):
                await self._tag_dated(spec, tag, manifest, known, target)  # a version published before dated tags
            return TagResult(spec.name, reference, "unchanged", "already up to date", str(manifest.digest),
                             _artifact_size(manifest), source_ref, known)
        parsed = manifest.parsed
        layer = policy.check_shape(spec, parsed)
        assert isinstance(parsed, Manifest)
        state = self.destination.state.load(spec.mirror_repository)
        digest = str(manifest.digest)
        served_size = await self._served_size(spec, tag, current, target) if current is not None else None
        held = policy.candidate_hold(spec, self.trust, state, tag, digest, _artifact_size(manifest), served_size,
                                     current is not None, datetime.now(UTC))
        if held is not None:
            return TagResult(spec.name, reference, "held", f"{held}; would publish {digest} from {source_ref}",
                             digest, _artifact_size(manifest), source_ref, held=held.reason)
        decisions = policy.passed_checks(spec, self.trust, state, tag, digest, current is not None)
        if self.dry_run:
            return self._dry_run(spec, tag, reference, source_ref, manifest, parsed)
        check_archive = not policy.waives_archive_check(self.trust, state, tag, digest)
        expect = spec.db_file if check_archive else None
        reader = LayerInfoReader(expect) if spec.has_metadata else None
        seen_layer = False

        def is_layer(blob: Descriptor) -> bool:
            return blob.digest == layer.digest

        async def read(event: Event) -> None:
            nonlocal seen_layer
            if reader is not None and event.kind == "bytes" and isinstance(event.blob, Descriptor) \
                    and is_layer(event.blob):
                seen_layer = True
                await reader.feed(event.data)

        shown = progress_listener(self.progress, reference, f"{spec.name} ({source_ref})", is_layer)
        hooks = copier.CopyHooks(fan_out(shown, read), lambda blob: reader is not None and is_layer(blob))

        metadata: LayerMetadata | None = None

        async def check(_manifest: ManifestBytes) -> None:
            nonlocal metadata
            if reader is not None:
                try:
                    if seen_layer:
                        metadata = await reader.result()
                    else:
                        metadata = await read_layer_metadata(target, layer, expect)
                except LayerInfoError as err:
                    if check_archive:
                        raise _Held(policy.archive_hold(spec, str(err))) from None
                    raise RefusedCandidate(f"{spec.name}: {err}") from None
            policy.check_version(spec, tag, parsed, metadata)
            if current is not None:
                served = await policy.served_version(
                    spec, target, self.destination.state.load(spec.mirror_repository), tag, current)
                policy.check_not_older(spec, parsed, metadata, served)

        hooks.before_publish = check
        try:
            stats = await copier.copy(source, manifest, target, tag, hooks)
        except _Held as held_by:  # its blobs stay: the next sync or approve reads them there, no new download
            return TagResult(spec.name, reference, "held",
                             f"{held_by.hold}; would publish {manifest.digest} from {source_ref}",
                             str(manifest.digest), _artifact_size(manifest), source_ref, held=held_by.hold.reason)
        finally:
            if reader is not None:
                reader.close()
        dated = await self._tag_dated(spec, tag, manifest, metadata, target)
        also = f", also as :{dated}" if dated else ""
        return TagResult(spec.name, reference, "updated", f"copied {manifest.digest.short} from {source_ref}{also}",
                         str(manifest.digest), _artifact_size(manifest), source_ref, metadata, stats,
                         decisions=decisions)

    async def _tag_dated(self, spec: AssetSpec, tag: str, manifest: ManifestBytes, metadata: LayerMetadata | None,
                         target: WriteTarget) -> str | None:
        """Tag the published version with its dated name too (:mod:`trivy_mirror.catalog.dated`), unless that
        name is taken: a dated tag is never moved. The name, or None when it was not (or could not be) tagged:
        a destination refusing the second name does not fail the sync."""
        parsed = manifest.parsed
        assert isinstance(parsed, Manifest)
        name = dated_tag(spec, tag, parsed, metadata, datetime.now(UTC))
        if name is None:
            return None
        try:
            existing = await target.resolve(name)
            if existing is None:
                await target.tag(name, manifest)
                return name
        except MirrorError as err:  # the version is published; its second name is a convenience
            log.warning("%s: cannot tag %s as %s: %s", spec.name, manifest.digest.short, name, err)
            return None
        if existing.digest != manifest.digest:
            log.warning("%s: %s already names %s; dated tags are never moved", spec.name, name, existing.digest.short)
            return None
        return name

    def _dry_run(self, spec: AssetSpec, tag: str, reference: str, source_ref: str, manifest: ManifestBytes,
                 parsed: Manifest) -> TagResult:
        """Every check the manifest allows (the shape is already checked; a checks bundle's major version here);
        what needs the layer is named in ``unchecked`` and in the message, never reported as passed."""
        unchecked = list(DRY_RUN_UNCHECKED) if spec.has_metadata else []
        if not spec.has_metadata:
            policy.check_version(spec, tag, parsed, None)
        message = f"would copy {manifest.digest.short}"
        if unchecked:
            message += f"; not checked without the download: {', '.join(unchecked)}"
        return TagResult(spec.name, reference, "would-update", message, str(manifest.digest),
                         _artifact_size(manifest), source_ref, unchecked=unchecked)

    async def _served_size(self, spec: AssetSpec, tag: str, current: Descriptor, target: WriteTarget) -> int | None:
        """The served artifact's size: from the state when it describes that digest, else from its manifest."""
        record = tag_record(self.destination.state.load(spec.mirror_repository), tag)
        if record is not None and record.digest == str(current.digest) and record.size:
            return record.size
        try:
            with copier.side("destination", target):
                return _artifact_size(await target.get_manifest(str(current.digest)))
        except MirrorError as err:
            log.warning("%s: cannot read the served version's size: %s", spec.name, err)
            return None

    async def _known_metadata(self, spec: AssetSpec, tag: str, current: Descriptor) -> LayerMetadata | None:
        record = tag_record(self.destination.state.load(spec.mirror_repository), tag)
        if record is not None and record.digest == str(current.digest):
            return record.metadata
        return None


async def _copy_referrers(source: ReadTarget, target: WriteTarget, manifest: ManifestBytes, result: TagResult) -> None:
    """The referrers of the asset's manifest, into ``result``'s stats. A failure leaves the asset as published
    and says so in the message: the asset itself is sound, and the next sync tries again."""
    try:
        await copier.copy_referrers(source, target, manifest.digest, result.stats)
    except MirrorError as err:
        log.warning("%s: referrers not copied: %s", result.reference, err)
        result.message += f"; referrers not copied: {err}"


def _artifact_size(manifest: ManifestBytes) -> int:
    parsed = manifest.parsed
    blobs = parsed.blobs if isinstance(parsed, Manifest) else parsed.manifests
    return sum(blob.size for blob in blobs)
