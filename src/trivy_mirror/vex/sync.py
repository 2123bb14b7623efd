"""Syncing VEX repositories into the store: manifest, then the first usable location, checked and repacked.

For each repository: fetch and check the manifest, take its spec-0.1 version, and try its locations in order.
A location is downloaded with ``If-None-Match`` (the ETag of the version served, when it came from there), so
an unchanged upstream costs one 304. A download is unpacked into a work directory under ``STORE/.tmp``,
checked, repacked flat and deterministically, and published; a refused candidate leaves the served version
as it was. Every attempt is recorded for ``status``. Call with the store lock held (except for dry runs).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import LayerMetadata
from trivy_mirror.catalog.result import Outcome, TagResult
from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.engine.copier import CopyStats
from trivy_mirror.engine.events import Listener
from trivy_mirror.errors import MirrorError, RefusedCandidate
from trivy_mirror.fsutil import ensure_dir, os_errors
from trivy_mirror.http.transport import Transport
from trivy_mirror.timefmt import iso
from trivy_mirror.vex.extract import Limits, extract_archive
from trivy_mirror.vex.fetch import Download, Fetcher
from trivy_mirror.vex.getter import Location, display_url, parse_location
from trivy_mirror.vex.index import VexIndex
from trivy_mirror.vex.manifest import RepositoryManifest
from trivy_mirror.vex.repack import repack
from trivy_mirror.vex.source import VexSource, check_unique
from trivy_mirror.vex.status import ASSET, dates, reference
from trivy_mirror.vex.storage import WORK_PREFIX, StoreRoot, VexRepository, VexState, VexVersion, clean_work_dirs
from trivy_mirror.vex.tree import check_repository

log = logging.getLogger(__name__)

MANIFEST_WHAT = "vex-repository.json"
ARCHIVE_WHAT = "archive"


@dataclass(frozen=True)
class _Candidate:
    """A repacked archive waiting in the work directory."""

    path: Path
    digest: str
    size: int
    index: VexIndex


@dataclass(frozen=True)
class _Outcome:
    result: TagResult
    state: VexState | None
    """The state to save (None: keep the stored one)."""


async def sync_vex(store: StoreRoot, sources: Sequence[VexSource], transport: Transport, *,
                   dry_run: bool = False, limits: Limits | None = None,
                   authorization: Mapping[str, str] | None = None, events: Listener | None = None) -> list[TagResult]:
    """Sync each repository; one result per repository, in order. ``authorization``: header values by host (a
    parent mirror's credentials, sent to its host only); ``events``: each archive download as a named item
    (:meth:`Fetcher.download`), ``skipped`` when the upstream says it is unchanged.

    A repository that fails or is refused gives a result saying why; only a name given twice raises (UsageError).
    """
    check_unique(sources)
    if not dry_run:
        clean_work_dirs(store.root)
    runner = _VexSync(store.root, Fetcher(transport, authorization), limits or Limits(), dry_run, events)
    return [await runner.sync(source) for source in sources]


class _VexSync:
    def __init__(self, root: Path, fetcher: Fetcher, limits: Limits, dry_run: bool,
                 events: Listener | None = None) -> None:
        self.root = root
        self.fetcher = fetcher
        self.limits = limits
        self.dry_run = dry_run
        self.events = events

    async def sync(self, source: VexSource) -> TagResult:
        started = time.monotonic()
        repository = VexRepository(self.root, source.name)
        state = repository.load()
        try:
            outcome = await self._sync(source, repository, state)
        except RefusedCandidate as err:
            kept = "kept the current version" if state.current else "nothing to serve yet"
            outcome = _Outcome(_result(source, "refused", f"{kept}: {err}"), None)
        except MirrorError as err:
            outcome = _Outcome(_result(source, "failed", str(err)), None)
        result = outcome.result
        result.seconds = time.monotonic() - started
        if not self.dry_run:
            self._record(repository, outcome.state or state, result)
        log.info("%s: %s: %s", reference(source.name), result.outcome, result.message)
        return result

    def _record(self, repository: VexRepository, state: VexState, result: TagResult) -> None:
        try:
            repository.save(state.with_attempt(result.attempt()))
        except MirrorError as err:
            if result.outcome == "updated":
                result.outcome, result.message = "failed", str(err)
            log.warning("cannot record the sync state of %s: %s", reference(repository.name), err)
            return
        if state.current is not None:
            repository.prune({state.current.digest, *([state.previous] if state.previous else [])})

    async def _sync(self, source: VexSource, repository: VexRepository, state: VexState) -> _Outcome:
        data = await self.fetcher.get_bytes(source.manifest_url, what=MANIFEST_WHAT,
                                            max_bytes=self.limits.max_manifest_bytes)
        version = RepositoryManifest.parse(data).version()
        manifest: dict[str, Any] = json.loads(data)
        state = replace(state, url=display_url(source.url))
        tried: list[str] = []
        refused = False
        for raw in version.locations:
            try:
                location = parse_location(raw)
            except RefusedCandidate as err:
                refused = True
                tried.append(str(err))
                continue
            try:
                return await self._from_location(source, repository, state, manifest, location)
            except RefusedCandidate as err:
                refused = True
                tried.append(f"{location.display}: {err}")
            except MirrorError as err:
                tried.append(f"{location.display}: {err}")
            log.info("%s: %s", reference(source.name), tried[-1])
        if refused:
            raise RefusedCandidate("; ".join(tried))
        raise MirrorError("; ".join(tried))

    async def _from_location(self, source: VexSource, repository: VexRepository, state: VexState,
                             manifest: dict[str, Any], location: Location) -> _Outcome:
        current = state.current
        served_here = current is not None and current.location == location.raw and repository.has_blob(current.digest)
        etag = current.etag if current is not None and served_here else None
        if self.dry_run:
            if current is not None and not await self.fetcher.changed(location.url, what=ARCHIVE_WHAT, etag=etag):
                return _Outcome(_result(source, "unchanged", "not modified upstream", state), None)
            return _Outcome(_result(source, "would-update", f"would download {location.display}", state), None)
        with os_errors(f"create a work directory in {repository.tmp_dir}"):
            ensure_dir(repository.tmp_dir)
            work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=repository.tmp_dir))
        try:
            return await self._download(source, repository, state, manifest, location, etag, work)
        finally:
            await asyncio.to_thread(_remove_tree, work)

    async def _download(self, source: VexSource, repository: VexRepository, state: VexState,
                        manifest: dict[str, Any], location: Location, etag: str | None, work: Path) -> _Outcome:
        now = datetime.now(UTC)
        current = state.current
        download = await self.fetcher.download(location.url, work / "download", what=ARCHIVE_WHAT, etag=etag,
                                               max_bytes=self.limits.max_download_bytes, events=self.events,
                                               name=f"{reference(source.name)} ({location.display})")
        if download is None:
            if current is None or etag is None:
                raise MirrorError("the server answered 304 Not Modified to a request without If-None-Match")
            state = replace(state, manifest=manifest, current=replace(current, checked_at=now))
            return _Outcome(_result(source, "unchanged", "not modified upstream (304)", state), state)
        candidate = await asyncio.to_thread(self._prepare, work, location)
        _check_not_older(source.name, candidate.index, current)
        stats = CopyStats(bytes_copied=download.size)
        if current is not None and candidate.digest == current.digest and repository.has_blob(current.digest):
            state = replace(state, manifest=manifest, current=replace(
                current, location=location.raw, source=location.display, etag=download.etag, checked_at=now))
            return _Outcome(_result(source, "unchanged", "same content as served", state, stats), state)
        repository.add_blob(candidate.path, candidate.digest)
        version = _version(candidate, location, download, now)
        previous = current.digest if current is not None else state.previous
        state = replace(state, manifest=manifest, current=version, previous=previous)
        message = (f"stored {candidate.digest[:19]} ({version.documents} documents, index updated "
                   f"{iso(version.index_updated_at) or 'at an unknown time'}) from {location.display}")
        return _Outcome(_result(source, "updated", message, state, replace(stats, blobs_copied=1)), state)

    def _prepare(self, work: Path, location: Location) -> _Candidate:
        """Check the download, unpack, check and repack it (blocking: runs in a thread)."""
        archive = work / "download"
        if location.checksum is not None:
            _verify_checksum(archive, *location.checksum)
        tree_dir = work / "tree"
        tree_dir.mkdir()
        tree = check_repository(extract_archive(archive, location.archive, tree_dir, self.limits), location.subdir)
        packed = work / "archive.tar.gz"
        with os_errors(f"write {packed}"), packed.open("wb") as file:
            repack(tree, file)
            file.flush()
            os.fsync(file.fileno())
        digest, size = _sha256(packed)
        return _Candidate(packed, digest, size, tree.index)


def _result(source: VexSource, outcome: Outcome, message: str, state: VexState | None = None,
            stats: CopyStats | None = None) -> TagResult:
    """A result shaped like the OCI assets' (``sync --json`` and the summary table treat them alike)."""
    current = state.current if state is not None else None
    metadata = None
    if state is not None and current is not None:
        updated_at, next_update = dates(state)
        metadata = LayerMetadata(None, updated_at, next_update)
    return TagResult(ASSET, reference(source.name), outcome, message,
                     current.digest if current and outcome != "would-update" else None,
                     current.size if current and outcome != "would-update" else None,
                     current.source if current else display_url(source.manifest_url), metadata,
                     stats or CopyStats())


def _version(candidate: _Candidate, location: Location, download: Download, now: datetime) -> VexVersion:
    index = candidate.index
    return VexVersion(candidate.digest, candidate.size, location.raw, location.display, download.etag,
                      index.updated_at, len(index.entries), len(index.documents), now, now)


def _check_not_older(name: str, index: VexIndex, current: VexVersion | None) -> None:
    """Refuse going back in time, as for the DBs (the publish policy): upstream serving an old snapshot must not
    replace a newer one."""
    found = policy.vex_regression(name, index.updated_at, current.index_updated_at if current else None)
    if found is not None:
        raise RefusedCandidate(f"{found.what} {found.candidate} is older than the served {found.served}")


def _verify_checksum(path: Path, algorithm: str, expected: str) -> None:
    digest = hashlib.new(algorithm)
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise RefusedCandidate(f"archive {algorithm} is {digest.hexdigest()[:16]}..., the location's checksum= "
                               f"says {expected[:16]}...")


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return f"sha256:{digest.hexdigest()}", size


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
