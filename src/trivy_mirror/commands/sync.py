"""``trivy-mirror sync``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from rich.filesize import decimal
from rich.table import Table

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.oci.reference import Prefix
from trivy_mirror.orchestrate import run_vex_sync
from trivy_mirror.server.census import plan_requested_tags
from trivy_mirror.static import StaticDestination, check_keep
from trivy_mirror.store.retention import DEFAULT_KEEP, maintain
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.mirror import AssetSync
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import make_progress
from trivy_mirror.vex import VexSource

log = logging.getLogger("trivy_mirror.sync")


async def run_sync(specs: Sequence[AssetSpec], sources: Sequence[Prefix], source_options: ConnectionOptions,
                   dest_options: ConnectionOptions, store: Path | None, destination: str | None, *,
                   dry_run: bool, as_json: bool, lock_timeout: float, vex: Sequence[VexSource] = (),
                   public_url: str | None = None, keep: int | None = None) -> int:
    """Sync and report; returns the exit code (1 when any asset failed or was refused).

    ``public_url`` applies to a static tree (``--to static:DIR``) only; ``keep`` to the store and a static tree.
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
        progress = make_progress(not as_json)
        if progress is not None:
            stack.enter_context(progress)
        if isinstance(target, StoreDestination):
            specs = plan_requested_tags(specs, target.store.root)
        maintained = target.store if isinstance(target, StoreDestination) and not dry_run else None
        try:
            results = await AssetSync(sources, source_pool, target, dry_run=dry_run, progress=progress).run(specs) \
                if specs else []
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
    report(results, target.label, as_json)
    return 1 if any(r.failed for r in results) else 0


def report(results: Sequence[TagResult], destination: str, as_json: bool) -> None:
    """Failures are error lines on stderr in every mode; the summary is JSON on stdout or a table/log lines."""
    for result in results:
        if result.failed:
            console.error(f"{result.asset} {result.reference}: {result.message}")
    if as_json:
        document = {"destination": destination, "ok": not any(r.failed for r in results),
                    "results": [r.to_json() for r in results]}
        print(json.dumps(document, indent=2))
        return
    if not console.interactive():
        for r in results:
            if not r.failed:
                log.info("%s %s: %s%s", r.asset, r.reference, r.outcome, f" ({r.message})" if r.message else "")
        return
    table = Table(title=f"sync into {destination}", title_justify="left")
    for column in ("asset", "reference", "result", "digest", "source", "copied"):
        table.add_column(column)
    for r in results:
        copied = decimal(r.stats.bytes_copied) if r.stats.bytes_copied else "-"
        style = "red" if r.failed else "green" if r.outcome == "updated" else None
        table.add_row(r.asset, r.reference, r.outcome, r.digest[:19] if r.digest else "-", r.source or "-",
                      copied, style=style)
    console.stderr.print(table)
    for r in results:
        if r.unchecked:
            console.stderr.print(f"{r.reference}: not checked without the download: {', '.join(r.unchecked)}",
                                 markup=False, highlight=False)
