"""``trivy-mirror trivy-config``: the Trivy client configuration for a mirror, printed or written to a directory.

Which VEX repositories to enable is asked, never guessed: a ``vulnerability.vex: repo`` naming a repository the
mirror does not serve makes every scan of every Trivy fail (``vex-repository.json: bad response code: 404``).
The embedded server lists them at ``GET /vex/``; ``--store`` reads the store instead; ``--offline`` takes the
``--vex-repo`` flags alone.
"""

from __future__ import annotations

import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from trivy_mirror.errors import StoreError, UsageError
from trivy_mirror.fsutil import FILE_MODE, os_errors, write_atomic
from trivy_mirror.oci.place import Place
from trivy_mirror.registry.credentials import Credentials
from trivy_mirror.trivyconf import (
    CHECKS_NOTE,
    VEX_NOTE,
    ClientConfig,
    env_lines,
    flag_line,
    list_served_vex,
    repository_yaml,
    select_vex,
    trivy_yaml,
    vex_config_path,
)
from trivy_mirror.trivyconf_integrations import INTEGRATIONS, render
from trivy_mirror.vex.storage import served_names

log = logging.getLogger("trivy_mirror.trivy_config")

TRIVY_YAML = "trivy.yaml"
REPOSITORY_YAML = "repository.yaml"


@dataclass(frozen=True)
class VexChoice:
    """How ``trivy-config`` learns the VEX repositories: the flags that decide it."""

    requested: tuple[str, ...] = ()
    vex_url: str | None = None
    no_vex: bool = False
    offline: bool = False
    store: Path | None = None


def build_config(mirror: Place, credentials: Credentials, choice: VexChoice, insecure: bool,
                 ca_file: Path | None) -> ClientConfig:
    """The configuration to write, with its VEX repositories resolved (asking the mirror or the store)."""
    if choice.vex_url is not None and not choice.vex_url.lower().startswith(("http://", "https://")):
        raise UsageError(f"--vex-url {choice.vex_url!r} must be an http:// or https:// URL")
    base = choice.vex_url.rstrip("/") if choice.vex_url else (mirror.url if mirror.transport else None)
    if choice.no_vex:
        names: tuple[str, ...] = ()
    elif choice.offline or base is None:
        names = choice.requested  # ClientConfig refuses names without a base: a registry serves no VEX
        if not names:
            why = "--offline" if choice.offline else f"{mirror} is a registry (give --vex-url for the VEX of a serve)"
            log.warning("no VEX repository enabled: %s; trivy.yaml leaves vulnerability.vex unset", why)
    else:
        if choice.store is not None:
            served, where = _stored(choice.store), f"the store {choice.store}"
        else:
            served, where = list_served_vex(base, credentials, insecure, ca_file), f"the mirror at {base}"
        names = select_vex(served, choice.requested, where)
        if not names:
            log.warning("%s serves no VEX repository: trivy.yaml leaves vulnerability.vex unset and "
                        "repository.yaml enables none", where)
    return ClientConfig(mirror, credentials, names, base, insecure, ca_file)


def _stored(store: Path) -> list[str]:
    if not store.is_dir():
        raise StoreError(f"the store {store} does not exist")
    return served_names(store)


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` whole; the temp file has ``mode`` before any byte: credentials are never readable by others."""
    with os_errors(f"write {path}"):
        write_atomic(path.parent, path, text.encode(), mode)


def run_trivy_config(mirror: Place, credentials: Credentials, choice: VexChoice, insecure: bool,
                     ca_file: Path | None, output_format: str, out: Path | None) -> int:
    """Check the flags, resolve the VEX repositories, then print or write; nothing is written on an error."""
    if out is not None and output_format != "yaml":
        raise UsageError("--out writes trivy.yaml and repository.yaml, so it needs --format yaml")
    if choice.no_vex and (choice.requested or choice.store):
        raise UsageError("--no-vex enables no VEX repository: drop --vex-repo and --store")
    if choice.offline and choice.store is not None:
        raise UsageError("--offline writes from the flags alone and --store reads the store: give one")
    config = build_config(mirror, credentials, choice, insecure, ca_file)
    if output_format in INTEGRATIONS:
        text, notes = render(output_format, config)  # its own notes: the Trivy ones may not apply to that tool
        for note in notes:
            log.warning(note)
        sys.stdout.write(text)
        return 0
    for note in config.warnings():
        log.warning(note)
    if output_format == "env":
        sys.stdout.write(env_lines(config))
    elif output_format == "flags":
        log.info(CHECKS_NOTE)
        if config.vex_repositories:
            log.info(VEX_NOTE)
        sys.stdout.write(flag_line(config))
    elif out is None:
        # One YAML stream of two documents; --out writes them to their own files.
        sys.stdout.write(f"# {TRIVY_YAML}\n{trivy_yaml(config)}---\n# {REPOSITORY_YAML}\n{repository_yaml(config)}")
    else:
        _write_directory(config, out.absolute())
    return 0


def _write_directory(config: ClientConfig, out: Path) -> None:
    with os_errors(f"create {out}"):
        out.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if config.credentials else FILE_MODE
    _write(out / TRIVY_YAML, trivy_yaml(config), mode)
    _write(out / REPOSITORY_YAML, repository_yaml(config), mode)
    trivy_file, repository_file, vex_home = out / TRIVY_YAML, out / REPOSITORY_YAML, vex_config_path()
    print(f"Wrote {trivy_file} and {repository_file}.")
    if config.vex_repositories:
        print(f"VEX repositories enabled: {', '.join(config.vex_repositories)}")
    print(f"trivy.yaml: pass it to every scan: trivy --config {shlex.quote(str(trivy_file))} image IMAGE")
    print(f"  (or TRIVY_CONFIG={shlex.quote(str(trivy_file))}, or copy it to trivy.yaml in the directory trivy "
          f"runs in)")
    print("repository.yaml: Trivy reads it from $HOME/.trivy/vex/repository.yaml, or from "
          "$XDG_DATA_HOME/.trivy/vex/repository.yaml when XDG_DATA_HOME is set; for this user:")
    print(f"  mkdir -p {shlex.quote(str(vex_home.parent))} && cp {shlex.quote(str(repository_file))} "
          f"{shlex.quote(str(vex_home))}")
