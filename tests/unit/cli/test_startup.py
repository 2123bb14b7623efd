"""Nothing heavy is imported before a command runs: ``--version``, ``--help`` and completion load click and the
option declarations, not the HTTP stack, rich, YAML or the OCI model (bench/startup.py times them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "rich", "yaml", "asyncio", "cryptography", "prometheus_client", "trivy_mirror.oci",
         "trivy_mirror.registry", "trivy_mirror.store", "trivy_mirror.commands")


def imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """The modules ``python -X importtime -m trivy_mirror ARGS`` imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "trivy_mirror", *args], capture_output=True,
                            text=True, timeout=60, check=False, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, result.stderr[-2000:]
    return {line.rpartition("|")[2].strip() for line in lines}


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["sync", "--help"], ["import", "--help"]])
def test_no_heavy_import_before_a_command_runs(args: list[str]) -> None:
    modules = imported(args)
    assert "trivy_mirror.cli" in modules and "click" in modules
    heavy = sorted(m for m in modules if m.startswith(HEAVY))
    assert not heavy, heavy


def test_completion_requests_stay_light() -> None:
    modules = imported([], env={"_TRIVY_MIRROR_COMPLETE": "bash_complete", "COMP_WORDS": "trivy-mirror sy",
                                "COMP_CWORD": "1"})
    assert not sorted(m for m in modules if m.startswith(HEAVY))


def test_writing_a_client_configuration_offline_loads_no_http_stack() -> None:
    """``trivy-config --offline`` is a quick command (within 12x the bare interpreter in bench/startup.py): it
    reads the catalog and writes text, so neither aiohttp nor the registry client nor the VEX server loads."""
    modules = imported(["trivy-config", "--offline", "--mirror", "http://10.0.0.5:5000", "--no-vex"])
    assert "trivy_mirror.trivyconf" in modules
    heavy = sorted(m for m in modules if m.startswith(("aiohttp", "trivy_mirror.registry.client",
                                                      "trivy_mirror.vex.serve", "trivy_mirror.http")))
    assert not heavy, heavy
