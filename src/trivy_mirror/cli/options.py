"""The options shared by several commands, each declared once: a command stacks the decorators it takes.

Only click is imported here, so that building the command tree (``--version``, ``--help``, completion) costs
nothing heavy; the values are turned into library objects in :mod:`trivy_mirror.cli.parsing` when a command runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ASSET_NAMES = ("db", "java-db", "checks")
"""The catalog's OCI asset names, for help texts only (a test keeps them equal to the catalog's): importing the
catalog would load the OCI model before every ``--help``."""

STORE_HELP = "Local store directory [default: $TRIVY_MIRROR_STORE, else $XDG_DATA_HOME/trivy-mirror/store]."


def stack(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Apply ``decorators`` in the order written, as if each stood on its own line above the function."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def store(help_text: str = STORE_HELP) -> Callable[[F], F]:
    return click.option("--store", type=click.Path(path_type=Path, file_okay=False), help=help_text)


def assets(help_text: str) -> Callable[[F], F]:
    """``--assets LIST``: the help says what the command does with them."""
    return click.option("--assets", "asset_names", metavar="LIST", help=help_text)


def asset_list(*extra: str) -> str:
    return ", ".join((*ASSET_NAMES, *extra))


def json_output(help_text: str = "Print a JSON summary on stdout.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def lock_timeout(help_text: str = "Seconds to wait for another sync holding the store.") -> Callable[[F], F]:
    return click.option("--lock-timeout", type=float, default=600, show_default=True, help=help_text)


def password_stdin(side: str, what: str) -> Callable[[F], F]:
    """``--<side>-password-stdin``: a flag recorded in the context, so the commands' signatures stay as they are."""

    def remember(context: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            context.meta[f"{side}_password_stdin"] = True

    return click.option(f"--{side}-password-stdin", is_flag=True, expose_value=False, callback=remember,
                        help=f"Read the password for {what} from stdin (user from --{side}-creds USER or "
                             f"TRIVY_MIRROR_{side.upper()}_USERNAME): unlike a flag, it does not show in ps.")


def credentials(side: str, what: str) -> Callable[[F], F]:
    """``--<side>-creds`` and ``--<side>-password-stdin`` for the registry ``what`` names."""
    return stack(
        click.option(f"--{side}-creds", metavar="USER:PASS",
                     help=f"Credentials for {what} (visible in ps: prefer TRIVY_MIRROR_{side.upper()}_USERNAME/"
                          f"_PASSWORD or --{side}-password-stdin; else docker config.json, podman auth.json, "
                          f"anonymous)."),
        password_stdin(side, what),
    )


sources = stack(
    click.option("--from", "sources", multiple=True, metavar="PREFIX",
                 help="Registry prefix holding the assets under their upstream names (repeatable, tried in "
                      "order). [default: mirror.gcr.io/aquasec, then ghcr.io/aquasecurity]"),
    credentials("src", "the sources"),
)
"""``--from`` and the sources' credentials."""

parent = click.option(
    "--parent", metavar="URL",
    help="A central trivy-mirror serve (http(s)://HOST[:PORT]) to take everything from: the assets from "
         "HOST/aquasec (tried before any --from) and every VEX repository its /vex/ lists, asked on each sync. "
         "The sources' credentials and TLS settings apply to it.",
)
"""``--parent``: an edge mirror fed by a central one."""

vex_sources = click.option(
    "--vex-from", "vex_sources", multiple=True, metavar="[NAME=]URL",
    help="VEX repository to mirror, served at PUBLIC_URL/vex/NAME (repeatable; implies the vex asset): "
         "https://github.com/OWNER/REPO or any URL serving .well-known/vex-repository.json. NAME defaults to "
         "the repository name. [default with --assets vex: vexhub=https://github.com/aquasecurity/vexhub]",
)


def destination(to_help: str, multiple: bool = False) -> Callable[[F], F]:
    """``--store``, ``--to`` and the destination's credentials (sync, status, import); ``multiple``: ``--to`` is
    repeatable (sync's fan-out)."""
    return stack(
        store(),
        click.option("--to", "destination", metavar="REGISTRY[/PREFIX]|static:DIR", help=to_help,
                     multiple=multiple),
        credentials("dest", "--to"),
    )


SIDE_NAMES = {"src": "the sources", "dest": "the destination (--to)"}


def transport(insecure_help: str = "Skip TLS verification and allow plain HTTP to any host (loopback and RFC 1918 "
                                   "hosts may use plain HTTP without it).",
              ca_help: str = "PEM file of extra CA certificates to trust.",
              sides: tuple[str, ...] = ("src", "dest")) -> Callable[[F], F]:
    """``--insecure`` and ``--ca-file`` (every side), and ``--<side>-insecure`` and ``--<side>-ca-file`` for each of
    ``sides``: how registries are reached. The per-side flags are recorded in the context (as the password flags
    are) and read by :func:`trivy_mirror.cli.parsing.connection_options`."""
    if len(sides) > 1:
        insecure_help += " Applies to both sides; " + " or ".join(f"--{side}-insecure" for side in sides) + \
            " to one only."
        ca_help += " Applies to both sides; " + " or ".join(f"--{side}-ca-file" for side in sides) + \
            " to one only (used instead of this one)."
    return stack(
        click.option("--insecure", is_flag=True, help=insecure_help),
        click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), help=ca_help),
        *(side_transport(side) for side in sides),
        retries,
    )


MAX_RETRIES = 20
"""Bounds ``--retries``: no setting makes a retry loop (nearly) unbounded."""

DEFAULT_RETRIES = 4
"""``RetryPolicy.attempts - 1`` (a test keeps them equal: importing the transport would load the HTTP stack)."""

DEFAULT_RETRY_DELAY = 0.5
"""``RetryPolicy.backoff_base``, likewise."""

DEFAULT_READ_TIMEOUT = 120.0
"""``Timeouts.read``, likewise."""

BACKOFF_MAX = 30.0
"""``RetryPolicy.backoff_max``, likewise: the longest wait the backoff reaches, so the longest first delay."""


def _remember(context: click.Context, param: click.Parameter, value: object) -> None:
    context.meta[str(param.name)] = value


def _seconds(maximum: float | None = None) -> Callable[[click.Context, click.Parameter, float], None]:
    """A callback refusing what ``float`` takes but is no wait (``0``, ``-1``, ``inf``, ``nan``, over ``maximum``),
    then recording the value as :func:`_remember` does."""

    def check(context: click.Context, param: click.Parameter, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise click.BadParameter(f"{value:g} is not a positive, finite number of seconds")
        if maximum is not None and value > maximum:
            raise click.BadParameter(f"{value:g} is more than {maximum:g} seconds")
        _remember(context, param, value)

    return check


retries = stack(
    click.option("--retries", type=click.IntRange(0, MAX_RETRIES), default=DEFAULT_RETRIES, show_default=True,
                 expose_value=False, callback=_remember, metavar="N",
                 help="Attempts after the first for a request that fails with a connection error, a stalled read, "
                      "408, 429 or 5xx (0: no retry), for every registry the command reaches."),
    click.option("--retry-delay", type=float, default=DEFAULT_RETRY_DELAY, metavar="SECONDS", show_default=True,
                 expose_value=False, callback=_seconds(BACKOFF_MAX),
                 help=f"The first wait between attempts (at most {BACKOFF_MAX:g} s); it doubles, with jitter, up to "
                      f"{BACKOFF_MAX:g} s. A registry's Retry-After replaces it, never taken below the smaller of "
                      f"this and 0.5 s (a longer one than 60 s fails the request)."),
    click.option("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT, metavar="SECONDS", show_default=True,
                 expose_value=False, callback=_seconds(),
                 help="How long a read may stall (no byte received) before the request counts as failed; a long "
                      "download that keeps flowing is not limited."),
)
"""``--retries``, ``--retry-delay`` and ``--read-timeout``: how hard registries are tried (part of
:func:`transport`), recorded in the context and read by :func:`trivy_mirror.cli.parsing.connection_options`."""


def side_transport(side: str) -> Callable[[F], F]:
    """``--<side>-insecure`` and ``--<side>-ca-file``: as ``--insecure``/``--ca-file``, for one side only."""

    def remember(context: click.Context, param: click.Parameter, value: object) -> None:
        if value:
            context.meta[str(param.name)] = value

    what = SIDE_NAMES[side]
    return stack(
        click.option(f"--{side}-insecure", is_flag=True, expose_value=False, callback=remember,
                     help=f"As --insecure, for {what} only (--insecure covers every side)."),
        click.option(f"--{side}-ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     expose_value=False, callback=remember,
                     help=f"PEM file of extra CA certificates to trust for {what}, instead of --ca-file."),
    )


def public_url(help_text: str) -> Callable[[F], F]:
    return click.option("--public-url", metavar="URL", help=help_text)


def keep(help_text: str, default: int | None = None) -> Callable[[F], F]:
    return click.option("--keep", type=click.IntRange(min=1), default=default, show_default=default is not None,
                        help=help_text)


def static_tree(what: str, public_url_help: str) -> Callable[[F], F]:
    """``--public-url`` and ``--keep`` of a static tree destination (sync and import)."""
    return stack(
        public_url(public_url_help),
        keep(f"Versions of each tag the store, or a static tree (--to static:DIR), keeps after the {what}; older "
             f"ones go, and their blobs once 10 minutes old. A registry (--to REGISTRY) is never pruned. "
             f"[default: 2]"),
    )


def mirror(help_text: str, required: bool = False) -> Callable[[F], F]:
    return click.option("--mirror", metavar="URL", required=required, help=help_text)


sanity = stack(
    click.option("--max-shrink", type=click.FloatRange(min=0, max=1), default=0.5, show_default=True,
                 metavar="FACTOR", help="Hold a new version smaller than FACTOR times the served one (a truncated "
                                        "or emptied build); 0 turns the check off."),
    click.option("--check-archive/--no-check-archive", default=True, show_default=True,
                 help="Before publishing a DB, check that its layer holds the database file with the right magic "
                      "bytes (bbolt, SQLite) besides a parsable metadata.json; held otherwise."),
)
"""The sanity checks before publishing (``sync``, ``serve`` and ``import``)."""

trust = stack(
    click.option("--hold", "holds", multiple=True, metavar="[ASSET=]DURATION",
                 help="Soak period: a new version is published only after it has been the candidate, continuously, "
                      "this long (24h, 90m); per asset with db=24h (repeatable). trivy-mirror approve publishes a "
                      "held candidate at once. [default: 0, publish at once]"),
    click.option("--quorum", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Publish a new version only when at least this many sources (--from) serve the same manifest "
                      "digest (one manifest HEAD each); below it the current version stays and the asset is held."),
    sanity,
    click.option("--provenance", is_flag=True,
                 help="Attach an in-toto provenance statement (sources, their digests, first seen, published at, "
                      "decisions) to each published version as an OCI referrer (oras discover lists it)."),
    click.option("--sign", "sign_key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                 metavar="KEYFILE", help="Sign the provenance statement (DSSE, Ed25519 key from trivy-mirror "
                                         "keygen); implies --provenance."),
)
"""The trust controls of a sync (``sync`` and ``serve``)."""
