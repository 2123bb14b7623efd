"""Flag values into the library's objects, at the moment a command runs.

Everything heavy (the OCI model, the HTTP client, asyncio) is imported inside these functions, never at module
level: the command tree is built on every start, these run only for the command given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trivy_mirror.errors import UsageError

if TYPE_CHECKING:
    from trivy_mirror.catalog.assets import AssetSpec
    from trivy_mirror.catalog.policy import TrustSettings
    from trivy_mirror.http.transport import RetryPolicy, Timeouts
    from trivy_mirror.mirror.endpoints import ConnectionOptions
    from trivy_mirror.mirror.parent import Parent
    from trivy_mirror.oci.place import Place
    from trivy_mirror.registry.credentials import Credentials
    from trivy_mirror.vex import VexSource

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The one way a command starts the event loop."""
    import asyncio

    return asyncio.run(coroutine)


def parse_creds(text: str | None, side: str) -> Credentials | None:
    """``USER:PASS`` from a flag, else ``TRIVY_MIRROR_<SIDE>_USERNAME`` / ``_PASSWORD``; with
    ``--<side>-password-stdin`` the password is stdin's first line and the user comes from the flag or env."""
    from trivy_mirror.registry.credentials import Credentials

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
    from trivy_mirror.registry.credentials import Credentials

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


def connection_options(creds: str | None, side: str, insecure: bool, ca_file: Path | None,
                       endpoints: Sequence[Place] = ()) -> ConnectionOptions:
    """One side's options. ``--<side>-insecure`` adds to ``--insecure``; ``--<side>-ca-file`` replaces ``--ca-file``
    for that side; a scheme in an endpoint (``https://``, ``http://``) fixes the scheme of its host."""
    from trivy_mirror.mirror.endpoints import ConnectionOptions

    context = click.get_current_context(silent=True)
    meta = context.meta if context is not None else {}
    side_ca_file = meta.get(f"{side}_ca_file")
    return ConnectionOptions(parse_creds(creds, side), insecure or bool(meta.get(f"{side}_insecure")),
                             side_ca_file or ca_file, *retry_settings(meta), schemes=endpoint_schemes(endpoints))


def retry_settings(meta: Mapping[str, Any]) -> tuple[RetryPolicy | None, Timeouts | None]:
    """``--retries``, ``--retry-delay`` and ``--read-timeout`` (recorded in the context by
    :data:`trivy_mirror.cli.options.retries`) as the transport's policy and timeouts; None where a command has no
    such options (the library's defaults apply). A ``Retry-After`` is never taken below the smaller of the delay
    and 0.5 s: a short delay (tests, a registry next door) shortens that floor too."""
    from trivy_mirror.http.transport import RetryPolicy, Timeouts

    retries, delay, read = meta.get("retries"), meta.get("retry_delay"), meta.get("read_timeout")
    policy = None if retries is None or delay is None else RetryPolicy(
        attempts=retries + 1, backoff_base=delay, retry_after_floor=min(delay, 0.5))
    return policy, None if read is None else Timeouts(read=read)


def endpoint_schemes(prefixes: Sequence[Place]) -> dict[str, str]:
    """The scheme each registry's prefixes named; one registry named with both is a usage error."""
    schemes: dict[str, str] = {}
    for prefix in prefixes:
        if prefix.transport is None:
            continue
        if schemes.setdefault(prefix.registry, prefix.transport) != prefix.transport:
            raise UsageError(f"{prefix.registry} is named with both https:// and http://: choose one")
    return schemes


def destination_prefixes(destinations: str | Sequence[str] | None) -> list[Place]:
    """``--to`` (one value, or several for a fan-out) as a prefix list for :func:`connection_options`: the store
    and static trees add none."""
    from trivy_mirror.oci.place import REGISTRY, Place

    values = [destinations] if isinstance(destinations, str) else list(destinations or ())
    return [place for place in map(Place.parse, values) if place.scheme == REGISTRY]


def parse_prefixes(values: Sequence[str]) -> list[Place]:
    """``--from`` values, or Trivy's own sources. A value naming one asset (``HOST/PATH/trivy-db:2``) is refused
    with the prefix to give instead: ``--from`` holds every asset under its upstream name."""
    from trivy_mirror.catalog import assets
    from trivy_mirror.oci.place import Place

    for value in values:
        _refuse_asset_reference(value, {spec.repository for spec in assets.CATALOG})
    return [Place.parse_registry(v) for v in values] if values else list(assets.DEFAULT_SOURCES)


def _refuse_asset_reference(value: str, repositories: set[str]) -> None:
    path = value.strip().rstrip("/").partition("://")[2] or value.strip().rstrip("/")
    name = path.rpartition("/")[2]
    repository = name.partition("@")[0].partition(":")[0]
    if "/" in path and (repository in repositories or "@" in name or ":" in name):
        prefix = path.rpartition("/")[0]
        raise UsageError(f"--from {value}: give the prefix holding the assets, not one image reference "
                         f"(--from {prefix}: the assets are read from {prefix}/trivy-db and so on)")


def parse_sources(values: Sequence[str], parent: str | None,
                  asset_names: Sequence[str]) -> tuple[list[Place], Parent | None]:
    """The asset sources and, with ``--parent``, the parent whose VEX repositories are mirrored too (None when
    ``--assets`` leaves vex out): the parent's ``HOST/aquasec`` first, then the ``--from`` values if any."""
    from trivy_mirror.mirror.parent import Parent

    if parent is None:
        return parse_prefixes(values), None
    the_parent = Parent.parse(parent)
    prefixes = [the_parent.prefix, *(parse_prefixes(values) if values else [])]
    return prefixes, the_parent if not asset_names or "vex" in asset_names else None


def explicit_vex(values: Sequence[str], asset_names: Sequence[str], parent: str | None) -> list[VexSource]:
    """``--vex-from``; without it VEX Hub for ``--assets vex``, unless a parent provides the VEX repositories."""
    from trivy_mirror.orchestrate import select_vex_sources as vex_sources

    if parent is not None and not values:
        return []
    return vex_sources(values, asset_names)


def parse_assets(value: str | None) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()] if value else []


def select_assets(value: str | None) -> list[AssetSpec]:
    from trivy_mirror.catalog import assets

    return assets.select(parse_assets(value))


def asset_selection(value: str | None) -> tuple[list[AssetSpec], bool | None]:
    """The OCI assets and whether VEX repositories go too (export, trivy-cache): None when --assets is not given
    (those the store has), True when it names vex (there must be one), False otherwise."""
    names = parse_assets(value)
    return select_assets(value), ("vex" in names if names else None)


def static_settings(ctx: click.Context, destination: str | None, public_url: str | None,
                    keep: int | None) -> tuple[str | None, int | None]:
    """``--public-url`` and ``--keep`` for the command to check. For a destination that is not a static tree,
    values from the environment or the config file are dropped (serve shares those names); flags stay, so that
    a misplaced one is reported. ``--keep`` also applies to the store (no ``--to``)."""
    from trivy_mirror.oci.place import STATIC, scheme_of

    if destination is not None and scheme_of(destination) == STATIC:
        return public_url, keep

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE

    return (public_url if given("public_url") else None), (keep if given("keep") or destination is None else None)


def duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """A Go-style duration flag (``6h``, ``1h30m``) in seconds."""
    from trivy_mirror.timefmt import parse_go_duration

    if value is None:
        return None
    try:
        return parse_go_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def trust_settings(holds: tuple[str, ...], quorum: int = 1, sources: int = 1, max_shrink: float = 0.5,
                   check_archive: bool = True, provenance: bool = False,
                   sign_key: Path | None = None) -> TrustSettings:
    """``--hold [ASSET=]DURATION`` values and ``--quorum`` (of ``sources`` sources) as the policy's settings;
    UsageError for a bad value."""
    from datetime import timedelta

    from trivy_mirror.catalog.assets import OCI_ASSET_NAMES
    from trivy_mirror.catalog.policy import TrustSettings
    from trivy_mirror.timefmt import parse_go_duration

    parsed: dict[str, timedelta] = {}
    for value in holds:
        asset, _, text = value.rpartition("=")
        if asset and asset not in OCI_ASSET_NAMES:
            raise UsageError(f"--hold {value}: unknown asset {asset!r}: choose from {', '.join(OCI_ASSET_NAMES)}")
        try:
            parsed[asset] = timedelta(seconds=parse_go_duration(text))
        except ValueError as err:
            raise UsageError(f"--hold {value}: {err}") from None
    if quorum > sources:
        raise UsageError(f"--quorum {quorum} needs at least {quorum} sources (--from), {sources} given")
    if sign_key is not None:  # a key that cannot be used fails now, not after the first download
        from trivy_mirror.signing import SigningKey

        SigningKey.load(sign_key)
    return TrustSettings(holds=parsed, quorum=quorum, max_shrink=max_shrink, check_archive=check_archive,
                         provenance=provenance or sign_key is not None, sign_key=sign_key)
