"""Usage errors are one line (``trivy-mirror: error: ...``, exit 2), JSON with ``--log-format json``, and a full
reference given to ``--from`` says which prefix to give (issue 11 item 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRIVY_MIRROR_")}
    return subprocess.run([sys.executable, "-m", "trivy_mirror", *args], capture_output=True, text=True, timeout=60,
                          check=False, env={**environment, "HOME": str(tmp_path), **env})


@pytest.mark.parametrize(("args", "words"), [
    (["sync", "--listn", "x"], ["No such option '--listn'", "(see 'trivy-mirror sync --help')"]),
    (["copy", "a"], ["Missing argument 'TARGET'", "(see 'trivy-mirror copy --help')"]),
    (["bogus"], ["No such command 'bogus'", "(see 'trivy-mirror --help')"]),
    (["serve", "--sync-every", "5x"], ["'--sync-every'", "Go duration"]),
    (["trivy-config", "--mirror", "m", "--format", "xml"], ["'xml' is not one of"]),
])
def test_a_usage_error_is_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    result = run(args, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("trivy-mirror: error: ") and all(word in line for word in words), line


@pytest.mark.parametrize("args", [["--log-format", "json", "sync", "--bogus"],
                                  ["sync", "--bogus", "--log-format=json"]])
def test_with_json_logs_the_error_is_json(tmp_path: Path, args: list[str]) -> None:
    result = run(args, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "error" and "No such option '--bogus'" in record["message"]


def test_json_errors_from_the_environment_too(tmp_path: Path) -> None:
    result = run(["copy", "a"], tmp_path, TRIVY_MIRROR_LOG_FORMAT="json")
    assert result.returncode == 2 and json.loads(result.stderr)["level"] == "error"


@pytest.mark.parametrize(("given", "prefix"), [("ghcr.io/aquasecurity/trivy-db:2", "ghcr.io/aquasecurity"),
                                               ("10.0.0.5:5000/aquasec/trivy-java-db", "10.0.0.5:5000/aquasec"),
                                               ("registry.internal/trivy-checks@sha256:" + "a" * 64,
                                                "registry.internal")])
def test_a_full_reference_to_from_gets_a_hint(tmp_path: Path, given: str, prefix: str) -> None:
    result = run(["sync", "--store", str(tmp_path / "s"), "--from", given], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"trivy-mirror: error: --from {given}: give the prefix") and f"(--from {prefix}:" in line


@pytest.mark.parametrize("prefix", ["http://127.0.0.1:5000", "registry.internal:5000/aquasec", "localhost:5000"])
def test_prefixes_pass(prefix: str) -> None:
    from trivy_mirror.cli.parsing import parse_prefixes

    assert len(parse_prefixes([prefix])) == 1
