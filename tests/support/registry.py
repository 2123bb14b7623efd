"""A real OCI registry for tests (Debian's ``docker-registry``, CNCF distribution 2.8) and an independent pusher.

:class:`RegistryProcess` runs ``docker-registry serve`` on a free loopback port with its own storage and config,
optionally behind htpasswd (bcrypt) basic auth, and reads back the requests it served from its access log.
:func:`push_artifact` seeds a registry with plain ``http.client`` calls; it shares no code with ``trivy_mirror``
so the product is always checked against something it did not write.
"""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Protocol, Self
from urllib.parse import unquote, urlsplit

import bcrypt

from .trivy_assets import Artifact, sha256_digest

REGISTRY_BINARY = "docker-registry"

Auth = tuple[str, str]
"""Basic-auth credentials: (username, password)."""

# Requests the helper itself sends (readiness probe, log barrier) carry this query parameter and are left out of
# requests_log().
_PROBE_PARAM = "trivy-mirror-test-probe"

# gorilla/handlers' combined log format, which distribution writes to stdout for every request:
# 127.0.0.1 - - [25/Nov/2025:20:14:00 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "trivy/0.76.0"
_ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" (?P<status>\d{3}) ')


class RegistryError(Exception):
    """The registry answered a push request with an unexpected status."""


class AccessEntry(NamedTuple):
    """One request the registry served, from its access log."""

    method: str
    path: str
    query: str
    status: int


class RegistryFactory(Protocol):
    """Starts a fresh, empty registry (the ``registry`` fixture); it is stopped when the test ends."""

    def __call__(self, *, auth: Auth | None = None) -> RegistryProcess: ...


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def basic_auth_header(auth: Auth) -> str:
    """The ``Authorization`` header value for basic auth."""
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


class RegistryProcess:
    """A ``docker-registry serve`` process on ``127.0.0.1:<free port>``, storage under ``workdir``.

    Use as a context manager or call :meth:`start` and :meth:`stop`. ``auth`` turns on htpasswd basic auth
    with that single user. The process is also stopped at interpreter exit if a test forgot to.
    """

    def __init__(self, workdir: Path, *, auth: Auth | None = None, start_timeout: float = 10.0) -> None:
        self.workdir = workdir
        self.auth = auth
        self.port = 0
        self.tls: tuple[Path, Path] | None = None
        """(certificate, key): set before :meth:`start` to serve https instead of plain HTTP."""
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._barriers = 0

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of references (Trivy uses plain HTTP for it)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def pid(self) -> int | None:
        """The registry's process id while it runs."""
        return self._process.pid if self._process else None

    @property
    def storage_dir(self) -> Path:
        """The registry's filesystem storage root."""
        return self.workdir / "storage"

    @property
    def access_log_path(self) -> Path:
        """The registry's stdout: one combined-log-format line per request."""
        return self.workdir / "access.log"

    @property
    def error_log_path(self) -> Path:
        """The registry's stderr: its structured application log."""
        return self.workdir / "registry.log"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the registry and wait until ``GET /v2/`` answers.

        A restart after :meth:`stop` keeps the storage, the port (if still free) and the access log. If the port is
        taken, it retries on another free port.
        """
        if self._process is not None:
            raise RuntimeError("registry already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        ports = [self.port] if self.port else []
        for port in [*ports, free_port(), free_port()][:3]:
            self.port = port
            config = self._write_config()
            with self.access_log_path.open("ab") as out, self.error_log_path.open("ab") as err:
                self._process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=out, stderr=err)
            atexit.register(self.stop)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"docker-registry did not start; its log:\n{self.error_log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        """Stop the registry (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _write_config(self) -> Path:
        """Write the registry config. JSON is valid YAML, so no YAML writer is needed."""
        config: dict[str, object] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage_dir)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.auth is not None:
            htpasswd = self.workdir / "htpasswd"
            # Cost 5 as `htpasswd -B` uses: distribution checks the hash on every request.
            hashed = bcrypt.hashpw(self.auth[1].encode(), bcrypt.gensalt(rounds=5)).decode()
            htpasswd.write_text(f"{self.auth[0]}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "trivy-mirror-test", "path": str(htpasswd)}}
        if self.tls is not None:
            config["http"]["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}  # type: ignore[index]
        path = self.workdir / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                status, _, _ = self._get(f"/v2/?{_PROBE_PARAM}=ready")
            except OSError:
                time.sleep(0.02)
                continue
            return status in (200, 401)
        return False

    def _get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = (http.client.HTTPConnection(self.host, timeout=5) if self.tls is None else
                http.client.HTTPSConnection(self.host, timeout=5, context=ssl._create_unverified_context()))  # noqa: S323
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def access_log(self) -> list[AccessEntry]:
        """Every request the registry served so far, in order, without the helper's own probes.

        The registry logs a request right after handling it, which can be a moment after the client has the
        response. So this first sends a marked request and waits until it is logged: every request answered before
        the call is then in the log.
        """
        self._barriers += 1
        marker = f"{_PROBE_PARAM}=barrier-{self._barriers}"
        self._get(f"/v2/?{marker}")
        deadline = time.monotonic() + 5
        while marker not in self.access_log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        entries = []
        for line in self.access_log_path.read_text().splitlines():
            match = _ACCESS_LINE.match(line)
            if match is None:
                continue
            parts = urlsplit(match["uri"])
            if _PROBE_PARAM not in parts.query:
                entries.append(AccessEntry(match["method"], unquote(parts.path), parts.query, int(match["status"])))
        return entries

    def requests_log(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far, e.g. ``("GET", "/v2/aquasec/trivy-db/blobs/sha256:…")``.

        Take ``len()`` before an action and slice after it to see only that action's requests.
        """
        return [(entry.method, entry.path) for entry in self.access_log()]

    def blob_path(self, digest: str) -> Path:
        """Where the registry stores the blob ``digest`` on disk (to corrupt or delete it behind its back)."""
        algorithm, hexdigest = digest.split(":", 1)
        return self.storage_dir / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"


def _request(
    host: str,
    method: str,
    target: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    auth: Auth | None = None,
    expect: tuple[int, ...],
) -> http.client.HTTPResponse:
    """Send one request to ``host`` and return the response (body already read), or raise RegistryError."""
    all_headers = dict(headers or {})
    if auth is not None:
        all_headers["Authorization"] = basic_auth_header(auth)
    conn = http.client.HTTPConnection(host, timeout=120)
    try:
        conn.request(method, target, body=body, headers=all_headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    if response.status not in expect:
        raise RegistryError(f"{method} {target}: {response.status} {payload[:2000]!r}")
    return response


def push_blob(host: str, repository: str, data: bytes, *, auth: Auth | None = None) -> str:
    """Upload ``data`` as a blob (POST, then a monolithic PUT); return its digest."""
    digest = sha256_digest(data)
    started = _request(host, "POST", f"/v2/{repository}/blobs/uploads/", auth=auth, expect=(202,))
    location = urlsplit(started.getheader("Location") or "")
    separator = "&" if location.query else ""
    target = f"{location.path}?{location.query}{separator}digest={digest}"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    _request(host, "PUT", target, body=data, headers=headers, auth=auth, expect=(201,))
    return digest


def push_manifest(
    host: str, repository: str, reference: str, manifest: bytes, media_type: str, *, auth: Auth | None = None
) -> str:
    """PUT ``manifest`` under ``reference`` (tag or digest) with ``media_type``; return its digest."""
    headers = {"Content-Type": media_type}
    _request(
        host, "PUT", f"/v2/{repository}/manifests/{reference}", body=manifest, headers=headers, auth=auth, expect=(201,)
    )
    return sha256_digest(manifest)


def push_artifact(host: str, repository: str, tag: str, artifact: Artifact, *, auth: Auth | None = None) -> str:
    """Push ``artifact``'s blobs, then its manifest as ``repository:tag`` on ``host``; return the manifest digest."""
    for blob in artifact.blobs.values():
        push_blob(host, repository, blob, auth=auth)
    return push_manifest(host, repository, tag, artifact.manifest, artifact.media_type, auth=auth)

