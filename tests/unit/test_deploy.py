"""The deployment examples in ``deploy/``: every YAML file loads, and every trivy-mirror command line in them
(Kubernetes args, compose command, systemd ExecStart, the image's CMD) parses with the real CLI, with only the
``TRIVY_MIRROR_*`` variables the CLI reads."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from support.registry import free_port
from trivy_mirror.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _pod_containers(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = document.get("spec", {})
    if document.get("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    yield from spec.get("template", {}).get("spec", {}).get("containers", [])


def invocations() -> list[tuple[str, list[str]]]:
    """(where, arguments after ``trivy-mirror``) for every command line in deploy/."""
    found: list[tuple[str, list[str]]] = []
    for path in YAML_FILES:
        for document in _documents(path):
            for container in _pod_containers(document):
                if "trivy-mirror" in container["image"]:
                    found.append((f"{path.name}:{container['name']}", [*container.get("command", [])[1:],
                                                                       *container["args"]]))
            for name, service in (document.get("services") or {}).items():
                found.append((f"{path.name}:{name}", list(service["command"])))
    for unit in DEPLOY.rglob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                binary, *args = shlex.split(line.removeprefix("ExecStart="))
                assert binary.endswith("/trivy-mirror")
                found.append((unit.name, args))
    containerfile = (DEPLOY / "Containerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", containerfile, re.MULTILINE)
    cmd = re.search(r"^CMD (\[.*\])$", containerfile, re.MULTILINE)
    assert entrypoint and cmd and json.loads(entrypoint[1]) == ["trivy-mirror"]
    found.append(("Containerfile", json.loads(cmd[1])))
    return found


def _group() -> click.Group:
    """The CLI's options and commands without its callback (which would read a config file)."""
    return click.Group(cli.name, params=cli.params, commands=dict(cli.commands))


def _known_variables(group: click.Group) -> set[str]:
    params = [*group.params, *(p for c in group.commands.values() for p in c.params)]
    names = {name for p in params for name in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])}
    names |= {f"TRIVY_MIRROR_{side}_{what}" for side in ("SRC", "DEST") for what in ("USERNAME", "PASSWORD")}
    return names


def test_deploy_has_what_operators_expect() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()}
    assert {"README.md", "Containerfile", "compose.yaml", "systemd/trivy-mirror.service",
            "kubernetes/serve.yaml", "kubernetes/sync-to-registry.yaml", "kubernetes/replicas.yaml"} <= names
    kinds = {doc.get("kind") for path in YAML_FILES for doc in _documents(path)}
    assert {"Deployment", "Service", "PersistentVolumeClaim", "CronJob"} <= kinds


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_files_load(path: Path) -> None:
    assert _documents(path)


@pytest.mark.parametrize(("where", "args"), invocations(), ids=lambda value: value if isinstance(value, str) else "")
def test_command_lines_parse_with_the_cli(where: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("TRIVY_MIRROR_")]:
        monkeypatch.delenv(variable)
    group = _group()
    context = group.make_context("trivy-mirror", list(args))
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 9.0 puts everything in args
        warnings.simplefilter("ignore", DeprecationWarning)
        remaining = [*context.protected_args, *context.args]
    name, command, rest = group.resolve_command(context, remaining)
    assert command is not None, f"{where}: no command in {args}"
    assert name in ("serve", "sync"), where
    command.make_context(str(name), rest, parent=context)


def test_environment_variables_are_ones_the_cli_reads() -> None:
    known = _known_variables(_group())
    texts = [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    used = {name for text in texts for name in re.findall(r"\bTRIVY_MIRROR_[A-Z_]+\b", text)}
    assert used and used <= known, used - known


def _healthcheck_code() -> str:
    match = re.search(r"^\s*CMD (\[.*\])$", (DEPLOY / "Containerfile").read_text().split("HEALTHCHECK", 1)[1],
                      re.MULTILINE)
    assert match is not None
    command = json.loads(match[1])
    assert command[0].endswith("/python") and command[1] == "-c"  # the image's venv Python; here the test's
    return str(command[2])


def test_container_healthcheck_follows_the_listen_address(tmp_path: Path) -> None:
    """The image's HEALTHCHECK, run as Docker runs it, against a real ``serve`` on a port other than 5000."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVY_MIRROR_")}
    env.update(HOME=str(tmp_path), TRIVY_MIRROR_LISTEN=f"0.0.0.0:{port}", TRIVY_MIRROR_STORE=str(tmp_path / "s"))

    def probe() -> int:
        return subprocess.run([sys.executable, "-c", _healthcheck_code()], env=env, capture_output=True,
                              timeout=30, check=False).returncode

    assert probe() != 0  # nothing listens yet
    with subprocess.Popen([sys.executable, "-m", "trivy_mirror", "serve", "--no-sync"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            deadline = time.monotonic() + 20
            while probe() != 0:
                assert time.monotonic() < deadline and server.poll() is None, "the health check never passed"
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(10)


def test_systemd_secrets_reach_the_dynamic_user_through_credentials() -> None:
    """A DynamicUser cannot read a root-only key or htpasswd: such paths go through LoadCredential= and %d."""
    unit = (DEPLOY / "systemd" / "trivy-mirror.service").read_text()
    assert "DynamicUser=yes" in unit
    settings = [line.lstrip("#") for line in unit.splitlines()]
    for variable, credential in (("TRIVY_MIRROR_TLS_KEY", "tls.key"), ("TRIVY_MIRROR_HTPASSWD", "htpasswd")):
        assert any(f"{variable}=%d/{credential}" in line for line in settings), variable
        assert f"LoadCredential={credential}:/etc/trivy-mirror/{credential}" in settings
    env_file = (DEPLOY / "systemd" / "trivy-mirror.env").read_text()
    assert "TRIVY_MIRROR_TLS_KEY=/" not in env_file and "TRIVY_MIRROR_HTPASSWD=/" not in env_file
