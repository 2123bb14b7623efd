"""``sync``, ``status`` and ``copy``: filling a store or registry and looking at what it holds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trivy_mirror.cli import options
from trivy_mirror.cli.parsing import (
    connection_options,
    destination_prefixes,
    parse_assets,
    parse_sources,
    run,
    static_settings,
    trust_settings,
)


@click.command()
@options.destination("Push into this registry instead of the store: assets land at REGISTRY/PREFIX/aquasec/trivy-db:2 "
                     "and so on. static:DIR writes a tree any web server, object store or CDN serves as a pull-only "
                     "registry (deploy/static). Repeatable: every destination is written at once, each source blob "
                     "read once, and one failing does not stop the others.", multiple=True)
@options.sources
@options.parent
@options.transport()
@options.vex_sources
@options.assets(f"Comma-separated assets to sync: {options.asset_list('vex')}. "
                f"[default: the OCI assets, plus vex with --vex-from]")
@click.option("--dry-run", is_flag=True, help="Resolve and check everything, copy nothing.")
@click.option("--no-referrers", is_flag=True,
              help="Do not copy the assets' referrers (signatures, attestations: manifests whose subject is an "
                   "asset), which sync copies by default into the store or a registry (not a static tree).")
@options.json_output()
@options.lock_timeout()
@options.static_tree("write", "With --to static:DIR: the URL the tree is served at; VEX manifests name their "
                              "archive under it (needed once when VEX is mirrored, then remembered in the tree).")
@options.trust
@click.pass_context
def sync(ctx: click.Context, store: Path | None, destination: tuple[str, ...], dest_creds: str | None,
         sources: tuple[str, ...], src_creds: str | None, parent: str | None, insecure: bool, ca_file: Path | None,
         vex_sources: tuple[str, ...], asset_names: str | None, dry_run: bool, no_referrers: bool, as_json: bool,
         lock_timeout: float, public_url: str | None, keep: int | None, holds: tuple[str, ...], quorum: int,
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
      trivy-mirror sync --parent http://central.internal:5000   # an edge: assets and VEX from a central serve
      trivy-mirror sync --to harbor.internal/trivy --to static:/srv/trivy --public-url https://trivy.internal
      trivy-mirror sync --to static:/srv/trivy --public-url https://trivy.internal --assets db,java-db,checks,vex
    """
    from trivy_mirror.commands.sync import run_sync
    from trivy_mirror.oci.place import STATIC, scheme_of

    names = parse_assets(asset_names)
    statics = [d for d in destination if scheme_of(d) == STATIC]
    public_url, keep = static_settings(ctx, statics[0] if statics else (destination or (None,))[0], public_url, keep)
    prefixes, _vex_parent = parse_sources(sources, parent, names)
    trust = trust_settings(holds, quorum, len(prefixes), max_shrink, check_archive, provenance, sign_key)
    code = run(run_sync(
        store, list(destination), sources=prefixes, assets=names, vex=vex_sources,
        source_options=connection_options(src_creds, "src", insecure, ca_file, prefixes),
        dest_options=connection_options(dest_creds, "dest", insecure, ca_file, destination_prefixes(destination)),
        dry_run=dry_run, as_json=as_json, lock_timeout=lock_timeout, public_url=public_url, keep=keep,
        referrers=not no_referrers, parent=parent, trust=trust,
    ))
    sys.exit(code)


@click.command()
@options.destination("Report on this registry instead of the store: the assets at REGISTRY/PREFIX/aquasec/trivy-db:2 "
                     "and so on; or on the static tree static:DIR.")
@options.transport(sides=("dest",))
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
    connection = connection_options(dest_creds, "dest", insecure, ca_file, destination_prefixes(destination))
    sys.exit(run(run_status(connection, store, destination, as_json=as_json, assets=names)))


@click.command()
@click.argument("source")
@click.argument("target")
@options.credentials("src", "SOURCE")
@options.credentials("dest", "TARGET")
@options.transport()
@click.option("-r", "--referrers", is_flag=True,
              help="Copy the artifact's referrers too (signatures, attestations: manifests whose subject is it, "
                   "and theirs), as oras cp -r does.")
@options.json_output()
def copy(source: str, target: str, src_creds: str | None, dest_creds: str | None, insecure: bool,
         ca_file: Path | None, referrers: bool, as_json: bool) -> None:
    """Copy one artifact, byte for byte, between registries and OCI layouts.

    SOURCE and TARGET are registry references (HOST/REPO:TAG, HOST/REPO@sha256:...) or oci-layout:DIR:TAG. A
    reference starting with https:// reaches its registry over TLS only, http:// over plain HTTP only.

    \b
    Examples:
      trivy-mirror copy ghcr.io/aquasecurity/trivy-db:2 registry.internal:5000/aquasec/trivy-db:2
      trivy-mirror copy registry.internal:5000/aquasec/trivy-db:2 oci-layout:/media/usb/trivy-db:2
      trivy-mirror copy -r registry.internal:5000/aquasec/trivy-db:2 oci-layout:/media/usb/trivy-db:2
    """
    from trivy_mirror.commands.copy import run_copy

    sys.exit(run(run_copy(source, target, connection_options(src_creds, "src", insecure, ca_file),
                          connection_options(dest_creds, "dest", insecure, ca_file), as_json=as_json,
                          referrers=referrers)))


COMMANDS = (sync, status, copy)
