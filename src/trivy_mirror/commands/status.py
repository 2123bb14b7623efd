"""``trivy-mirror status``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from trivy_mirror.assets import AssetSpec
from trivy_mirror.commands.vex_sync import vex_status_rows
from trivy_mirror.freshness import AssetStatus
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.status import asset_statuses
from trivy_mirror.timefmt import iso
from trivy_mirror.ui import console

STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}


async def run_status(specs: Sequence[AssetSpec], options: ConnectionOptions, store: Path | None,
                     destination: str | None, *, as_json: bool, asset_names: Sequence[str] = ()) -> bool:
    """Print the status; True when every asset is present and fresh."""
    async with RegistryPool(options) as pool:
        target = open_destination(store, destination, pool)
        rows = await asset_statuses(target, specs) if specs else []
    if isinstance(target, StoreDestination):
        rows += vex_status_rows(target.store, asset_names)
    if as_json:
        print(json.dumps({"assets": [row.to_json() for row in rows]}, indent=2))
    else:
        print_table(rows)
    return all(row.ready for row in rows)


def print_table(rows: Sequence[AssetStatus]) -> None:
    table = Table()
    for column in ("asset", "reference", "state", "digest", "size", "updated at", "next update", "source",
                   "last sync"):
        table.add_column(column)
    for row in rows:
        last = f"{iso(row.last_attempt)} {row.last_result}" if row.last_attempt else "-"
        table.add_row(row.asset, row.reference, f"[{STATE_STYLE[row.state]}]{row.state}[/]",
                      row.digest[:19] if row.digest else "-",
                      f"{row.size / 1e6:.1f} MB" if row.size is not None else "-",
                      iso(row.updated_at) or "-", iso(row.next_update) or "-", row.source or "-", last)
    console.stdout.print(table)
