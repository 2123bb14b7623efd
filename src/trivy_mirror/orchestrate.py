"""Whole syncs as the CLI and the server's scheduler run them: the OCI assets and the VEX repositories of one
destination, under the store's lock, reported as one outcome.

This is library code below the server (the scheduler calls :class:`StoreSync`) and below the CLI; it reads no
flags and no environment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.catalog.status import store_statuses
from trivy_mirror.errors import MirrorError
from trivy_mirror.oci.reference import Prefix
from trivy_mirror.registry.transport import Transport
from trivy_mirror.store import Store
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination
from trivy_mirror.sync.mirror import AssetSync
from trivy_mirror.vex import VexSource, sync_vex, vex_statuses
from trivy_mirror.vex.storage import StoreRoot

log = logging.getLogger("trivy_mirror.serve")

Plan = Callable[[Sequence[AssetSpec]], Sequence[AssetSpec]]
"""Which asset tags one sync covers (the server adds the tags its clients asked for)."""


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


def _every_tag(specs: Sequence[AssetSpec]) -> Sequence[AssetSpec]:
    return specs


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

    async def __call__(self) -> SyncOutcome:
        started = time.monotonic()
        failures: list[str] = []
        results: list[TagResult] = []
        try:
            async with RegistryPool(self.options) as pool, self.store.alock(self.lock_timeout, on_wait=log.warning):
                try:
                    specs = self.plan(self.specs)
                    if specs:
                        results = await AssetSync(self.sources, pool, StoreDestination(self.store)).run(specs)
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

