"""``trivy-mirror sync``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from rich.filesize import decimal
from rich.table import Table

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.errors import UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions
from trivy_mirror.mirror.parent import Parent
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import sync_destination, sync_destinations
from trivy_mirror.server.census import plan_requested_tags
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import make_progress
from trivy_mirror.vex import VexSource

log = logging.getLogger("trivy_mirror.sync")


async def run_sync(specs: Sequence[AssetSpec], sources: Sequence[Place], source_options: ConnectionOptions,
                   dest_options: ConnectionOptions, store: Path | None, destinations: Sequence[str], *,
                   dry_run: bool, as_json: bool, lock_timeout: float, vex: Sequence[VexSource] = (),
                   public_url: str | None = None, keep: int | None = None, referrers: bool = True,
                   vex_parent: Parent | None = None, trust: TrustSettings = DEFAULT_TRUST) -> int:
    """Sync and report; returns the exit code (1 when any asset failed or was refused).

    ``public_url`` applies to a static tree (``--to static:DIR``) only; ``keep`` to the store and a static tree.
    Several ``destinations`` are a fan-out: one report per destination (``--json``: ``{"ok", "destinations"}``).
    """
    progress = make_progress(not as_json)
    with progress if progress is not None else contextlib.nullcontext():
        if len(destinations) > 1:
            if store is not None:
                raise UsageError("--store and --to cannot be used together")
            reports = await sync_destinations(destinations, specs, sources, source_options, dest_options,
                                              dry_run=dry_run, lock_timeout=lock_timeout, vex=vex,
                                              public_url=public_url, keep=keep, plan=plan_requested_tags,
                                              progress=progress, vex_parent=vex_parent, referrers=referrers,
                                              trust=trust)
        else:
            reports = [await sync_destination(specs, sources, source_options, dest_options, store,
                                              destinations[0] if destinations else None, dry_run=dry_run,
                                              lock_timeout=lock_timeout, vex=vex, public_url=public_url, keep=keep,
                                              plan=plan_requested_tags, progress=progress, vex_parent=vex_parent,
                                              referrers=referrers, trust=trust)]
    if len(reports) == 1:
        report(reports[0].results, reports[0].destination, as_json)
    else:
        for one in reports:
            report(one.results, one.destination, as_json, fan_out=True)
        if as_json:
            print(json.dumps({"ok": all(r.ok for r in reports), "destinations": [r.to_json() for r in reports]},
                             indent=2))
    return 0 if all(r.ok for r in reports) else 1


def report(results: Sequence[TagResult], destination: str, as_json: bool, *, fan_out: bool = False) -> None:
    """Failures are error lines on stderr in every mode (naming the destination in a fan-out); the summary is
    JSON on stdout (a fan-out's caller prints one document for all) or a table/log lines."""
    where = f"{destination}: " if fan_out else ""
    for result in results:
        if result.failed:
            console.error(f"{where}{result.asset} {result.reference}: {result.message}")
    if as_json and fan_out:
        return
    if as_json:
        document = {"destination": destination, "ok": not any(r.failed for r in results),
                    "results": [r.to_json() for r in results]}
        print(json.dumps(document, indent=2))
        return
    if not console.interactive():
        for r in results:
            if not r.failed:
                log.info("%s%s %s: %s%s", where, r.asset, r.reference, r.outcome,
                         f" ({r.message})" if r.message else "")
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
        if r.outcome == "held" and not r.failed:  # a failed hold is an error line already
            console.stderr.print(f"{r.reference}: {r.message}", markup=False, highlight=False)
