"""Whole syncs as the CLI and the server's scheduler run them: the OCI assets and the VEX repositories of one
destination, under the store's lock, reported as one outcome.

This is library code below the server (the scheduler calls :class:`StoreSync`) and below the CLI; it reads no
flags and no environment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.catalog.status import store_statuses
from trivy_mirror.engine.events import Progress
from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.oci.reference import Prefix
from trivy_mirror.registry.transport import Transport
from trivy_mirror.static import StaticDestination, check_keep
from trivy_mirror.store import Store
from trivy_mirror.store.retention import DEFAULT_KEEP, maintain
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.mirror import AssetSync
from trivy_mirror.vex import VexSource, sync_vex, vex_statuses
from trivy_mirror.vex.storage import StoreRoot

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


async def sync_destination(specs: Sequence[AssetSpec], sources: Sequence[Prefix], source_options: ConnectionOptions,
                           dest_options: ConnectionOptions, store: Path | None, destination: str | None, *,
                           dry_run: bool = False, lock_timeout: float = 600.0, vex: Sequence[VexSource] = (),
                           public_url: str | None = None, keep: int | None = None, plan: Plan = _every_tag,
                           progress: Progress | None = None, trust: TrustSettings = DEFAULT_TRUST) -> SyncReport:
    """Sync the catalog's ``specs`` and the ``vex`` repositories into one destination (the store at ``store``
    or its default, a registry prefix or ``static:DIR`` in ``destination``), holding its lock unless ``dry_run``,
    then keep it bounded (``keep`` versions). Raises UsageError for an impossible combination, Unreachable
    when no source answers (the failure is recorded per asset first).

    ``public_url`` applies to a static tree only; ``plan`` adds asset tags (the server's census).
    """
    async with AsyncExitStack() as stack:
        source_pool = await stack.enter_async_context(RegistryPool(source_options))
        dest_pool = await stack.enter_async_context(RegistryPool(dest_options))
        target = open_destination(store, destination, dest_pool)
        static = target if isinstance(target, StaticDestination) else None
        versions = (keep or DEFAULT_KEEP) if isinstance(target, StoreDestination) else check_keep(keep, target)
        if public_url is not None and static is None:
            raise UsageError("--public-url applies to --to static:DIR only (serve has its own --public-url)")
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
                                      trust=trust).run(specs) if specs else []
            if vex:
                assert isinstance(target, StoreDestination | StaticDestination)
                vex_store = target.tree.work if isinstance(target, StaticDestination) else target.store
                results += await run_vex_sync(vex_store, vex, source_options, dry_run=dry_run)
        except MirrorError:
            if maintained is not None:  # whatever failed, the store stays bounded, asset by asset
                await asyncio.to_thread(maintain, maintained, versions)
            raise
        if maintained is not None:
            await asyncio.to_thread(maintain, maintained, versions)
        if static is not None and not dry_run:
            await static.finish(versions, vex_url)
    return SyncReport(target.label, results)


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync did: ``ok`` false when any asset failed; ``message`` is the line the scheduler logs."""

    ok: bool
    message: str
    duration: float


async def run_vex_sync(store: StoreRoot, sources: Sequence[VexSource], options: ConnectionOptions, *,
                       dry_run: bool) -> list[TagResult]:
    """Sync ``sources`` into ``store`` (hold its lock unless ``dry_run``); one result per repository.

    TLS follows the sources' options: verified by default, ``--ca-file`` added, ``--insecure`` to skip
    verification and allow plain HTTP to any host. Registry credentials are not sent to VEX hosts.
    """
    transport = Transport(insecure=options.insecure, ca_file=options.ca_file, retry=options.retry,
                          timeouts=options.timeouts)
    try:
        return await sync_vex(store, sources, transport, dry_run=dry_run)
    finally:
        await transport.close()


@dataclass
class StoreSync:
    """One sync of the store, as the scheduler runs it: never raises, reports an outcome."""

    store: Store
    specs: Sequence[AssetSpec]
    sources: Sequence[Prefix]
    options: ConnectionOptions
    lock_timeout: float
    vex: Sequence[VexSource] = ()
    plan: Plan = field(default=_every_tag)
    trust: TrustSettings = DEFAULT_TRUST

    async def __call__(self) -> SyncOutcome:
        started = time.monotonic()
        failures: list[str] = []
        results: list[TagResult] = []
        try:
            async with RegistryPool(self.options) as pool, self.store.alock(self.lock_timeout, on_wait=log.warning):
                try:
                    specs = self.plan(self.specs, self.store.root)
                    if specs:
                        results = await AssetSync(self.sources, pool, StoreDestination(self.store),
                                                  trust=self.trust).run(specs)
                except MirrorError as err:  # no source answers: recorded per asset; the VEX sources may still
                    failures.append(str(err))
                results += await run_vex_sync(self.store, self.vex, self.options, dry_run=False)
        except MirrorError as err:
            return SyncOutcome(False, str(err), time.monotonic() - started)
        failures += [f"{r.reference}: {r.message}" for r in results if r.failed]
        changed = [r.reference for r in results if r.outcome == "updated"]
        message = "; ".join(failures) if failures else (
            f"updated {', '.join(changed)}" if changed else "everything up to date")
        return SyncOutcome(not failures, message, time.monotonic() - started)

    def statuses(self) -> list[AssetStatus]:
        return store_statuses(self.store, self.specs) + vex_statuses(self.store.root, [s.name for s in self.vex])

