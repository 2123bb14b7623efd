"""Client configuration for Trivy: ``trivy.yaml``, VEX ``repository.yaml``, ``TRIVY_*`` variables or flags.

It encodes Trivy's pitfalls (TRIVY-ASSETS.md 2.1, 2.5, 2.6, 6.4, 7.2, 7.5): a host without ``.`` or ``:`` is
read as a Docker Hub repository; Trivy falls through to the next repository only on 429/5xx, so the internet
defaults listed after the mirror never help and are left out; plain HTTP works without ``insecure`` only for the
hosts go-containerregistry recognises; ``--cacert`` is ignored by ``trivy vex repo download``; a missing
``repository.yaml`` makes Trivy create one pointing at GitHub.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trivy_mirror.catalog import assets
from trivy_mirror.errors import AuthError, InvalidReference, MirrorError, Unreachable, UsageError
from trivy_mirror.oci.place import REGISTRY, Place, scheme_of
from trivy_mirror.oci.reference import is_registry_component, is_rfc1918
from trivy_mirror.registry.credentials import Credentials, authorization_header
from trivy_mirror.version import __version__
from trivy_mirror.vex.listing import LISTING_PATH, MAX_LISTING, listing_names
from trivy_mirror.vex.source import DEFAULT_URL as DEFAULT_VEX_URL
from trivy_mirror.vex.source import NAME_RE

CHECKS_DEFAULT_HOST = "mirror.gcr.io"
"""The registry of every Trivy's default checks bundle since 0.58 (``mirror.gcr.io/aquasec/trivy-checks``)."""
_ASSETS = {spec.name: spec for spec in assets.CATALOG}


def trivy_uses_plain_http(registry: str) -> bool:
    """go-containerregistry's ``name.Registry.Scheme()``: the hosts Trivy reaches over HTTP without ``insecure``.

    An RFC 1918 IPv4 address, ``localhost:PORT``, ``*.localhost``, and any name containing ``127.0.0.1`` or
    ``::1`` (an unanchored match, as in Go). ``127.0.0.2`` and a bare ``localhost`` are not among them.
    """
    try:
        address = ipaddress.ip_address(registry.split(":")[0])
    except ValueError:
        address = None
    if is_rfc1918(address):
        return True
    return (registry.startswith("localhost:") or re.fullmatch(r".*\.localhost(:\d+)?", registry) is not None
            or "127.0.0.1" in registry or "::1" in registry)


def parse_mirror(text: str) -> Place:
    """Where clients reach the mirror (``--mirror``): the embedded server (``http[s]://HOST[:PORT][/PATH]``) or a
    registry prefix without a scheme (``HOST[:PORT]/PATH``, e.g. the Harbor project ``sync --to`` fills).

    A registry :class:`~trivy_mirror.oci.place.Place`, with Trivy's own rules on top: no other URL scheme, no
    credentials, query or fragment, and a host Trivy does not mistake for a Docker Hub repository.
    """
    value = text.strip()
    scheme, sep, rest = value.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        raise UsageError(f"--mirror {text!r}: the scheme must be http or https (or none for a registry)")
    rest = (rest if sep else value).rstrip("/")
    if not rest or any(c in rest for c in "?#@ ") or scheme_of(rest) != REGISTRY:
        raise UsageError(f"--mirror {text!r} is not HOST[:PORT][/PATH] (credentials go in --username/--token)")
    host = rest.partition("/")[0]
    if not is_registry_component(host):
        raise UsageError(f"--mirror {text!r}: Trivy reads {host}/aquasec/trivy-db as a Docker Hub "
                         f"repository; give the host with its port ({host}:PORT) or a qualified name")
    try:
        return Place.parse(value)
    except InvalidReference as err:
        raise UsageError(f"--mirror {text!r}: {err}") from None


def asset_reference(mirror: Place, asset: str) -> str:
    """The reference Trivy pulls ``asset`` by from the mirror (its first tag: the one current Trivy asks for)."""
    spec = _ASSETS[asset]
    return str(mirror.reference(spec.mirror_repository, spec.tags[0].tag))


def needs_insecure(mirror: Place) -> bool:
    """Plain HTTP to a host Trivy would otherwise reach over https only."""
    return mirror.transport == "http" and not trivy_uses_plain_http(mirror.registry)


NO_CREDENTIALS = Credentials("", "")
"""A client configuration for a mirror that anyone may pull from."""


def client_credentials(username: str | None = None, password: str | None = None,
                       token: str | None = None) -> Credentials:
    """What the client configuration logs in to the mirror with: a token or a user and password, not both.

    UsageError when both kinds or half a pair are given (``--password ''`` is a given, empty password).
    """
    if token and (username or password):
        raise UsageError("give either --token or --username/--password, not both")
    if bool(username) != (password is not None):
        raise UsageError("--username and --password go together")
    return Credentials(username or "", password or "", token=token or None)


@dataclass(frozen=True)
class ClientConfig:
    """Everything the generated files say; built from the ``trivy-config`` flags."""

    mirror: Place
    credentials: Credentials = NO_CREDENTIALS
    vex_repositories: tuple[str, ...] = ()
    vex_base: str | None = None
    insecure: bool = False
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        for name in self.vex_repositories:
            if not NAME_RE.fullmatch(name) or name == "default":
                raise UsageError(f"VEX repository name {name!r} must be 1-64 lower-case letters, digits, '.', '_' "
                                 f"or '-' (and not 'default', Trivy's own)")
        if self.vex_repositories and self.vex_base is None:
            raise UsageError(f"{self.mirror.url} has no URL scheme, so it is a registry, which serves no VEX "
                             f"repositories: give --vex-url, or --no-vex")

    @property
    def use_insecure(self) -> bool:
        return self.insecure or needs_insecure(self.mirror)

    def vex_url(self, name: str) -> str:
        assert self.vex_base is not None
        return f"{self.vex_base.rstrip('/')}/vex/{name}"

    def warnings(self) -> list[str]:
        """Pitfalls worth a line on stderr."""
        notes = []
        if needs_insecure(self.mirror):
            notes.append(f"{self.mirror.registry} is not loopback or RFC 1918, so Trivy speaks plain HTTP to it only "
                         f"with insecure, which also turns off TLS verification for every registry it pulls from; "
                         f"prefer HTTPS (serve --tls-cert/--tls-key) with --ca-file")
        if self.ca_file is not None and self.vex_repositories:
            notes.append(f"trivy vex repo download and trivy registry login ignore cacert: run them with "
                         f"SSL_CERT_FILE={self.ca_file}")
        login = f"trivy registry login {self.mirror.registry} keeps credentials to the mirror alone"
        if self.credentials.username:
            notes.append(f"Trivy tries registry.username/password on every registry it pulls from, not only the "
                         f"mirror; {login}")
        if self.credentials.token:
            notes.append(f"Trivy sends registry.token to every registry it pulls from and then ignores its docker "
                         f"credentials (image pulls included); it suits serve --token-file, not Basic-auth "
                         f"registries; {login}")
        return notes


def _comments(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def trivy_yaml(config: ClientConfig) -> str:
    """``trivy.yaml`` for the mirror, with the why of every choice in comments.

    The DB and Java DB are named explicitly (every Trivy since 0.59 asks for ``trivy-db:2`` and
    ``trivy-java-db:1``); the checks bundle is reached through ``registry.mirrors``, which keeps each Trivy on
    its own default tag: ``trivy-checks:1`` up to 0.68, ``:2`` from 0.69 (TRIVY-ASSETS.md 2.6 and 14).
    """
    mirror = config.mirror
    registry: dict[str, Any] = {"mirrors": {CHECKS_DEFAULT_HOST: [str(mirror)]}}
    credentials = config.credentials
    if credentials.token:
        registry["token"] = credentials.token
    elif credentials.username:
        registry.update(username=[credentials.username], password=[credentials.password])
    document: dict[str, Any] = {
        "db": {"repository": [asset_reference(mirror, "db")], "java-repository": [asset_reference(mirror, "java-db")]},
        "registry": registry,
        "scan": {"skip-version-check": True, "disable-telemetry": True},
    }
    if config.vex_repositories:
        document["vulnerability"] = {"vex": ["repo"]}
    if config.use_insecure:
        document["insecure"] = True
    if config.ca_file is not None:
        document["cacert"] = str(config.ca_file)
    header = [
        f"Trivy configuration for the trivy-mirror at {mirror.url} (written by trivy-mirror {__version__}).",
        "Use it with: trivy --config trivy.yaml image IMAGE   (or TRIVY_CONFIG=..., or ./trivy.yaml)",
        "",
        "db: only the mirror is listed: Trivy tries a next repository only after a 429 or 5xx answer, never when",
        "a host is unreachable, so mirror.gcr.io or ghcr.io after it would not help in an isolated network.",
        f"registry.mirrors: the checks bundle keeps Trivy's default reference ({CHECKS_DEFAULT_HOST}/aquasec/",
        "trivy-checks), redirected to the mirror, so each Trivy pulls its own tag: :1 up to 0.68, :2 from 0.69",
        "(their Rego engines differ). It also redirects image pulls from that host, falling back to it on error.",
    ]
    if config.vex_repositories:
        header += ["vulnerability.vex: repo uses the VEX repositories of repository.yaml (install it first, or",
                   "Trivy creates one pointing at GitHub)."]
    if config.use_insecure:
        header += ["insecure: plain HTTP to this host needs it; it also skips TLS verification for every registry."]
    alternative = [
        "",
        "Alternative for a fleet of Trivy 0.69 and later only: name the checks bundle explicitly",
        "(Trivy 0.68 and older would then run :2 checks on their older engine):",
        "misconfiguration:",
        f"  checks-bundle-repository: {asset_reference(mirror, 'checks')}",
    ]
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return _comments(header) + body + _comments(alternative)


def repository_yaml(config: ClientConfig) -> str:
    """Trivy's ``vex/repository.yaml``: the mirror's repositories in priority order, GitHub's disabled."""
    repositories: list[dict[str, Any]] = []
    for name in config.vex_repositories:
        entry: dict[str, Any] = {"name": name, "url": config.vex_url(name), "enabled": True}
        if config.credentials.token:
            entry["token"] = config.credentials.token
        elif config.credentials.username:
            entry.update(username=config.credentials.username, password=config.credentials.password)
        if config.insecure:
            entry["insecure"] = True
        repositories.append(entry)
    repositories.append({"name": "default", "url": DEFAULT_VEX_URL, "enabled": False})
    header = [
        f"Trivy VEX repositories for the trivy-mirror at {config.mirror.url} (written by trivy-mirror {__version__}).",
        "Trivy reads this file from $HOME/.trivy/vex/repository.yaml, or from",
        "$XDG_DATA_HOME/.trivy/vex/repository.yaml when XDG_DATA_HOME is set. Trivy's default repository (GitHub)",
        "stays disabled so nothing reaches for github.com; a missing file would make Trivy create it enabled.",
    ]
    return _comments(header) + yaml.safe_dump({"repositories": repositories}, sort_keys=False)


def _settings(config: ClientConfig) -> list[tuple[str, str, str | None]]:
    """(flag, environment variable, value; None for a switch) in the order they are printed."""
    mirror = config.mirror
    settings: list[tuple[str, str, str | None]] = [
        ("--db-repository", "TRIVY_DB_REPOSITORY", asset_reference(mirror, "db")),
        ("--java-db-repository", "TRIVY_JAVA_DB_REPOSITORY", asset_reference(mirror, "java-db")),
        ("--checks-bundle-repository", "TRIVY_CHECKS_BUNDLE_REPOSITORY", asset_reference(mirror, "checks")),
        ("--skip-version-check", "TRIVY_SKIP_VERSION_CHECK", None),
        ("--disable-telemetry", "TRIVY_DISABLE_TELEMETRY", None),
    ]
    if config.use_insecure:
        settings.append(("--insecure", "TRIVY_INSECURE", None))
    if config.ca_file is not None:
        settings.append(("--cacert", "TRIVY_CACERT", str(config.ca_file)))
    credentials = config.credentials
    if credentials.token:
        settings.append(("--registry-token", "TRIVY_REGISTRY_TOKEN", credentials.token))
    elif credentials.username:
        settings += [("--username", "TRIVY_USERNAME", credentials.username),
                     ("--password", "TRIVY_PASSWORD", credentials.password)]
    return settings


def select_vex(served: Sequence[str], requested: Sequence[str], where: str) -> tuple[str, ...]:
    """The repositories to enable: every one ``where`` serves (in its order), or those ``requested``, each of
    which must be served; a name the mirror lacks would make every ``--vex repo`` scan fail."""
    if not requested:
        return tuple(served)
    missing = [name for name in requested if name not in served]
    if missing:
        offer = f"it serves {', '.join(served)}" if served else "it serves none"
        raise UsageError(f"--vex-repo {missing[0]}: {where} does not serve that VEX repository ({offer})")
    return tuple(dict.fromkeys(requested))


CHECKS_NOTE = ("the checks bundle is pinned to trivy-checks:2, which Trivy 0.69 and later ask for; for Trivy 0.68 "
               "and older use --format yaml (registry.mirrors keeps each Trivy on its own tag)")
VEX_NOTE = ("VEX repositories are configured only in repository.yaml: write it with --format yaml --out DIR, "
            "install it, then add --vex repo (TRIVY_VEX=repo)")


def env_lines(config: ClientConfig) -> str:
    """``export TRIVY_...=...`` lines for ``eval "$(trivy-mirror trivy-config ... --format env)"``."""
    lines = [f"# Trivy settings for the trivy-mirror at {config.mirror.url}"]
    lines += [f"export {env}={shlex.quote(value if value is not None else 'true')}"
              for _flag, env, value in _settings(config)]
    lines.append(f"# {CHECKS_NOTE}")
    if config.vex_repositories:
        lines.append(f"# {VEX_NOTE}")
    return "\n".join(lines) + "\n"


def flag_line(config: ClientConfig) -> str:
    """The flags for a scan subcommand, on one line (``trivy config`` takes only the checks bundle's)."""
    args: list[str] = []
    for flag, _env, value in _settings(config):
        args += [flag] if value is None else [flag, value]
    return shlex.join(args) + "\n"


def vex_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where this user's Trivy reads ``repository.yaml`` (``fsutils.TrivyHomeDir()/vex``)."""
    env = os.environ if environ is None else environ
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home()
    return base / ".trivy" / "vex" / "repository.yaml"


LISTING_TIMEOUT = 15.0
"""How long ``trivy-config`` waits for a serve's VEX listing."""


def list_served_vex(base: str, credentials: Credentials, insecure: bool, ca_file: Path | None) -> list[str]:
    """The names in ``BASE/vex/`` of a trivy-mirror serve; one clear error when it cannot be read."""
    url = base.rstrip("/") + LISTING_PATH
    headers = {"Accept": "application/json"}
    authorization = authorization_header(credentials)
    if authorization:
        headers["Authorization"] = authorization
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file and ca_file.is_file() else None)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    offline = "(--offline with --vex-repo writes from the flags alone)"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http or https: checked by the callers)
    try:
        with urllib.request.urlopen(request, timeout=LISTING_TIMEOUT, context=context) as response:  # noqa: S310
            body = response.read(MAX_LISTING + 1)
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise AuthError(f"the mirror refused to list its VEX repositories ({url}: {err.code}): give "
                            f"--username/--password or --token", err.code) from None
        raise MirrorError(f"{url} answered {err.code}: not a trivy-mirror serve that lists its VEX repositories; "
                          f"give --vex-url, --no-vex or --offline {offline}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise Unreachable(f"cannot ask the mirror which VEX repositories it serves ({url}): {reason}; nothing "
                          f"written {offline}") from None
    try:
        return listing_names(body)
    except ValueError:
        raise MirrorError(f"{url} is not a trivy-mirror VEX listing") from None
