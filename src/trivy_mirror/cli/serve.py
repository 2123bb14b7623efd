"""``serve``: the registry API over the store, with its background sync."""

from __future__ import annotations

from pathlib import Path

import click

from trivy_mirror.cli import options
from trivy_mirror.cli.parsing import (
    connection_options,
    duration,
    explicit_vex,
    parse_assets,
    parse_sources,
    run,
    select_assets,
    trust_settings,
)

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


@click.command()
@options.store()
@click.option("--listen", default="127.0.0.1:5000", show_default=True, metavar="HOST:PORT",
              help="Address to listen on ([::]:5000 for every IPv6 and IPv4 address).")
@options.public_url("The URL clients use to reach this server (behind a proxy or NAT) [default: the request's Host].")
@click.option("--sync-every", default="6h", show_default=True, callback=duration, metavar="DURATION",
              help="Re-sync interval (with 10% jitter); earlier when the served DB's NextUpdate passes. Go-style: "
                   "6h, 90m, 1h30m.")
@click.option("--no-sync", is_flag=True, help="Only serve what the store holds; never sync.")
@options.sources
@options.parent
@options.vex_sources
@options.transport(sides=("src",))
@options.assets(f"Comma-separated assets to sync and report in /readyz: {options.asset_list('vex')}. "
                f"[default: the OCI assets, plus vex with --vex-from]")
@click.option("--tls-cert", type=_FILE, help="Serve HTTPS with this PEM certificate (chain).")
@click.option("--tls-key", type=_FILE, help="PEM private key for --tls-cert.")
@click.option("--htpasswd", type=_FILE, help="Require Basic/Bearer auth with users from this file (htpasswd -B).")
@click.option("--token-file", type=_FILE,
              help="Accept these static bearer tokens, one per line (what trivy --registry-token sends); a token "
                   "may push only when its line reads 'TOKEN push'.")
@click.option("--anonymous-pull", is_flag=True, help="With auth on, let anyone pull; pushing still needs auth.")
@click.option("--allow-push", is_flag=True,
              help="Accept pushes (skopeo copy, oras cp, trivy-mirror sync --to) from the push users and push "
                   "tokens; every other credential only pulls.")
@click.option("--allow-delete", is_flag=True,
              help="With --allow-push, let the push users and push tokens DELETE manifests, tags and blobs (a "
                   "catalog tag's served version never). Off: DELETE answers 405.")
@click.option("--push-user", multiple=True, metavar="NAME",
              help="htpasswd user allowed to push (repeatable; with --allow-push). Pushes into the Trivy "
                   "repositories pass the same checks as a sync.")
@options.keep("Versions of each asset kept in the store after a sync.", default=2)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Serving processes sharing the port (SO_REUSEPORT), for more manifest requests per second on "
                   "several cores (up to 64); the first one also syncs. A /token token is good on every process; "
                   "not with --allow-push (upload sessions live in one process).")
@options.trust
@click.pass_context
def serve(ctx: click.Context, store: Path | None, listen: str, public_url: str | None, sync_every: float,
          no_sync: bool, sources: tuple[str, ...], src_creds: str | None, parent: str | None,
          vex_sources: tuple[str, ...], insecure: bool, ca_file: Path | None,
          asset_names: str | None, tls_cert: Path | None, tls_key: Path | None, htpasswd: Path | None,
          token_file: Path | None, anonymous_pull: bool, allow_push: bool, allow_delete: bool,
          push_user: tuple[str, ...], keep: int, workers: int, holds: tuple[str, ...], quorum: int,
          max_shrink: float, check_archive: bool, provenance: bool, sign_key: Path | None) -> None:
    """Serve the store to Trivy clients over the OCI Distribution API, and keep it fresh.

    Serving starts at once with what the store holds; a sync runs in the background at start and then every
    --sync-every. A failed sync never stops serving: it is logged, retried with backoff and shown in /readyz and
    /metrics. New versions appear atomically; downloads already running finish on the old one.

    \b
    Endpoints:
      /v2/...    the registry API: aquasec/trivy-db, aquasec/trivy-java-db, aquasec/trivy-checks
                 (and the ghcr names aquasecurity/... as aliases)
      /vex/NAME  the mirrored VEX repositories (/vex/ lists them, for trivy-config)
      /healthz   the process is up       /readyz   every asset present and fresh (else 503 and why)
      /metrics   Prometheus metrics (with requests by Trivy version; status shows that census)
      /          a status page for people (with auth on, it needs credentials)

    \b
    Point Trivy at it:
      trivy image --db-repository HOST:5000/aquasec/trivy-db:2 \\
                  --java-db-repository HOST:5000/aquasec/trivy-java-db:1 \\
                  --checks-bundle-repository HOST:5000/aquasec/trivy-checks:2 IMAGE
    """
    from trivy_mirror.commands.serve import run_serve, serve_sync
    from trivy_mirror.server.settings import ServerSettings
    from trivy_mirror.store import Store, default_store_dir

    log_format = ctx.find_root().params.get("log_format", "text")
    names = parse_assets(asset_names)
    prefixes, vex_parent = parse_sources(sources, parent, names)
    trust = trust_settings(holds, quorum, len(prefixes), max_shrink, check_archive, provenance, sign_key)
    settings = ServerSettings(listen=listen, public_url=public_url, tls_cert=tls_cert, tls_key=tls_key,
                              htpasswd=htpasswd, token_file=token_file, anonymous_pull=anonymous_pull,
                              allow_push=allow_push, allow_delete=allow_delete, push_users=frozenset(push_user),
                              sync_every=sync_every, keep=keep, log_format=log_format, workers=workers, trust=trust)
    the_store = Store(store or default_store_dir())
    store_sync = serve_sync(the_store, select_assets(asset_names), prefixes,
                            connection_options(src_creds, "src", insecure, ca_file, prefixes), lock_timeout=600,
                            vex=explicit_vex(vex_sources, names, parent), parent=vex_parent, trust=trust)
    run(run_serve(settings, the_store, store_sync, sync=not no_sync))


COMMANDS = (serve,)
