"""The public API behind ``trivy_mirror``'s flat namespace: whole operations with options passed in.

Each function takes the store's lock itself where it writes, includes the VEX repositories the asset names or
``vex`` ask for, and raises only the errors of :mod:`trivy_mirror.errors`. Nothing is read from flags or the
environment: credentials, TLS, retries and timeouts come in a :class:`ClientOptions`. Blocking functions run
their own event loop; ``async_*`` ones run in the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from trivy_mirror.catalog import assets as catalog
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.status import asset_statuses
from trivy_mirror.engine.events import Progress
from trivy_mirror.mirror.copy import CopyResult, copy_artifact
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import SyncReport, select_vex_sources, sync_destination
from trivy_mirror.vex import vex_statuses

ClientOptions = ConnectionOptions
"""How to reach the registries of one side: credentials, ``insecure``, a CA file, the retry policy, timeouts."""


async def async_sync(*, store: str | Path | None = None, to: str | None = None, sources: Sequence[str] = (),
                     assets: Sequence[str] = (), vex: Sequence[str] = (), source_options: ClientOptions | None = None,
                     dest_options: ClientOptions | None = None, dry_run: bool = False,
                     lock_timeout: float = 600.0, keep: int | None = None) -> SyncReport:
    """:func:`sync` in the running event loop."""
    specs = _select(assets)
    prefixes = [Place.parse_registry(source) for source in sources] or list(catalog.DEFAULT_SOURCES)
    return await sync_destination(specs, prefixes, source_options or ClientOptions(), dest_options or ClientOptions(),
                                  Path(store) if store is not None else None, to, dry_run=dry_run,
                                  lock_timeout=lock_timeout, vex=select_vex_sources(vex, assets), keep=keep)


def sync(*, store: str | Path | None = None, to: str | None = None, sources: Sequence[str] = (),
         assets: Sequence[str] = (), vex: Sequence[str] = (), source_options: ClientOptions | None = None,
         dest_options: ClientOptions | None = None, dry_run: bool = False, lock_timeout: float = 600.0,
         keep: int | None = None) -> SyncReport:
    """Mirror Trivy's assets into the store (``store``, or the default) or ``to`` a registry prefix or
    ``static:DIR``, from ``sources`` (registry prefixes, tried in order; Trivy's own by default).

    ``assets`` names the assets (all OCI assets when empty; ``vex`` adds VEX Hub), ``vex`` the VEX repositories
    as ``[NAME=]URL``. The report holds one result per asset tag; a failed asset does not raise (``report.ok``
    is false), a usage error or no source answering at all does.
    """
    return asyncio.run(async_sync(store=store, to=to, sources=sources, assets=assets, vex=vex,
                                  source_options=source_options, dest_options=dest_options, dry_run=dry_run,
                                  lock_timeout=lock_timeout, keep=keep))


async def async_status(*, store: str | Path | None = None, to: str | None = None, assets: Sequence[str] = (),
                       options: ClientOptions | None = None) -> list[AssetStatus]:
    """:func:`status` in the running event loop."""
    specs = _select(assets)
    async with RegistryPool(options or ClientOptions()) as pool:
        target = open_destination(Path(store) if store is not None else None, to, pool)
        rows = await asset_statuses(target, specs) if specs else []
    if isinstance(target, StoreDestination) and (not assets or "vex" in assets):
        rows += vex_statuses(target.store.root, [])
    return rows


def status(*, store: str | Path | None = None, to: str | None = None, assets: Sequence[str] = (),
           options: ClientOptions | None = None) -> list[AssetStatus]:
    """What the destination serves for each asset (and, in a store, each VEX repository), and its state:
    ``fresh``, ``stale`` or ``missing`` (the rows of ``trivy-mirror status --json``)."""
    return asyncio.run(async_status(store=store, to=to, assets=assets, options=options))


def _select(names: Sequence[str]) -> list[catalog.AssetSpec]:
    """The OCI assets named (all when none is; none when only ``vex`` is)."""
    return catalog.select(list(names)) if not names or set(names) - {"vex"} else []


async def async_copy(src: str, dst: str, *, source_options: ClientOptions | None = None,
                     dest_options: ClientOptions | None = None, referrers: bool = False,
                     progress: Progress | None = None) -> CopyResult:
    """:func:`copy` in the running event loop (``progress`` sees the transfers of blobs of 1 MiB and more)."""
    return await copy_artifact(src, dst, source_options or ClientOptions(), dest_options or ClientOptions(),
                               referrers=referrers, progress=progress)


def copy(src: str, dst: str, *, source_options: ClientOptions | None = None, dest_options: ClientOptions | None = None,
         referrers: bool = False) -> CopyResult:
    """Copy one artifact, byte for byte, from ``src`` to ``dst``: registry references (``HOST/REPO:TAG``,
    ``HOST/REPO@sha256:...``, ``https://`` or ``http://`` in front to fix the transport) or ``oci-layout:DIR:TAG``.

    With ``referrers`` the manifests referring to it go too (signatures, attestations). The result says what was
    copied: the digest, ``copied`` or ``unchanged`` and the counts. A failure raises :class:`~trivy_mirror.errors.
    CopyError` naming the side that failed (or a :class:`~trivy_mirror.errors.UsageError` for a bad place).
    """
    return asyncio.run(async_copy(src, dst, source_options=source_options, dest_options=dest_options,
                                  referrers=referrers))
