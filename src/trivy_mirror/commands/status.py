"""``trivy-mirror status``: the facade's :func:`~trivy_mirror.facade.async_status`, printed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trivy_mirror.facade import ClientOptions, async_status
from trivy_mirror.ui import console
from trivy_mirror.ui.status import print_clients, print_table

if TYPE_CHECKING:
    from trivy_mirror import AssetStatus

EXIT_OK, EXIT_STALE, EXIT_LAST_SYNC_FAILED = 0, 3, 4
"""``status`` exit codes: 3 wins over 4 (clients are affected now; a failed sync only will be)."""


def exit_code(rows: Sequence[AssetStatus], damaged: bool = False) -> int:
    """3 when an asset is missing or stale, or ``damaged`` (serve's audit found a problem no repair removed);
    else 4 when the last attempt of an asset failed; else 0."""
    if damaged or not all(row.ready for row in rows):
        return EXIT_STALE
    return EXIT_LAST_SYNC_FAILED if any(row.last_failed for row in rows) else EXIT_OK


async def run_status(options: ClientOptions, store: Path | None, destination: str | None, *, as_json: bool,
                     assets: Sequence[str] = ()) -> int:
    """Print the status; the exit code of :func:`exit_code`."""
    report = await async_status(store=store, to=destination, assets=assets, options=options)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_table(report.assets)
        for problem in report.integrity.outstanding if report.integrity is not None else []:
            console.stdout.print(f"damaged: {problem.line()} (found by serve's audit)", markup=False,
                                 highlight=False)
        if report.clients:
            print_clients(report.clients)
    return exit_code(report.assets, damaged=report.damaged)
