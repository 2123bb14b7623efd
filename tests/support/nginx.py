"""A real nginx (Debian's nginx-light) on a free loopback port, configured from deploy/static's template.

The template is the http-context file a user drops into /etc/nginx/conf.d/; the test wraps it in a minimal main
config of its own (pid, logs and temp paths in the work directory, one worker) and replaces ``@TREE@`` and
``@LISTEN@`` exactly as the template's header tells users to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from http.client import HTTPMessage
from pathlib import Path
from types import TracebackType

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "static" / "trivy-mirror-static.conf"

MAIN_CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    include {work}/trivy-mirror-static.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Nginx:
    """``nginx`` serving ``tree``; the port is chosen at construction, so a sync can name the URL first."""

    def __init__(self, tree: Path, work: Path) -> None:
        self.tree = tree
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        site = TEMPLATE.read_text().replace("@TREE@", str(self.tree)).replace("@LISTEN@", self.host)
        (self.work / "trivy-mirror-static.conf").write_text(site)
        # As root, workers would run as nobody and could not read the test's private tmp directories.
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = self.work / "nginx.conf"
        main.write_text(MAIN_CONFIG.format(user=user, work=self.work))
        return main

    def start(self) -> Nginx:
        main = self.write_config()
        check = subprocess.run(["nginx", "-t", "-q", "-c", str(main), "-p", str(self.work), "-e",
                                str(self.work / "error.log")], capture_output=True, text=True, check=False)
        assert check.returncode == 0, f"nginx -t failed: {check.stderr}"
        self._process = subprocess.Popen(["nginx", "-c", str(main), "-p", str(self.work), "-e",
                                          str(self.work / "error.log")], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self._process.poll() is None, f"nginx exited: {self.errors()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not listen on {self.host}: {self.errors()}")

    def reload(self) -> None:
        """SIGHUP: new workers with the regenerated maps (old ones finish their requests)."""
        assert self._process is not None
        before = self._worker_pids()
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            workers = self._worker_pids()
            if workers and not workers & before:
                return
            time.sleep(0.05)
        raise AssertionError(f"nginx did not reload: {self.errors()}")

    def _worker_pids(self) -> set[int]:
        assert self._process is not None
        result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self._process.pid)], capture_output=True,
                                text=True, check=False)
        return {int(pid) for pid in result.stdout.split()}

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGQUIT)
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._process = None

    def errors(self) -> str:
        try:
            return (self.work / "error.log").read_text()[-3000:]
        except OSError:
            return ""

    def get(self, path: str, method: str = "GET") -> tuple[int, HTTPMessage, bytes]:
        """(status, headers, body) of one request; an HTTP error status is returned, not raised."""
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
