"""Global options (-v, -q, --config, --log-format) work after the command too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trivy_mirror.cli import hoist_global_options


@pytest.mark.parametrize(("given", "expected"), [
    (["sync", "-v", "--store", "s"], ["-v", "sync", "--store", "s"]),
    (["--config", "c.yaml", "sync", "-q", "--log-format", "json"],
     ["--config", "c.yaml", "-q", "--log-format", "json", "sync"]),
    (["status", "--config=c.yaml", "-vv", "--json"], ["--config=c.yaml", "-vv", "status", "--json"]),
    (["copy", "a", "b", "--", "-v"], ["copy", "a", "b", "--", "-v"]),
    (["-v"], ["-v"]),
    (["serve", "--listen", "127.0.0.1:5000"], ["serve", "--listen", "127.0.0.1:5000"]),
])
def test_hoisting(given: list[str], expected: list[str]) -> None:
    assert hoist_global_options(given) == expected


def test_log_format_after_the_command_is_honoured(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trivy_mirror", "sync", "--store", str(tmp_path / "s"), "--assets", "db",
         "--from", "127.0.0.1:9/aquasec", "--log-format", "json", "-v"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "TRIVY_MIRROR_RETRY_DELAY": "0.01", "HOME": str(tmp_path)})
    assert result.returncode == 1
    logs = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert logs and all(json.loads(line)["level"] for line in logs), result.stderr
    assert any(json.loads(line)["level"] in ("DEBUG", "debug") for line in logs), result.stderr
