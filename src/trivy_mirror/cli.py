"""The command line: parses flags and calls the library; no logic of its own."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from trivy_mirror import __version__
from trivy_mirror.catalog import assets
from trivy_mirror.config import load_config
from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions
from trivy_mirror.oci.reference import Prefix
from trivy_mirror.registry.credentials import Credentials
from trivy_mirror.timefmt import parse_go_duration
from trivy_mirror.ui import console, logs

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
STORE_HELP = "Local store directory [default: $TRIVY_MIRROR_STORE, else $XDG_DATA_HOME/trivy-mirror/store]."


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def parse_creds(text: str | None, side: str) -> Credentials | None:
    """``USER:PASS`` from a flag, else ``TRIVY_MIRROR_<SIDE>_USERNAME`` / ``_PASSWORD``; with
    ``--<side>-password-stdin`` the password is stdin's first line and the user comes from the flag or env."""
    if _password_from_stdin(side):
        return _stdin_creds(text, side)
    if text:
        username, sep, password = text.partition(":")
        if not sep or not username:
            raise UsageError(f"--{side}-creds must be USERNAME:PASSWORD")
        return Credentials(username, password)
    env_user = os.environ.get(f"TRIVY_MIRROR_{side.upper()}_USERNAME")
    env_password = os.environ.get(f"TRIVY_MIRROR_{side.upper()}_PASSWORD")
    if env_user and env_password is not None:
        return Credentials(env_user, env_password)
    if env_user or env_password:
        raise UsageError(f"set both TRIVY_MIRROR_{side.upper()}_USERNAME and TRIVY_MIRROR_{side.upper()}_PASSWORD")
    return None


def _password_from_stdin(side: str) -> bool:
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    meta = context.meta
    if meta.get("src_password_stdin") and meta.get("dest_password_stdin"):
        raise UsageError("--src-password-stdin and --dest-password-stdin cannot both read stdin; use "
                         "TRIVY_MIRROR_SRC_PASSWORD or TRIVY_MIRROR_DEST_PASSWORD for one side")
    return bool(meta.get(f"{side}_password_stdin"))


def _stdin_creds(text: str | None, side: str) -> Credentials:
    username, sep, password = (text or "").partition(":")
    if sep and password:
        raise UsageError(f"--{side}-password-stdin reads the password from stdin: give --{side}-creds USER alone")
    username = username or os.environ.get(f"TRIVY_MIRROR_{side.upper()}_USERNAME", "")
    if not username:
        raise UsageError(f"--{side}-password-stdin needs a user: --{side}-creds USER or "
                         f"TRIVY_MIRROR_{side.upper()}_USERNAME")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError(f"--{side}-password-stdin: no password on stdin")
    return Credentials(username, password)


def _password_stdin_option(side: str, what: str) -> Callable[[F], F]:
    """``--<side>-password-stdin``: a flag recorded in the context, so the commands' signatures stay as they are."""

    def remember(context: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            context.meta[f"{side}_password_stdin"] = True

    return click.option(f"--{side}-password-stdin", is_flag=True, expose_value=False, callback=remember,
                        help=f"Read the password for {what} from stdin (user from --{side}-creds USER or "
                             f"TRIVY_MIRROR_{side.upper()}_USERNAME): unlike a flag, it does not show in ps.")


def connection_options(creds: str | None, side: str, insecure: bool, ca_file: Path | None) -> ConnectionOptions:
    from trivy_mirror.commands.testhooks import transport_overrides

    return ConnectionOptions(parse_creds(creds, side), insecure, ca_file, *transport_overrides())


def parse_prefixes(values: tuple[str, ...]) -> list[Prefix]:
    return [Prefix.parse(v) for v in values] if values else list(assets.DEFAULT_SOURCES)


def parse_assets(value: str | None) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()] if value else []


def _source_options(function: Any) -> Any:
    for option in reversed([
        click.option("--from", "sources", multiple=True, metavar="PREFIX", envvar="TRIVY_MIRROR_FROM",
                     help="Registry prefix holding the assets under their upstream names (repeatable, tried in "
                          "order). [default: mirror.gcr.io/aquasec, then ghcr.io/aquasecurity]"),
        click.option("--src-creds", metavar="USER:PASS",
                     help="Credentials for the sources (visible in ps: prefer TRIVY_MIRROR_SRC_USERNAME/_PASSWORD "
                          "or --src-password-stdin; else docker config.json, podman auth.json, anonymous)."),
        _password_stdin_option("src", "the sources"),
    ]):
        function = option(function)
    return function


def _vex_option(function: Any) -> Any:
    return click.option(
        "--vex-from", "vex_sources", multiple=True, metavar="[NAME=]URL", envvar="TRIVY_MIRROR_VEX_FROM",
        help="VEX repository to mirror, served at PUBLIC_URL/vex/NAME (repeatable; implies the vex asset): "
             "https://github.com/OWNER/REPO or any URL serving .well-known/vex-repository.json. NAME defaults to "
             "the repository name. [default with --assets vex: vexhub=https://github.com/aquasecurity/vexhub]",
    )(function)


TO_HELP = {
    "sync": "Push into this registry instead of the store: assets land at REGISTRY/PREFIX/aquasec/trivy-db:2 and "
            "so on. static:DIR writes a tree any web server, object store or CDN serves as a pull-only registry "
            "(deploy/static).",
    "status": "Report on this registry instead of the store: the assets at REGISTRY/PREFIX/aquasec/trivy-db:2 and "
              "so on; or on the static tree static:DIR.",
}


def _destination_options(command: str) -> Callable[[Any], Any]:
    return lambda function: _add_destination_options(function, TO_HELP[command])


def _add_destination_options(function: Any, to_help: str) -> Any:
    for option in reversed([
        click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="TRIVY_MIRROR_STORE",
                     help=STORE_HELP),
        click.option("--to", "destination", metavar="REGISTRY[/PREFIX]|static:DIR", envvar="TRIVY_MIRROR_TO",
                     help=to_help),
        click.option("--dest-creds", metavar="USER:PASS",
                     help="Credentials for --to (visible in ps: prefer TRIVY_MIRROR_DEST_USERNAME/_PASSWORD or "
                          "--dest-password-stdin; else docker config.json, podman auth.json, anonymous)."),
        _password_stdin_option("dest", "--to"),
    ]):
        function = option(function)
    return function


def _static_options(function: Any) -> Any:
    """``--public-url`` and ``--keep`` of a static tree destination (sync and import)."""
    for option in reversed([
        click.option("--public-url", metavar="URL", envvar="TRIVY_MIRROR_PUBLIC_URL",
                     help="With --to static:DIR: the URL the tree is served at; VEX manifests name their archive "
                          "under it (needed once when VEX is mirrored, then remembered in the tree)."),
        click.option("--keep", type=click.IntRange(min=1), default=None,
                     help=KEEP_HELP),
    ]):
        function = option(function)
    return function


KEEP_HELP = ("Versions of each tag the store, or a static tree (--to static:DIR), keeps after the write; older "
             "ones go, and their blobs once 10 minutes old. A registry (--to REGISTRY) is never pruned. [default: 2]")


def static_settings(ctx: click.Context, destination: str | None, public_url: str | None,
                    keep: int | None) -> tuple[str | None, int | None]:
    """``--public-url`` and ``--keep`` for the command to check. For a destination that is not a static tree,
    values from the environment or the config file are dropped (serve shares those names); flags stay, so that
    a misplaced one is reported. ``--keep`` also applies to the store (no ``--to``)."""
    if destination is not None and destination.startswith("static:"):
        return public_url, keep

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE

    return (public_url if given("public_url") else None), (keep if given("keep") or destination is None else None)


def _transport_options(function: Any) -> Any:
    for option in reversed([
        click.option("--insecure", is_flag=True, envvar="TRIVY_MIRROR_INSECURE",
                     help="Skip TLS verification and allow plain HTTP to any host (loopback and RFC 1918 "
                          "hosts may use plain HTTP without it)."),
        click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     envvar="TRIVY_MIRROR_CA_FILE", help="PEM file of extra CA certificates to trust."),
    ]):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="trivy-mirror")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              envvar="TRIVY_MIRROR_CONFIG",
              help="YAML config file [default: $XDG_CONFIG_HOME/trivy-mirror/config.yaml when it exists].")
@click.option("-v", "--verbose", count=True, help="Debug log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", envvar="TRIVY_MIRROR_LOG_FORMAT",
              help="Log line format on stderr.")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: int, quiet: bool, log_format: str) -> None:
    """Self-host Trivy's scan assets: mirror the vulnerability DB, Java DB and checks bundle into a local store
    or your own registry, serve them to Trivy clients, and keep them fresh.

    The options below may also be given after the command (trivy-mirror sync -v).

    \b
    Quick start:
      trivy-mirror sync                 # copy the assets into the local store
      trivy-mirror serve                # serve them (and keep syncing) on 127.0.0.1:5000
      trivy image --db-repository 127.0.0.1:5000/aquasec/trivy-db:2 ...
    """
    logs.setup(verbose=verbose, quiet=quiet, fmt=log_format)
    ctx.default_map = load_config(config_file)


@cli.command()
@_destination_options("sync")
@_source_options
@_transport_options
@_vex_option
@click.option("--assets", "asset_names", metavar="LIST", envvar="TRIVY_MIRROR_ASSETS",
              help=f"Comma-separated assets to sync: {', '.join(assets.OCI_ASSET_NAMES)}, vex. "
                   f"[default: the OCI assets, plus vex with --vex-from]")
@click.option("--dry-run", is_flag=True, help="Resolve and check everything, copy nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--lock-timeout", type=float, default=600, show_default=True,
              help="Seconds to wait for another sync holding the store.")
@_static_options
@click.pass_context
def sync(ctx: click.Context, store: Path | None, destination: str | None, dest_creds: str | None,
         sources: tuple[str, ...], src_creds: str | None, insecure: bool, ca_file: Path | None,
         vex_sources: tuple[str, ...], asset_names: str | None, dry_run: bool, as_json: bool, lock_timeout: float,
         public_url: str | None, keep: int | None) -> None:
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
    from trivy_mirror.orchestrate import select_vex_sources as select_vex

    names = parse_assets(asset_names)
    public_url, keep = static_settings(ctx, destination, public_url, keep)
    code = run(run_sync(
        assets.select(names), parse_prefixes(sources), connection_options(src_creds, "src", insecure, ca_file),
        connection_options(dest_creds, "dest", insecure, ca_file), store, destination,
        dry_run=dry_run, as_json=as_json, lock_timeout=lock_timeout, vex=select_vex(vex_sources, names),
        public_url=public_url, keep=keep,
    ))
    sys.exit(code)


@cli.command()
@_destination_options("status")
@_transport_options
@click.option("--assets", "asset_names", metavar="LIST", envvar="TRIVY_MIRROR_ASSETS",
              help=f"Comma-separated assets to report: {', '.join(assets.OCI_ASSET_NAMES)}, vex. [default: the OCI "
                   f"assets, plus the VEX repositories the store holds]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def status(store: Path | None, destination: str | None, dest_creds: str | None, insecure: bool,
           ca_file: Path | None, asset_names: str | None, as_json: bool) -> None:
    """Show what the mirror holds: per asset the digest, size, UpdatedAt, NextUpdate and state.

    Exit 3 when an asset is missing or stale (its NextUpdate has passed); else exit 4 when the last sync or import
    of an asset failed or was refused (what is served is still fresh), so monitoring can alert on both.
    """
    from trivy_mirror.commands.status import run_status

    names = parse_assets(asset_names)
    sys.exit(run(run_status(assets.select(names), connection_options(dest_creds, "dest", insecure, ca_file),
                            store, destination, as_json=as_json, asset_names=names)))


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option("--src-creds", metavar="USER:PASS",
              help="Credentials for SOURCE (visible in ps: prefer TRIVY_MIRROR_SRC_USERNAME/_PASSWORD).")
@_password_stdin_option("src", "SOURCE")
@click.option("--dest-creds", metavar="USER:PASS",
              help="Credentials for TARGET (visible in ps: prefer TRIVY_MIRROR_DEST_USERNAME/_PASSWORD).")
@_password_stdin_option("dest", "TARGET")
@_transport_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
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


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_go_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@cli.command()
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="TRIVY_MIRROR_STORE",
              help=STORE_HELP)
@click.option("--listen", default="127.0.0.1:5000", show_default=True, envvar="TRIVY_MIRROR_LISTEN",
              metavar="HOST:PORT", help="Address to listen on ([::]:5000 for every IPv6 and IPv4 address).")
@click.option("--public-url", envvar="TRIVY_MIRROR_PUBLIC_URL", metavar="URL",
              help="The URL clients use to reach this server (behind a proxy or NAT) [default: the request's Host].")
@click.option("--sync-every", default="6h", show_default=True, callback=_duration, envvar="TRIVY_MIRROR_SYNC_EVERY",
              metavar="DURATION", help="Re-sync interval (with 10% jitter); earlier when the served DB's NextUpdate "
                                       "passes. Go-style: 6h, 90m, 1h30m.")
@click.option("--no-sync", is_flag=True, help="Only serve what the store holds; never sync.")
@_source_options
@_vex_option
@_transport_options
@click.option("--assets", "asset_names", metavar="LIST", envvar="TRIVY_MIRROR_ASSETS",
              help=f"Comma-separated assets to sync and report in /readyz: {', '.join(assets.OCI_ASSET_NAMES)}, vex. "
                   f"[default: the OCI assets, plus vex with --vex-from]")
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="TRIVY_MIRROR_TLS_CERT",
              help="Serve HTTPS with this PEM certificate (chain).")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="TRIVY_MIRROR_TLS_KEY",
              help="PEM private key for --tls-cert.")
@click.option("--htpasswd", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="TRIVY_MIRROR_HTPASSWD", help="Require Basic/Bearer auth with users from this file (htpasswd -B).")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="TRIVY_MIRROR_TOKEN_FILE",
              help="Accept these static bearer tokens, one per line (what trivy --registry-token sends); a token "
                   "may push only when its line reads 'TOKEN push'.")
@click.option("--anonymous-pull", is_flag=True, help="With auth on, let anyone pull; pushing still needs auth.")
@click.option("--allow-push", is_flag=True,
              help="Accept pushes (skopeo copy, oras cp, trivy-mirror sync --to) from the push users and push "
                   "tokens; every other credential only pulls.")
@click.option("--push-user", multiple=True, metavar="NAME", envvar="TRIVY_MIRROR_PUSH_USER",
              help="htpasswd user allowed to push (repeatable; with --allow-push). Pushes into the Trivy "
                   "repositories pass the same checks as a sync.")
@click.option("--keep", type=click.IntRange(min=1), default=2, show_default=True,
              help="Versions of each asset kept in the store after a sync.")
@click.pass_context
def serve(ctx: click.Context, store: Path | None, listen: str, public_url: str | None, sync_every: float,
          no_sync: bool, sources: tuple[str, ...], src_creds: str | None, vex_sources: tuple[str, ...],
          insecure: bool, ca_file: Path | None,
          asset_names: str | None, tls_cert: Path | None, tls_key: Path | None, htpasswd: Path | None,
          token_file: Path | None, anonymous_pull: bool, allow_push: bool, push_user: tuple[str, ...],
          keep: int) -> None:
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

    \b
    Point Trivy at it:
      trivy image --db-repository HOST:5000/aquasec/trivy-db:2 \\
                  --java-db-repository HOST:5000/aquasec/trivy-java-db:1 \\
                  --checks-bundle-repository HOST:5000/aquasec/trivy-checks:2 IMAGE
    """
    from trivy_mirror.commands.serve import run_serve, serve_sync
    from trivy_mirror.orchestrate import select_vex_sources as select_vex
    from trivy_mirror.server.settings import ServerSettings
    from trivy_mirror.store import Store, default_store_dir

    log_format = ctx.find_root().params.get("log_format", "text")
    settings = ServerSettings(listen=listen, public_url=public_url, tls_cert=tls_cert, tls_key=tls_key,
                              htpasswd=htpasswd, token_file=token_file, anonymous_pull=anonymous_pull,
                              allow_push=allow_push, push_users=frozenset(push_user), sync_every=sync_every,
                              keep=keep, log_format=log_format)
    settings.validate()
    the_store = Store(store or default_store_dir())
    names = parse_assets(asset_names)
    store_sync = serve_sync(the_store, assets.select(names), parse_prefixes(sources),
                            connection_options(src_creds, "src", insecure, ca_file), lock_timeout=600,
                            vex=select_vex(vex_sources, names))
    run(run_serve(settings, the_store, store_sync, sync=not no_sync))


def _register_commands() -> None:
    """Commands defined in their own modules (the air gap and maintenance groups)."""
    from trivy_mirror.cli_airgap import AIRGAP_COMMANDS
    from trivy_mirror.cli_verify import verify_command

    for command in (*AIRGAP_COMMANDS, verify_command):
        cli.add_command(command)


_register_commands()


GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
GLOBAL_VALUED = frozenset({"--config", "--log-format"})


def hoist_global_options(args: list[str]) -> list[str]:
    """``trivy-mirror sync -v --config F`` as ``trivy-mirror -v --config F sync``: the global options are
    accepted after the command too (click reads them only before it). Nothing after ``--`` moves."""
    position = _command_position(args)
    if position is None:
        return args
    hoisted: list[str] = []
    rest: list[str] = []
    tail = args[position + 1:]
    index = 0
    while index < len(tail):
        arg = tail[index]
        name = arg.partition("=")[0]
        if arg == "--":
            rest += tail[index:]
            break
        if arg in GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            hoisted.append(arg)
        elif name in GLOBAL_VALUED:
            hoisted.append(arg)
            if "=" not in arg and index + 1 < len(tail):
                index += 1
                hoisted.append(tail[index])
        else:
            rest.append(arg)
        index += 1
    return [*args[:position], *hoisted, args[position], *rest]


def _command_position(args: list[str]) -> int | None:
    """Index of the command name among the arguments (after any global options and their values)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-"):
            return index
        if arg in GLOBAL_VALUED:
            index += 1
        index += 1
    return None


def main() -> None:
    """Entry point: expected failures become one line on stderr and a documented exit code."""
    try:
        code = cli.main(args=hoist_global_options(sys.argv[1:]), standalone_mode=False)
    except click.exceptions.Abort:
        console.error("aborted")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_USAGE if isinstance(err, click.UsageError) else err.exit_code)
    except MirrorError as err:
        console.error(str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)
    except Exception as err:
        logging.getLogger("trivy_mirror").debug("internal error", exc_info=True)
        console.error(f"internal error: {type(err).__name__}: {err} (run with -v for the traceback)")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
