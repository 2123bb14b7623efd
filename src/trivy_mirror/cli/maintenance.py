"""``verify``: checking and repairing a store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trivy_mirror.cli import options


@click.command("verify")
@options.store()
@click.option("--repair", is_flag=True,
              help="Remove what is corrupt (blobs, tags whose manifest is incomplete, damaged VEX archives) so "
                   "the next sync restores it. Holds the store lock.")
@options.json_output("Print the report as JSON on stdout.")
@options.lock_timeout("With --repair, seconds to wait for a sync holding the store.")
def verify(store: Path | None, repair: bool, as_json: bool, lock_timeout: float) -> None:
    """Check the store: re-hash every blob, check that every tag resolves to a complete manifest and that every
    VEX archive matches its digest.

    Exit 0 when the store is sound (or --repair fixed everything), 1 when a problem remains. Each problem is
    one line on stderr. Without --repair nothing is changed and no lock is taken, so it can run beside serve.

    \b
    Examples:
      trivy-mirror verify --store /srv/trivy-mirror
      trivy-mirror verify --repair && trivy-mirror sync
    """
    from trivy_mirror.commands.verify import run_verify

    sys.exit(run_verify(store, repair=repair, as_json=as_json, lock_timeout=lock_timeout))


COMMANDS = (verify,)
