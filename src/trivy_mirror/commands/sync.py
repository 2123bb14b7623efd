"""``trivy-mirror sync``: the facade's :func:`~trivy_mirror.facade.async_sync`, with progress and a report."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.filesize import decimal
from rich.table import Table

from trivy_mirror.facade import ClientOptions, FanOutReport, async_sync
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import progress_display

if TYPE_CHECKING:
    from trivy_mirror import Place, TagResult, TrustSettings

log = logging.getLogger("trivy_mirror.sync")


async def run_sync(store: Path | None, destinations: Sequence[str], *, sources: Sequence[str | Place],
                   assets: Sequence[str], vex: Sequence[str], source_options: ClientOptions,
                   dest_options: ClientOptions, dry_run: bool, as_json: bool, lock_timeout: float,
                   public_url: str | None, keep: int | None, referrers: bool, parent: str | None,
                   trust: TrustSettings) -> int:
    """Sync and report; returns the exit code (1 when any asset failed or was refused).

    Several ``destinations`` are a fan-out: one report per destination (``--json``: ``{"ok", "destinations"}``).
    """
    to = tuple(destinations) if len(destinations) > 1 else next(iter(destinations), None)
    with progress_display(not as_json) as progress:
        outcome = await async_sync(store=store, to=to, sources=sources, assets=assets, vex=vex,
                                   source_options=source_options, dest_options=dest_options, dry_run=dry_run,
                                   lock_timeout=lock_timeout, public_url=public_url, keep=keep, referrers=referrers,
                                   parent=parent, trust=trust, progress=progress)
    if isinstance(outcome, FanOutReport):
        for one in outcome.reports:
            report(one.results, one.destination, as_json, fan_out=True)
        if as_json:
            print(json.dumps(outcome.to_json(), indent=2))
    else:
        report(outcome.results, outcome.destination, as_json)
    return 0 if outcome.ok else 1


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
