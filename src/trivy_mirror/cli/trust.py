"""``pin``, ``unpin`` and ``rollback``: an operator decides what the mirror serves (the trust controls)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trivy_mirror.cli import options
from trivy_mirror.cli.parsing import connection_options, parse_prefixes, run

by_option = click.option("--by", metavar="NAME", help="Who decided, recorded with the pin [default: the user "
                                                        "name from the environment ($USER, $LOGNAME)].")
reason_option = click.option("--reason", metavar="TEXT", default="", help="Why, recorded with the pin and shown "
                                                                          "by status.")
destination = options.destination("Act on this registry prefix instead of the store (the tag is moved there; the "
                                  "digest must exist in it).")
decision = options.stack(destination, options.transport(), by_option, reason_option, options.json_output(),
                         options.lock_timeout())
"""The options of a decision recorded with who and why (``pin``, ``rollback``)."""


@click.command()
@click.argument("asset")
@click.argument("digest")
@decision
def pin(asset: str, digest: str, store: Path | None, destination: str | None, dest_creds: str | None,
        insecure: bool, ca_file: Path | None, by: str | None, reason: str, as_json: bool,
        lock_timeout: float) -> None:
    """Serve DIGEST under ASSET's tag and freeze it there: syncs keep looking at the sources and report what
    they would publish (status: held, pinned), but the tag stays until unpin.

    The digest must be in the destination already (a store keeps --keep versions of each tag). ASSET is db,
    java-db or checks, optionally with a tag (checks:1).

    \b
    Examples:
      trivy-mirror pin db sha256:4a1f... --reason "INC-1234: bad upstream build"
      trivy-mirror pin java-db sha256:9c0e... --to registry.internal:5000/trivy
    """
    from trivy_mirror.commands.trust import run_pin

    sys.exit(run(run_pin("pin", asset, connection_options(dest_creds, "dest", insecure, ca_file), store,
                         destination, digest=digest, by=by, reason=reason, as_json=as_json,
                         lock_timeout=lock_timeout)))


@click.command()
@click.argument("asset")
@destination
@options.transport()
@options.json_output()
@options.lock_timeout()
def unpin(asset: str, store: Path | None, destination: str | None, dest_creds: str | None, insecure: bool,
          ca_file: Path | None, as_json: bool, lock_timeout: float) -> None:
    """Remove ASSET's pin: the next sync publishes what the sources offer again.

    ASSET is db, java-db or checks, optionally with a tag (checks:1).
    """
    from trivy_mirror.commands.trust import run_pin

    sys.exit(run(run_pin("unpin", asset, connection_options(dest_creds, "dest", insecure, ca_file), store,
                         destination, as_json=as_json, lock_timeout=lock_timeout)))


@click.command()
@click.argument("asset")
@decision
def rollback(asset: str, store: Path | None, destination: str | None, dest_creds: str | None, insecure: bool,
             ca_file: Path | None, by: str | None, reason: str, as_json: bool, lock_timeout: float) -> None:
    """Serve the previous kept version of ASSET and pin it (unpin to let syncs publish again).

    The previous version is the newest older one the store still keeps (--keep) or, for a registry (--to), the
    newest digest published earlier that the registry still has. ASSET is db, java-db or checks, optionally
    with a tag (checks:1).
    """
    from trivy_mirror.commands.trust import run_pin

    sys.exit(run(run_pin("rollback", asset, connection_options(dest_creds, "dest", insecure, ca_file), store,
                         destination, by=by, reason=reason, as_json=as_json, lock_timeout=lock_timeout)))


@click.command()
@click.argument("asset")
@click.argument("digest", required=False)
@options.destination("Approve on this registry prefix instead of the store.")
@options.sources
@options.transport()
@options.json_output()
@options.lock_timeout()
def approve(asset: str, digest: str | None, store: Path | None, destination: str | None, dest_creds: str | None,
            sources: tuple[str, ...], src_creds: str | None, insecure: bool, ca_file: Path | None, as_json: bool,
            lock_timeout: float) -> None:
    """Publish ASSET's candidate held by --hold, --max-shrink or --check-archive now: record the approval, then
    sync ASSET (its bytes are fetched now, by digest-checked copy; the policy's refusals still apply, --quorum
    does not; the sanity checks are waived for a candidate they held). A candidate an import or a push brought
    is published by the next import or push of it.

    DIGEST defaults to the held candidate status shows; a digest the sources do not serve stays approved until
    they do or another version is published. Exit 1 when the sync did not publish it.
    """
    from trivy_mirror.commands.trust import run_approve

    sys.exit(run(run_approve(asset, digest, parse_prefixes(sources),
                             connection_options(src_creds, "src", insecure, ca_file),
                             connection_options(dest_creds, "dest", insecure, ca_file), store, destination,
                             as_json=as_json, lock_timeout=lock_timeout)))


COMMANDS = (pin, unpin, rollback, approve)
