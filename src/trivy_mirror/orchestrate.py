"""Whole syncs as the facade and the server's scheduler run them: the OCI assets and the VEX repositories of one
destination, under the store's lock, reported as one outcome. Whole verifications of a store likewise
(:func:`verify_store`: the store's own check, ``store.verify``, and the VEX repositories', ``vex.verify``).

This is library code below the server (the scheduler calls :class:`StoreSync`) and below the facade (which the
CLI calls); it reads no flags and no environment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.catalog.status import store_statuses
from trivy_mirror.engine.events import Listener, Progress, item_listener
from trivy_mirror.errors import MirrorError, StoreError, UsageError
from trivy_mirror.http.transport import Transport
from trivy_mirror.mirror.assetsync import AssetSync
from trivy_mirror.mirror.endpoints import (
    PUBLIC_URL_ONLY_STATIC,
    ConnectionOptions,
    RegistryPool,
    StoreDestination,
    open_destination,
    retention,
)
from trivy_mirror.mirror.fanout import BlobSpool
from trivy_mirror.mirror.parent import Parent, discover_vex, merge_vex
from trivy_mirror.mirror.pins import AssetTag, approve, decided, delivered_candidate
from trivy_mirror.oci.place import STATIC, Place, scheme_of
from trivy_mirror.static import StaticDestination
from trivy_mirror.store import Store
from trivy_mirror.store.retention import maintain
from trivy_mirror.store.verify import Problem, StoreVerifier
from trivy_mirror.vex import DEFAULT_SOURCE, VexSource, sync_vex, vex_statuses
from trivy_mirror.vex.source import check_unique
from trivy_mirror.vex.status import ASSET as VEX_ASSET
from trivy_mirror.vex.storage import StoreRoot, stored_names
from trivy_mirror.vex.verify import VexVerifier

log = logging.getLogger("trivy_mirror.serve")

Plan = Callable[[Sequence[AssetSpec], Path], Sequence[AssetSpec]]
"""Which asset tags one sync of the store at a root covers (the server adds the tags its clients asked for)."""


def _every_tag(specs: Sequence[AssetSpec], _root: Path) -> Sequence[AssetSpec]:
    return specs


@dataclass(frozen=True)
class SyncReport:
    """What one sync did to one destination: a result per asset tag and VEX repository."""

    destination: str
    results: list[TagResult]

    @property
    def ok(self) -> bool:
        """No asset failed or was refused."""
        return not any(result.failed for result in self.results)

    def to_json(self) -> dict[str, object]:
        return {"destination": self.destination, "ok": self.ok, "results": [r.to_json() for r in self.results]}


async def sync_destination(specs: Sequence[AssetSpec], sources: Sequence[Place], source_options: ConnectionOptions,
                           dest_options: ConnectionOptions, store: Path | None, destination: str | None, *,
                           dry_run: bool = False, lock_timeout: float = 600.0, vex: Sequence[VexSource] = (),
                           public_url: str | None = None, keep: int | None = None, plan: Plan = _every_tag,
                           progress: Progress | None = None, referrers: bool = True,
                           vex_parent: Parent | None = None, spool: BlobSpool | None = None,
                           trust: TrustSettings = DEFAULT_TRUST) -> SyncReport:
    """Sync the catalog's ``specs`` and the ``vex`` repositories into one destination (the store at ``store``
    or its default, a registry prefix or ``static:DIR`` in ``destination``), holding its lock unless ``dry_run``,
    then keep it bounded (``keep`` versions). Raises UsageError for an impossible combination, Unreachable
    when no source answers (the failure is recorded per asset first).

    ``public_url`` applies to a static tree only; ``plan`` adds asset tags (the server's census); ``referrers``
    copies each asset's referrers too, except into a static tree (it serves no referrers API); ``vex_parent``
    adds the VEX repositories that parent mirror serves (a store or static tree only); ``spool`` is shared by
    the destinations of one fan-out (:func:`sync_destinations`).
    """
    async with AsyncExitStack() as stack:
        source_pool = await stack.enter_async_context(RegistryPool(source_options))
        dest_pool = await stack.enter_async_context(RegistryPool(dest_options))
        target = open_destination(store, destination, dest_pool)
        static, versions = retention(target, keep, public_url)
        parent_results: list[TagResult] = []
        authorization: Mapping[str, str] = {}
        if vex_parent is not None and isinstance(target, StoreDestination | StaticDestination):
            vex_root = target.tree.work.root if isinstance(target, StaticDestination) else target.store.root
            discovered, error = await discover_vex(vex_parent, source_options, stored_names(vex_root))
            vex = merge_vex(list(vex), discovered)
            authorization = vex_parent.authorization(source_options.credentials)
            if error is not None:
                parent_results.append(TagResult("vex", f"vex/* of {vex_parent.url}", "failed", str(error)))
        if vex and not isinstance(target, StoreDestination | StaticDestination):
            raise UsageError("VEX repositories are mirrored into the store (--store) or a static tree (--to "
                             "static:DIR), not into a registry (--to); serve them with trivy-mirror serve")
        vex_url = static.vex_public_url(public_url, required=bool(vex)) if static is not None else None
        if isinstance(target, StoreDestination) and not dry_run:
            await stack.enter_async_context(target.store.alock(lock_timeout, on_wait=log.warning))
        if static is not None and not dry_run:
            await stack.enter_async_context(static.tree.alock(lock_timeout, on_wait=log.warning))
        if isinstance(target, StoreDestination):
            specs = plan(specs, target.store.root)
        maintained = target.store if isinstance(target, StoreDestination) and not dry_run else None
        try:
            results = await AssetSync(sources, source_pool, target, dry_run=dry_run, progress=progress,
                                      referrers=referrers and static is None,
                                      wrap_source=spool.wrap if spool is not None else None,
                                      trust=trust).run(specs) if specs else []
            results += parent_results
            if vex:
                assert isinstance(target, StoreDestination | StaticDestination)
                vex_store = target.tree.work if isinstance(target, StaticDestination) else target.store
                results += await run_vex_sync(vex_store, vex, source_options, dry_run=dry_run,
                                              authorization=authorization,
                                              events=item_listener(progress) if progress is not None else None)
        except MirrorError:
            if maintained is not None:  # whatever failed, the store stays bounded, asset by asset
                await asyncio.to_thread(maintain, maintained, versions)
            raise
        if maintained is not None:
            await asyncio.to_thread(maintain, maintained, versions)
        if static is not None and not dry_run:
            await static.finish(versions, vex_url)
    return SyncReport(target.label, results)


async def sync_destinations(destinations: Sequence[str], specs: Sequence[AssetSpec], sources: Sequence[Place],
                            source_options: ConnectionOptions, dest_options: ConnectionOptions, *,
                            dry_run: bool = False, lock_timeout: float = 600.0, vex: Sequence[VexSource] = (),
                            public_url: str | None = None, keep: int | None = None, plan: Plan = _every_tag,
                            progress: Progress | None = None, vex_parent: Parent | None = None,
                            referrers: bool = True, trust: TrustSettings = DEFAULT_TRUST) -> list[SyncReport]:
    """Fan-out: :func:`sync_destination` into every destination at once, each source blob read once (a shared
    :class:`BlobSpool`). One destination failing whole (unreachable, locked, no source answering) is reported
    as its own failed result and does not stop the others; a usage error is raised."""
    if len(set(destinations)) != len(destinations):
        raise UsageError("a --to destination is given twice")
    if public_url is not None and not any(scheme_of(d) == STATIC for d in destinations):
        raise UsageError(PUBLIC_URL_ONLY_STATIC)
    async with BlobSpool() as spool:
        outcomes = await asyncio.gather(*(
            sync_destination(specs, sources, source_options, dest_options, None, destination, dry_run=dry_run,
                             lock_timeout=lock_timeout, vex=vex, plan=plan, progress=progress, vex_parent=vex_parent,
                             spool=spool, referrers=referrers, trust=trust,
                             **_static_only(destination, public_url, keep))
            for destination in destinations), return_exceptions=True)
        log.info("fan-out: %d blob(s) read from the sources for %d destinations", spool.downloads,
                 len(destinations))
    reports = []
    for destination, outcome in zip(destinations, outcomes, strict=True):
        if isinstance(outcome, UsageError) or not isinstance(outcome, SyncReport | MirrorError):
            raise outcome
        if isinstance(outcome, MirrorError):
            outcome = SyncReport(destination, [TagResult("destination", destination, "failed", str(outcome))])
        reports.append(outcome)
    return reports


def _static_only(destination: str, public_url: str | None, keep: int | None) -> dict[str, Any]:
    """``--public-url`` and ``--keep`` go to the static trees of a fan-out; a registry takes neither."""
    return {"public_url": public_url, "keep": keep} if scheme_of(destination) == STATIC else {}


APPROVED_ONLY = timedelta(days=36500)
"""The hold ``approve``'s sync runs with: only the approved digest passes it."""


@dataclass(frozen=True)
class ApproveResult:
    """What ``approve`` did: the digest approved, and either the one-asset sync's result (``published`` when it
    then serves that digest) or, for a candidate an import or a push brought (no sync fetches it), where it came
    from (``delivered``: ``bundle (...)`` or ``push by USER``): importing or pushing it again publishes it."""

    reference: str
    approved: str
    delivered: str | None = None
    result: TagResult | None = None

    @property
    def published(self) -> bool:
        """The sync published the approved digest (or it was served already)."""
        return self.result is not None and self.result.digest == self.approved \
            and self.result.outcome in ("updated", "unchanged")

    @property
    def message(self) -> str:
        """The one line a person reads."""
        if self.delivered is not None:
            again = "import the bundle" if self.delivered.startswith("bundle") else "push it"
            return (f"{self.reference}: approved {self.approved} (held from {self.delivered}); {again} again to "
                    "publish it")
        if self.published:
            return f"{self.reference}: approved {self.approved} and published it"
        outcome = f"{self.result.outcome}: {self.result.message}" if self.result is not None else "not synced"
        return f"{self.reference}: approved {self.approved}, not published yet: {outcome}"

    def to_json(self) -> dict[str, object]:
        if self.delivered is not None:
            return {"approved": self.approved, "published": False, "source": self.delivered}
        return {"approved": self.approved, "published": self.published,
                "result": self.result.to_json() if self.result is not None else None}


async def approve_and_sync(asset: AssetTag, digest: str | None, sources: Sequence[Place],
                           source_options: ConnectionOptions, dest_options: ConnectionOptions, store: Path | None,
                           destination: str | None, *, lock_timeout: float = 600.0) -> ApproveResult:
    """Record the approval of ``digest`` (default: the held candidate) under the destination's lock, then sync
    that one asset tag with a hold only the approved digest passes; a candidate an import or a push delivered
    is not synced (no source serves it for sure): the result says where it came from instead."""
    async with decided(dest_options, store, destination, lock_timeout) as target:
        approved = approve(target, asset, digest)
        delivered = delivered_candidate(target, asset, approved)
    if delivered is not None:
        return ApproveResult(asset.reference, approved, delivered=delivered)
    spec = replace(asset.spec, tags=tuple(t for t in asset.spec.tags if t.tag == asset.tag))
    only_approved = TrustSettings(holds={spec.name: APPROVED_ONLY})  # never another candidate than the approved
    report = await sync_destination([spec], sources, source_options, dest_options, store, destination,
                                    lock_timeout=lock_timeout, trust=only_approved)
    [result] = report.results
    return ApproveResult(asset.reference, approved, result=result)


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync did: ``ok`` false when any asset failed; ``message`` is the line the scheduler logs."""

    ok: bool
    message: str
    duration: float


def select_vex_sources(values: Sequence[str], asset_names: Sequence[str]) -> list[VexSource]:
    """The repositories of ``--vex-from`` (``[NAME=]URL``, in order); VEX Hub when ``vex`` is among the asset
    names without ``--vex-from``; none otherwise. Raises UsageError for a malformed value."""
    if values:
        sources = [VexSource.parse(value) for value in values]
        check_unique(sources)
        return sources
    return [DEFAULT_SOURCE] if VEX_ASSET in asset_names else []


def vex_status_rows(store: StoreRoot, asset_names: Sequence[str], values: Sequence[str] = ()) -> list[AssetStatus]:
    """``status`` rows: none when ``--assets`` names only OCI assets; otherwise every stored repository, plus a
    missing row for each configured one not stored yet (``--vex-from``, or VEX Hub for ``--assets vex``)."""
    if asset_names and VEX_ASSET not in asset_names and not values:
        return []
    return vex_statuses(store.root, [source.name for source in select_vex_sources(values, asset_names)])

async def run_vex_sync(store: StoreRoot, sources: Sequence[VexSource], options: ConnectionOptions, *,
                       dry_run: bool, authorization: Mapping[str, str] | None = None,
                       events: Listener | None = None) -> list[TagResult]:
    """Sync ``sources`` into ``store`` (hold its lock unless ``dry_run``); one result per repository, each
    archive download reported to ``events``.

    TLS follows the sources' options: verified by default, ``--ca-file`` added, ``--insecure`` to skip
    verification and allow plain HTTP to any host. Registry credentials are not sent to VEX hosts, except to a
    parent mirror's host through ``authorization`` (header values by host).
    """
    transport = Transport(insecure=options.insecure, ca_file=options.ca_file, retry=options.retry,
                          timeouts=options.timeouts)
    try:
        return await sync_vex(store, sources, transport, dry_run=dry_run, authorization=authorization,
                              events=events)
    finally:
        await transport.close()


SERVE_SYNC = "serve sync"
"""The lock purpose a serve's sync records: another serve of the same store skips its own sync meanwhile."""
SYNC_PURPOSES = frozenset({"sync", SERVE_SYNC})


@dataclass
class StoreSync:
    """One sync of the store, as the scheduler runs it: never raises, reports an outcome.

    Replicas (several serves on one store) do not queue up behind each other: when another process is syncing
    the store, this sync is skipped (logged, reported as a success), since what that sync lands is served here
    too; the replica's next turn comes at its own interval. Any other writer (a prune, a push's commit) is
    waited for, as before.
    """

    store: Store
    specs: Sequence[AssetSpec]
    sources: Sequence[Place]
    options: ConnectionOptions
    lock_timeout: float
    vex: Sequence[VexSource] = ()
    plan: Plan = field(default=_every_tag)
    parent: Parent | None = None
    """A parent mirror whose VEX repositories are mirrored too, asked on every sync."""
    trust: TrustSettings = DEFAULT_TRUST
    _discovered: list[VexSource] = field(default_factory=list, init=False, repr=False)

    async def __call__(self) -> SyncOutcome:
        started = time.monotonic()
        failures: list[str] = []
        results: list[TagResult] = []
        authorization: Mapping[str, str] = {}
        holder = self.store.writer()
        if holder is not None and holder.get("purpose") in SYNC_PURPOSES:
            message = (f"skipped: pid {holder.get('pid', '?')} ({holder.get('purpose')}) is syncing this store; "
                       f"its result is served here as it lands")
            log.info("sync %s", message)
            return SyncOutcome(True, message, time.monotonic() - started)
        if self.parent is not None:
            known = [source.name for source in self._discovered] or stored_names(self.store.root)
            discovered, error = await discover_vex(self.parent, self.options, known)
            if error is None or not self._discovered:  # the parent down: keep syncing what was known
                self._discovered = discovered
            authorization = self.parent.authorization(self.options.credentials)
            if error is not None:
                failures.append(str(error))
        vex = merge_vex(list(self.vex), self._discovered)
        try:
            async with RegistryPool(self.options) as pool, \
                    self.store.alock(self.lock_timeout, on_wait=log.warning, purpose=SERVE_SYNC):
                try:
                    specs = self.plan(self.specs, self.store.root)
                    if specs:
                        results = await AssetSync(self.sources, pool, StoreDestination(self.store),
                                                  trust=self.trust).run(specs)
                except MirrorError as err:  # no source answers: recorded per asset; the VEX sources may still
                    failures.append(str(err))
                results += await run_vex_sync(self.store, vex, self.options, dry_run=False,
                                              authorization=authorization)
        except MirrorError as err:
            return SyncOutcome(False, str(err), time.monotonic() - started)
        failures += [f"{r.reference}: {r.message}" for r in results if r.failed]
        changed = [r.reference for r in results if r.outcome == "updated"]
        message = "; ".join(failures) if failures else (
            f"updated {', '.join(changed)}" if changed else "everything up to date")
        return SyncOutcome(not failures, message, time.monotonic() - started)

    def statuses(self) -> list[AssetStatus]:
        vex = merge_vex(list(self.vex), self._discovered)
        return store_statuses(self.store, self.specs) + vex_statuses(self.store.root, [s.name for s in vex])



@dataclass
class VerifyReport:
    """What ``verify`` found in a store: the OCI side's counts and the VEX repositories', and every problem (each
    marked ``repaired`` when a repair removed it and the check after it no longer finds it)."""

    store: Path
    repositories: int = 0
    tags: int = 0
    blobs: int = 0
    bytes: int = 0
    vex_repositories: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Sound, or every problem repaired."""
        return all(problem.repaired for problem in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"store": str(self.store), "ok": self.ok, "repositories": self.repositories, "tags": self.tags,
                "blobs": self.blobs, "bytes": self.bytes, "vex_repositories": self.vex_repositories,
                "problems": [problem.to_json() for problem in self.problems]}


def _verify_pass(store: Store, *, repair: bool) -> VerifyReport:
    """One pass: the OCI side, then the VEX repositories with the blob checks of the first (each file hashed once)."""
    oci = StoreVerifier(store, repair=repair)
    found = oci.run()
    vex = VexVerifier(store.root, repair=repair, blob_ok=oci.blob_ok).run()
    return VerifyReport(store.root, found.repositories, found.tags, found.blobs, found.bytes, vex.repositories,
                        found.problems + vex.problems)


def verify_store(store: Store, *, repair: bool = False, lock_timeout: float = 600) -> VerifyReport:
    """Check (and with ``repair``, fix) ``store``; a repair holds the store lock, a check needs none.

    StoreError when there is no store at ``store.root``.
    """
    if not repair:
        return _verify_pass(store, repair=False)
    if not store.root.is_dir():
        raise StoreError(f"no store at {store.root}")
    with store.lock(lock_timeout, purpose="verify --repair", allow_links=True):
        report = _verify_pass(store, repair=True)
        # Whatever a repair changed is checked again: the answer is about the store as it is now.
        after = _verify_pass(store, repair=False)
    remaining = {problem.path for problem in after.problems}
    report.problems += [p for p in after.problems if p.path not in {q.path for q in report.problems}]
    for problem in report.problems:
        if problem.path in remaining:
            problem.repaired = False
    return report
