"""The tables of ``trivy-mirror status``: the assets (as wide as the terminal allows) and serve's client census."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from trivy_mirror.timefmt import short_time
from trivy_mirror.ui import console

if TYPE_CHECKING:
    from trivy_mirror import AssetStatus, ClientRecord
    from trivy_mirror.server.census import Problem

STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}
UNBOUNDED = 10_000
"""A width no table reaches: to measure the width a table wants, not the one it is given."""


def print_table(rows: Sequence[AssetStatus], out: Console | None = None) -> None:
    """The human view, as wide as the terminal allows (80 columns hold it): the digest, then the time of the last
    sync, are left out when they do not fit. Sources and full digests are in ``--json``."""
    out = out or console.stdout
    table = _table(rows, digest=True, last_time=True)
    for digest, last_time in ((False, True), (False, False)):
        if Measurement.get(out, out.options.update_width(UNBOUNDED), table).maximum <= out.width:
            break
        table = _table(rows, digest=digest, last_time=last_time)
    out.print(table)
    for row in rows:
        if row.error:
            out.print(row.reason, markup=False, highlight=False)
        if row.last_failed:
            out.print(row.failure, markup=False, highlight=False)
        for line in trust_lines(row):
            out.print(line, markup=False, highlight=False)


def trust_lines(row: AssetStatus) -> list[str]:
    """What an operator decided for this asset (a pin) and what is held, one line each."""
    lines = []
    if row.pinned:
        why = f" ({row.pinned['reason']})" if row.pinned.get("reason") else ""
        lines.append(f"{row.display_name}: pinned to {row.pinned['digest']} by {row.pinned.get('by') or '?'} at "
                     f"{row.pinned.get('at')}{why}")
    if row.candidate:
        lines.append(f"{row.display_name}: held ({row.held}) candidate {row.candidate['digest']} from "
                     f"{row.candidate.get('source') or '?'}, first seen {row.candidate.get('first_seen')}")
    return lines


def _table(rows: Sequence[AssetStatus], *, digest: bool, last_time: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False,
                  caption="times in UTC; full digests, sources and messages: status --json", caption_justify="left")
    columns = ["asset", "state", *(["digest"] if digest else []), "size", "updated", "next update", "last sync"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        last = row.last_result or "-"
        if last_time and row.last_attempt:
            last = f"{short_time(row.last_attempt)} {last}"
        state: str = "damaged" if row.error else row.state
        if row.held or row.pinned:
            state += f" ({row.held or 'pinned'})"
        cells = [row.display_name, f"[{STATE_STYLE[row.state]}]{state}[/]"]
        if digest:
            cells.append(row.digest.partition(":")[2][:12] if row.digest else "-")
        cells += [decimal(row.size) if row.size is not None else "-", short_time(row.updated_at),
                  short_time(row.next_update), last]
        table.add_row(*cells)
    return table


def print_clients(clients: Sequence[ClientRecord], out: Console | None = None) -> None:
    """The fleet census ``serve`` keeps: per Trivy version what it pulled and what the mirror could not answer."""
    table = Table(title="clients (what serve saw, by Trivy version)")
    for column in ("client", "last seen", "requests", "pulled", "not answered"):
        table.add_column(column, no_wrap=column != "pulled" and column != "not answered")
    for record in clients:
        problems = [_problem(p) for p in record.problems.values()]
        table.add_row(record.client, short_time(record.last_seen), str(record.requests),
                      ", ".join(sorted(record.pulled)) or "-", "\n".join(problems) or "-")
    (out or console.stdout).print(table)


def _problem(problem: Problem) -> str:
    """One thing the mirror could not answer a client, with a held push's reason (markup-safe)."""
    text = f"[red]{problem.outcome}[/] {escape(problem.resource)} x{problem.count}"
    return f"{text}: {escape(problem.detail)}" if problem.detail else text
