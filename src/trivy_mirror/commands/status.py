"""``trivy-mirror status``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.filesize import decimal
from rich.table import Table

from trivy_mirror.assets import AssetSpec
from trivy_mirror.commands.vex_sync import vex_status_rows
from trivy_mirror.freshness import AssetStatus
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.status import asset_statuses
from trivy_mirror.ui import console

STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}
EXIT_OK, EXIT_STALE, EXIT_LAST_SYNC_FAILED = 0, 3, 4
"""``status`` exit codes: 3 wins over 4 (clients are affected now; a failed sync only will be)."""


def exit_code(rows: Sequence[AssetStatus]) -> int:
    """3 when an asset is missing or stale; else 4 when the last attempt of an asset failed; else 0."""
    if not all(row.ready for row in rows):
        return EXIT_STALE
    return EXIT_LAST_SYNC_FAILED if any(row.last_failed for row in rows) else EXIT_OK


async def run_status(specs: Sequence[AssetSpec], options: ConnectionOptions, store: Path | None,
                     destination: str | None, *, as_json: bool, asset_names: Sequence[str] = ()) -> int:
    """Print the status; the exit code of :func:`exit_code`."""
    async with RegistryPool(options) as pool:
        target = open_destination(store, destination, pool)
        rows = await asset_statuses(target, specs) if specs else []
    if isinstance(target, StoreDestination):
        rows += vex_status_rows(target.store, asset_names)
    if as_json:
        print(json.dumps({"assets": [row.to_json() for row in rows]}, indent=2))
    else:
        print_table(rows)
    return exit_code(rows)


def print_table(rows: Sequence[AssetStatus]) -> None:
    """The human view; sources and full digests are in ``--json``."""
    table = Table()
    for column in ("asset", "reference", "state", "digest", "size", "updated", "next update", "last sync"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        last = "-"
        if row.last_attempt:
            last = f"{short_time(row.last_attempt)} {row.last_result or '?'}"
        state = "damaged" if row.error else row.state
        table.add_row(row.asset, row.reference, f"[{STATE_STYLE[row.state]}]{state}[/]",
                      row.digest[:19] if row.digest else "-", decimal(row.size) if row.size is not None else "-",
                      short_time(row.updated_at), short_time(row.next_update), last)
    console.stdout.print(table)
    for row in rows:
        if row.error:
            console.stdout.print(row.reason, markup=False, highlight=False)
        if row.last_failed:
            console.stdout.print(row.failure, markup=False, highlight=False)


def short_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if moment else "-"
