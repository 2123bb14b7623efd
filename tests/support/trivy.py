"""Running the real ``trivy`` binary hermetically, and reading findings out of its JSON reports.

Every run gets its own cache dir and home: ``HOME`` and the XDG directories point into ``home``, and ``TRIVY_*``,
``DOCKER_CONFIG`` and ``REGISTRY_AUTH_FILE`` from the caller's environment are dropped, so neither the developer's
Trivy config, VEX repositories nor registry credentials leak in (TRIVY-ASSETS.md section 13).

Flag sets differ by subcommand: ``fs``/``rootfs``/``image`` take ``--db-repository``, ``--java-db-repository`` and
``--checks-bundle-repository``; ``config`` takes only ``--checks-bundle-repository``; ``sbom`` has no
``--checks-bundle-repository``. ``--skip-version-check`` and ``--disable-telemetry`` exist only on scan
subcommands, so they are added only there. Plain HTTP to ``127.0.0.1:PORT`` needs no ``--insecure``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRIVY_BINARY = "trivy"

SCAN_COMMANDS = frozenset(
    {"fs", "filesystem", "rootfs", "config", "conf", "image", "i", "repo", "repository", "sbom", "vm", "k8s",
     "kubernetes"}
)
"""Subcommands that accept ``--skip-version-check``, ``--disable-telemetry`` and ``--format``."""

_DROPPED_ENV = ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")

DEFAULT_TIMEOUT = 180.0


class TrivyFailed(AssertionError):
    """A Trivy run that was expected to succeed exited non-zero; the message carries its output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"{' '.join(result.args)} exited {result.returncode}\n"
            f"--- stderr ---\n{result.stderr[-6000:]}\n--- stdout ---\n{result.stdout[-2000:]}"
        )


def trivy_environment(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a hermetic Trivy run with ``home`` as its home, plus ``env`` on top."""
    result = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRIVY_") and key not in _DROPPED_ENV
    }
    result.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_RUNTIME_DIR=str(home / ".run"),
    )
    result.update(env or {})
    return result


def run_trivy(
    args: Sequence[str],
    cache_dir: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    binary: str = TRIVY_BINARY,
    scan_flags: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``trivy ARGS`` hermetically and return the finished process (stdout/stderr as text, any exit code).

    ``--cache-dir`` is always added; for scan subcommands also ``--skip-version-check --disable-telemetry``
    unless ``scan_flags`` is False (Trivy 0.59 refuses them; a trivy.yaml can set them instead).
    """
    home.mkdir(parents=True, exist_ok=True)
    command = [binary, *args, "--cache-dir", str(cache_dir)]
    if scan_flags and args and args[0] in SCAN_COMMANDS:
        command += ["--skip-version-check", "--disable-telemetry"]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=trivy_environment(home, env),
        timeout=timeout,
        check=False,
    )


def scan_json(
    args: Sequence[str],
    cache_dir: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    binary: str = TRIVY_BINARY,
    scan_flags: bool = True,
) -> dict[str, Any]:
    """Run a scan subcommand with ``--format json`` and return the parsed report; raise TrivyFailed on failure."""
    result = run_trivy([*args, "--format", "json"], cache_dir, home, env, timeout, binary, scan_flags)
    if result.returncode != 0:
        raise TrivyFailed(result)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def vuln_ids(report: Mapping[str, Any]) -> set[str]:
    """Every ``VulnerabilityID`` in a JSON report."""
    return {
        vulnerability["VulnerabilityID"]
        for result in report.get("Results") or []
        for vulnerability in result.get("Vulnerabilities") or []
    }


def misconfig_ids(report: Mapping[str, Any]) -> set[str]:
    """The ``ID`` and ``AVDID`` of every failed misconfiguration in a JSON report."""
    return {
        identifier
        for result in report.get("Results") or []
        for misconfig in result.get("Misconfigurations") or []
        if misconfig.get("Status", "FAIL") == "FAIL"
        for identifier in (misconfig.get("ID"), misconfig.get("AVDID"))
        if identifier
    }


@dataclass(frozen=True)
class TrivySandbox:
    """A cache dir and home for a series of Trivy runs that share state (e.g. a downloaded DB)."""

    cache_dir: Path
    home: Path
    binary: str = TRIVY_BINARY
    """The trivy executable: the one on PATH (0.76.0), or an older release (see ``support.trivy_versions``)."""
    scan_flags: bool = True
    """Add ``--skip-version-check --disable-telemetry`` to scan subcommands (False for Trivy 0.59)."""

    def run(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """:func:`run_trivy` in this sandbox."""
        return run_trivy(args, self.cache_dir, self.home, env, timeout, self.binary, self.scan_flags)

    def scan(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """:func:`scan_json` in this sandbox."""
        return scan_json(args, self.cache_dir, self.home, env, timeout, self.binary, self.scan_flags)


def db_served(workdir: Path, repository: str, target: Path, finding: str) -> str:
    """Scan ``target`` with a fresh Trivy cache under ``workdir``, the DB from ``repository``; ``finding`` must be
    found. The UpdatedAt of the DB Trivy downloaded (``trivy version``), to the minute (``2026-11-30T06:00``): which
    version the mirror served."""
    trivy = TrivySandbox(workdir / "cache", workdir / "home")
    assert finding in vuln_ids(trivy.scan(["fs", "--scanners", "vuln", "--db-repository", repository, str(target)]))
    version = trivy.run(["version", "--format", "json"])
    assert version.returncode == 0, version.stderr
    updated = json.loads(version.stdout)["VulnerabilityDB"]["UpdatedAt"]
    assert isinstance(updated, str)
    return updated[:16]
