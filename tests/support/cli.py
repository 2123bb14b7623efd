"""Run ``trivy-mirror`` as a user does: a real process, with its home, config and state kept in a tmp dir."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class MirrorCli:
    """A sandboxed ``trivy-mirror``: ``HOME`` and the XDG dirs point into ``home``."""

    home: Path

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TRIVY_MIRROR_", "DOCKER_", "XDG_"))}
        base.pop("REGISTRY_AUTH_FILE", None)
        base.update({
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_STATE_HOME": str(self.home / "state"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
        })
        base.update(env or {})
        return base

    def command(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "trivy_mirror", *args]

    def run(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 180,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.run(self.command(args), capture_output=True, text=True, env=self.environment(env),
                              timeout=timeout, input=input, check=False)

    def run_bytes(self, args: Sequence[str], stdin: bytes | None = None,
                  timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        """A run whose stdin/stdout carry binary data (a bundle through ``-``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.run(self.command(args), capture_output=True, env=self.environment(), timeout=timeout,
                              input=stdin, check=False)

    def pipe(self, left: Sequence[str], right: Sequence[str],
             timeout: float = 180) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
        """``trivy-mirror LEFT | trivy-mirror RIGHT`` through a real pipe."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        with subprocess.Popen(self.command(left), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as first:
            assert first.stdout is not None
            second = subprocess.run(self.command(right), stdin=first.stdout, capture_output=True, env=env,
                                    timeout=timeout, check=False)
            first.stdout.close()
            first_err = first.stderr.read() if first.stderr else b""
            first.wait(timeout)
        return subprocess.CompletedProcess(left, first.returncode, b"", first_err), second

    def json(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, expect: int = 0) -> Any:
        result = self.run([*args, "--json"], env=env)
        assert result.returncode == expect, f"exit {result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}"
        return json.loads(result.stdout)


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The failure contract: the given exit code, no traceback, and one ``trivy-mirror: error:`` line."""
    assert result.returncode == code, f"exit {result.returncode}\nstderr:{result.stderr}"
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("trivy-mirror: error:")]
    assert len(errors) >= 1, result.stderr
    return errors[0]


def kill_at_random(cli: MirrorCli, args: Sequence[str], env: Mapping[str, str], window: float,
                   rng: random.Random) -> None:
    """Start ``trivy-mirror ARGS`` and SIGKILL it at a random moment between 0.2 s and ``window`` s in: a crash
    anywhere in its work (the resilience suites then check what it left)."""
    process = subprocess.Popen(cli.command(args), env=cli.environment(env), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, window))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
