"""A whole import as the facade runs it: the destination opened (the store, a registry prefix or a static tree)
and locked, a staging directory next to it, the bundle read, verified and published, the destination kept
bounded; reading the bundle reports on the engine's event stream.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from trivy_mirror.bundle.importer import BundleImport, ImportReport
from trivy_mirror.bundle.members import stream_name
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.bundle.vex_import import VexImport
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.engine.events import Listener
from trivy_mirror.mirror.endpoints import (
    ConnectionOptions,
    RegistryPool,
    StoreDestination,
    open_destination,
    retention,
)
from trivy_mirror.signing import PublicKey
from trivy_mirror.store import Store, maintain

log = logging.getLogger("trivy_mirror.import")

STATIC_VEX_SKIP = "a static tree publishes VEX repositories only with --public-url (the URL it is served at)"


async def import_bundle(bundle: BinaryIO, store: Path | None, destination: str | None, options: ConnectionOptions,
                        *, allow_downgrade: bool = False, expected_sha256: str | None = None,
                        lock_timeout: float = 600.0, public_url: str | None = None, keep: int | None = None,
                        verify_key: PublicKey | None = None, trust: TrustSettings = DEFAULT_TRUST,
                        events: Listener | None = None) -> ImportReport:
    """Import ``bundle`` into the store at ``store`` (or the default), or ``destination`` (a registry prefix or
    ``static:DIR``), holding its lock. ``verify_key``: refuse the bundle unless the holder of this key signed
    exactly its contents; ``expected_sha256`` (hex): refuse it unless it has this digest; ``trust``: the sanity
    checks the OCI assets meet (``quorum`` and ``holds`` do not apply to a bundle)."""
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(RegistryPool(options))
        target = open_destination(store, destination, pool)
        static, versions = retention(target, keep, public_url)
        vex_store: Store | None = None
        vex_url: str | None = None
        if isinstance(target, StoreDestination):
            await stack.enter_async_context(target.store.alock(lock_timeout, on_wait=log.warning, purpose="import"))
            staging = Staging.in_store(target.store)
            vex_store = target.store
        elif static is not None:
            vex_url = static.vex_public_url(public_url, required=False)
            await stack.enter_async_context(static.tree.alock(lock_timeout, on_wait=log.warning, purpose="import"))
            staging = Staging.in_store(static.tree.work)
            vex_store = static.tree.work if vex_url is not None else None
        else:
            staging = Staging.temporary()
        stack.callback(staging.remove)
        skip = STATIC_VEX_SKIP if static is not None else None
        where = stream_name(bundle, "stream")
        name = f"bundle from {where}" if where in ("stdin", "stream") else f"bundle {where}"
        importer = BundleImport(staging, [OciImport(staging.root, target, trust, events),
                                          VexImport(staging.root, vex_store, skip_reason=skip)], events, name)
        report = await importer.run(bundle, allow_downgrade=allow_downgrade, expected_sha256=expected_sha256,
                                    verify_key=verify_key)
        if isinstance(target, StoreDestination):
            await asyncio.to_thread(maintain, target.store, versions)
        if static is not None:
            await static.finish(versions, vex_url)
    return replace(report, destination=target.label)
