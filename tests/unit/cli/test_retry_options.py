"""``--retries``, ``--retry-delay`` and ``--read-timeout``: declared once, on every command that reaches a registry,
validated, and turned into the transport's policy and timeouts for both sides alike."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from trivy_mirror.cli import cli, options
from trivy_mirror.cli.config import settings
from trivy_mirror.cli.parsing import connection_options
from trivy_mirror.http.transport import RetryPolicy, Timeouts

RETRYING = re.compile(r"retrying in ([0-9.]+) s")


def _sides(command: str, args: list[str]) -> list[RetryPolicy | Timeouts | None]:
    """(src retry, src timeouts, dest retry, dest timeouts) as ``command`` would run with ``args``."""
    with cli.commands[command].make_context(command, args):
        sides = [connection_options(None, side, False, None) for side in ("src", "dest")]
    return [value for side in sides for value in (side.retry, side.timeouts)]


def test_defaults_are_the_transports() -> None:
    policy = RetryPolicy()
    transport = (policy.attempts - 1, policy.backoff_base, policy.backoff_max, Timeouts().read)
    assert transport == (options.DEFAULT_RETRIES, options.DEFAULT_RETRY_DELAY, options.BACKOFF_MAX,
                         options.DEFAULT_READ_TIMEOUT)
    assert _sides("sync", []) == [policy, Timeouts()] * 2


def test_flags_become_the_policy_of_both_sides() -> None:
    retry, timeouts, *dest = _sides("sync", ["--retries", "0", "--retry-delay", "2", "--read-timeout", "7.5"])
    assert retry == RetryPolicy(attempts=1, backoff_base=2.0, retry_after_floor=0.5)
    assert timeouts == Timeouts(read=7.5)
    assert dest == [retry, timeouts]


def test_a_short_delay_lowers_the_retry_after_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIVY_MIRROR_RETRY_DELAY", "0.05")
    monkeypatch.setenv("TRIVY_MIRROR_RETRIES", "2")
    monkeypatch.setenv("TRIVY_MIRROR_READ_TIMEOUT", "1")
    retry, timeouts, *_ = _sides("copy", ["a", "b"])
    assert retry == RetryPolicy(attempts=3, backoff_base=0.05, retry_after_floor=0.05)
    assert timeouts == Timeouts(read=1.0)


def test_every_command_reaching_a_registry_has_them() -> None:
    by_key = {setting.key: setting for setting in settings(cli)}
    reaching = {*by_key["src-insecure"].commands, *by_key["dest-insecure"].commands}  # options.transport's
    assert {"sync", "copy", "serve", "import"} <= reaching
    for key in ("retries", "retry-delay", "read-timeout"):
        assert set(by_key[key].commands) == reaching
        assert by_key[key].variables == ("TRIVY_MIRROR_" + key.upper().replace("-", "_"),)


@pytest.mark.parametrize(("args", "message"), [
    (["--retries", "21"], "21 is not in the range 0<=x<=20"),
    (["--retries", "-1"], "-1 is not in the range"),
    (["--retries", "two"], "'two' is not a valid integer"),
    (["--retry-delay", "0"], "0 is not a positive, finite number of seconds"),
    (["--retry-delay", "-0.5"], "-0.5 is not a positive, finite number of seconds"),
    (["--retry-delay", "31"], "31 is more than 30 seconds"),
    (["--read-timeout", "nan"], "nan is not a positive, finite number of seconds"),
    (["--read-timeout", "inf"], "inf is not a positive, finite number of seconds"),
    (["--read-timeout", "soon"], "'soon' is not a valid float"),
])
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(click.BadParameter, match=re.escape(message)):
        cli.commands["sync"].make_context("sync", args)


def _sync_a_dead_port(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trivy_mirror", "sync", "--store", str(tmp_path / "s"), "--assets", "db",
         "--from", "127.0.0.1:9/aquasec", "-v", *flags],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "HOME": str(tmp_path)})


def test_a_bad_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _sync_a_dead_port(tmp_path, "--retry-delay", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "trivy-mirror: error: Invalid value for '--retry-delay': 0 is not a positive, finite number of seconds "
        "(see 'trivy-mirror sync --help')"]


def test_no_retry_fails_after_one_attempt(tmp_path: Path) -> None:
    result = _sync_a_dead_port(tmp_path, "--retries", "0")
    assert result.returncode == 1
    assert "retrying" not in result.stderr
    assert "cannot reach 127.0.0.1:9: connection refused (GET /v2/)" in result.stderr


def test_retry_delay_sets_the_waits(tmp_path: Path) -> None:
    result = _sync_a_dead_port(tmp_path, "--retries", "2", "--retry-delay", "0.05")
    assert result.returncode == 1
    waits = [float(wait) for wait in RETRYING.findall(result.stderr)]
    assert len(waits) == 2, result.stderr  # the default delay (0.5 s) would log 0.2 s or more
    assert all(wait <= 0.1 for wait in waits), result.stderr
    assert "(GET /v2/, 3 attempts)" in result.stderr
