"""``trivy-mirror trivy-config``: the Trivy client configuration for a mirror, printed or written to a directory."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

from trivy_mirror.errors import UsageError
from trivy_mirror.store.fsutil import FILE_MODE, os_errors, write_atomic
from trivy_mirror.trivyconf import ClientConfig, env_lines, flag_line, repository_yaml, trivy_yaml, vex_config_path

log = logging.getLogger("trivy_mirror.trivy_config")

TRIVY_YAML = "trivy.yaml"
REPOSITORY_YAML = "repository.yaml"


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` whole; the temp file has ``mode`` before any byte: credentials are never readable by others."""
    with os_errors(f"write {path}"):
        write_atomic(path.parent, path, text.encode(), mode)


def run_trivy_config(config: ClientConfig, output_format: str, out: Path | None) -> int:
    for note in config.warnings():
        log.warning(note)
    if out is not None and output_format != "yaml":
        raise UsageError("--out writes trivy.yaml and repository.yaml, so it needs --format yaml")
    if output_format == "env":
        sys.stdout.write(env_lines(config))
    elif output_format == "flags":
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
    print(f"trivy.yaml: pass it to every scan: trivy --config {shlex.quote(str(trivy_file))} image IMAGE")
    print(f"  (or TRIVY_CONFIG={shlex.quote(str(trivy_file))}, or copy it to trivy.yaml in the directory trivy "
          f"runs in)")
    print("repository.yaml: Trivy reads it from $HOME/.trivy/vex/repository.yaml, or from "
          "$XDG_DATA_HOME/.trivy/vex/repository.yaml when XDG_DATA_HOME is set; for this user:")
    print(f"  mkdir -p {shlex.quote(str(vex_home.parent))} && cp {shlex.quote(str(repository_file))} "
          f"{shlex.quote(str(vex_home))}")
