"""``trivy-mirror serve`` as a real process on a free loopback port."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.cli import MirrorCli
from support.registry import free_port


class ServeProcess:
    """Start with :meth:`start`; :meth:`stop` sends SIGTERM and returns the exit code."""

    def __init__(self, cli: MirrorCli, args: Sequence[str], *, env: Mapping[str, str] | None = None,
                 ca_file: Path | None = None) -> None:
        self.cli = cli
        self.args = list(args)
        self.env = dict(env or {})
        self.port = free_port()
        self.scheme = "https" if "--tls-cert" in self.args else "http"
        self.context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        self.log_path = cli.home / f"serve-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def pid(self) -> int:
        """The server's process id (it must be running)."""
        assert self._process is not None, "serve is not running"
        return self._process.pid

    def start(self, timeout: float = 20) -> ServeProcess:
        self.cli.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "trivy_mirror", "serve", "--listen", self.host, *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=self.cli.environment(self.env))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"serve exited {self._process.returncode}:\n{self.log()}")
            if self.get("/healthz")[0] == 200:
                return self
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer within {timeout}s:\n{self.log()}")

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.get("/readyz")
            if status == 200:
                return json.loads(body)  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise AssertionError(f"serve not ready within {timeout}s: {self.get('/readyz')}\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServeProcess:
        """Starts the process unless :meth:`start` already did (a second start would leak the first one)."""
        return self if self._process is not None else self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode
