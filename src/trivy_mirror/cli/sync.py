"""``sync``, ``status`` and ``copy``: filling a store or registry and looking at what it holds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trivy_mirror.cli import options
from trivy_mirror.cli.parsing import (
    connection_options,
    parse_assets,
    parse_prefixes,
    run,
    select_assets,
    static_settings,
    trust_settings,
)


@click.command()
@options.destination("Push into this registry instead of the store: assets land at REGISTRY/PREFIX/aquasec/trivy-db:2 "
                     "and so on. static:DIR writes a tree any web server, object store or CDN serves as a pull-only "
                     "registry (deploy/static).")
@options.sources
@options.transport()
@options.vex_sources
@options.assets(f"Comma-separated assets to sync: {options.asset_list('vex')}. "
                f"[default: the OCI assets, plus vex with --vex-from]")
@click.option("--dry-run", is_flag=True, help="Resolve and check everything, copy nothing.")
@options.json_output()
@options.lock_timeout()
@options.static_tree("write", "With --to static:DIR: the URL the tree is served at; VEX manifests name their "
                              "archive under it (needed once when VEX is mirrored, then remembered in the tree).")
@options.trust
@click.pass_context
def sync(ctx: click.Context, store: Path | None, destination: str | None, dest_creds: str | None,
         sources: tuple[str, ...], src_creds: str | None, insecure: bool, ca_file: Path | None,
         vex_sources: tuple[str, ...], asset_names: str | None, dry_run: bool, as_json: bool, lock_timeout: float,
         public_url: str | None, keep: int | None, holds: tuple[str, ...], quorum: int,
         max_shrink: float, check_archive: bool, provenance: bool, sign_key: Path | None) -> None:
    """Copy Trivy's assets from the sources into the store or a registry, byte for byte.

    Each asset is taken from the first source that has a usable version. A candidate that would break Trivy
    (wrong layer type, missing title, several layers, wrong schema) or is older than what the destination
    serves is refused and the current version kept. Exit 1 when any asset failed.

    \b
    Examples:
      trivy-mirror sync
      trivy-mirror sync --to registry.internal:5000/trivy --dest-creds robot:$TOKEN
      trivy-mirror sync --from 10.0.0.5:5000/aquasec --assets db,java-db
      trivy-mirror sync --assets vex                     # VEX Hub, served at /vex/vexhub
      trivy-mirror sync --vex-from internal=https://vex.example.com --assets vex
      trivy-mirror sync --to static:/srv/trivy --public-url https://trivy.internal --assets db,java-db,checks,vex
    """
    from trivy_mirror.commands.sync import run_sync
    from trivy_mirror.commands.vex_sync import vex_sources as select_vex

    names = parse_assets(asset_names)
    prefixes = parse_prefixes(sources)
    trust = trust_settings(holds, quorum, len(prefixes), max_shrink, check_archive, provenance, sign_key)
    public_url, keep = static_settings(ctx, destination, public_url, keep)
    code = run(run_sync(
        select_assets(asset_names), prefixes, connection_options(src_creds, "src", insecure, ca_file),
        connection_options(dest_creds, "dest", insecure, ca_file), store, destination,
        dry_run=dry_run, as_json=as_json, lock_timeout=lock_timeout, vex=select_vex(vex_sources, names),
        public_url=public_url, keep=keep, trust=trust,
    ))
    sys.exit(code)


@click.command()
@options.destination("Report on this registry instead of the store: the assets at REGISTRY/PREFIX/aquasec/trivy-db:2 "
                     "and so on; or on the static tree static:DIR.")
@options.transport()
@options.assets(f"Comma-separated assets to report: {options.asset_list('vex')}. [default: the OCI assets, plus the "
                f"VEX repositories the store holds]")
@options.json_output("Print JSON on stdout.")
def status(store: Path | None, destination: str | None, dest_creds: str | None, insecure: bool,
           ca_file: Path | None, asset_names: str | None, as_json: bool) -> None:
    """Show what the mirror holds: per asset the digest, size, UpdatedAt, NextUpdate and state.

    Exit 3 when an asset is missing or stale (its NextUpdate has passed); else exit 4 when the last sync or import
    of an asset failed or was refused (what is served is still fresh), so monitoring can alert on both.
    """
    from trivy_mirror.commands.status import run_status

    names = parse_assets(asset_names)
    sys.exit(run(run_status(select_assets(asset_names), connection_options(dest_creds, "dest", insecure, ca_file),
                            store, destination, as_json=as_json, asset_names=names)))


@click.command()
@click.argument("source")
@click.argument("target")
@options.credentials("src", "SOURCE")
@options.credentials("dest", "TARGET")
@options.transport()
@options.json_output()
def copy(source: str, target: str, src_creds: str | None, dest_creds: str | None, insecure: bool,
         ca_file: Path | None, as_json: bool) -> None:
    """Copy one artifact, byte for byte, between registries and OCI layouts.

    SOURCE and TARGET are registry references (HOST/REPO:TAG, HOST/REPO@sha256:...) or oci-layout:DIR:TAG.

    \b
    Examples:
      trivy-mirror copy ghcr.io/aquasecurity/trivy-db:2 registry.internal:5000/aquasec/trivy-db:2
      trivy-mirror copy registry.internal:5000/aquasec/trivy-db:2 oci-layout:/media/usb/trivy-db:2
    """
    from trivy_mirror.commands.copy import run_copy

    sys.exit(run(run_copy(source, target, connection_options(src_creds, "src", insecure, ca_file),
                          connection_options(dest_creds, "dest", insecure, ca_file), as_json=as_json)))


COMMANDS = (sync, status, copy)
