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
from trivy_mirror.server.census import ClientRecord, census_path, read_records
from trivy_mirror.static import StaticDestination
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.status import asset_statuses
from trivy_mirror.ui import console

STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}


async def run_status(specs: Sequence[AssetSpec], options: ConnectionOptions, store: Path | None,
                     destination: str | None, *, as_json: bool, asset_names: Sequence[str] = ()) -> bool:
    """Print the status; True when every asset is present and fresh."""
    async with RegistryPool(options) as pool:
        target = open_destination(store, destination, pool)
        rows = await asset_statuses(target, specs) if specs else []
    clients = None
    if isinstance(target, StoreDestination):
        rows += vex_status_rows(target.store, asset_names)
        clients = read_records(census_path(target.store.root))
    elif isinstance(target, StaticDestination):
        rows += vex_status_rows(target.tree.work, asset_names)
    if as_json:
        document: dict[str, object] = {"assets": [row.to_json() for row in rows]}
        if clients is not None:
            document["clients"] = [record.to_json() for record in clients]
        print(json.dumps(document, indent=2))
    else:
        print_table(rows)
        if clients:
            print_clients(clients)
    return all(row.ready for row in rows)


def print_table(rows: Sequence[AssetStatus]) -> None:
    """The human view; sources and full digests are in ``--json``."""
    table = Table()
    for column in ("asset", "reference", "state", "digest", "size", "updated", "next update", "last sync"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        last = "-"
        if row.last_attempt:
            result = "ok" if row.last_result == "ok" else "failed"
            last = f"{short_time(row.last_attempt)} {result}"
        table.add_row(row.asset, row.reference, f"[{STATE_STYLE[row.state]}]{row.state}[/]",
                      row.digest[:19] if row.digest else "-", decimal(row.size) if row.size is not None else "-",
                      short_time(row.updated_at), short_time(row.next_update), last)
    console.stdout.print(table)
    for row in rows:
        if row.last_result and row.last_result != "ok":
            console.stdout.print(f"{row.reference}: last sync {row.last_result}")


def print_clients(clients: Sequence[ClientRecord]) -> None:
    """The fleet census ``serve`` keeps: per Trivy version what it pulled and what the mirror could not answer."""
    table = Table(title="clients (what serve saw, by Trivy version)")
    for column in ("client", "last seen", "requests", "pulled", "not answered"):
        table.add_column(column, no_wrap=column != "pulled" and column != "not answered")
    for record in clients:
        problems = [f"[red]{p.outcome}[/] {p.resource} x{p.count}" for p in record.problems.values()]
        table.add_row(record.client, short_time(record.last_seen), str(record.requests),
                      ", ".join(sorted(record.pulled)) or "-", "\n".join(problems) or "-")
    console.stdout.print(table)


def short_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if moment else "-"
