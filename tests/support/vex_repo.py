"""Real VEX repositories for tests, and a local upstream that serves them the way GitHub and web servers do.

The content is what TRIVY-ASSETS.md section 13 describes: ``index.json`` maps ``pkg:pypi/requests`` to an
OpenVEX document that marks the planted CVE-2099-0001 ``not_affected`` for ``pkg:pypi/requests@1.0.0``, so
``trivy fs --vex repo --show-suppressed`` of the requirements target lists it under
``ExperimentalModifiedFindings``. Archives come in the GitHub shape (a ``git archive`` tarball: a pax global
header and a top-level ``REPO-BRANCH/`` directory, used with ``//REPO-BRANCH``) and in the flat shape.

Like ``trivy_assets``, this module does not import ``trivy_mirror``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from .trivy_assets import PIP_CVE, PIP_PACKAGE

PACKAGE_ID = f"pkg:pypi/{PIP_PACKAGE}"
PRODUCT = f"{PACKAGE_ID}@1.0.0"
DOCUMENT = f"pkg/pypi/{PIP_PACKAGE}/vex.json"
UPDATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def openvex(status: str = "not_affected", cve: str = PIP_CVE, product: str = PRODUCT) -> bytes:
    """An OpenVEX document with one statement about ``cve`` in ``product``."""
    statement: dict[str, object] = {"vulnerability": {"name": cve}, "products": [{"@id": product}], "status": status}
    if status == "not_affected":
        statement["justification"] = "vulnerable_code_not_in_execute_path"
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": f"https://example.invalid/vex/{PIP_PACKAGE}",
        "author": "trivy-mirror tests",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [statement],
    }
    return json.dumps(document, indent=2).encode()


def repository_files(status: str = "not_affected", updated_at: datetime = UPDATED_AT,
                     extra: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """The files of a VEX repository: ``index.json`` plus the requests document (and ``extra``)."""
    index = {"updated_at": updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "packages": [{"id": PACKAGE_ID, "location": DOCUMENT, "format": "openvex"}]}
    files = {"index.json": json.dumps(index, indent=2).encode(), DOCUMENT: openvex(status),
             "README.md": b"# test VEX repository\n"}
    files.update(extra or {})
    return files


def manifest(*locations: str, interval: str = "24h", name: str = "Test VEX") -> bytes:
    """``vex-repository.json`` with spec 0.1 and the given locations, shaped like VEX Hub's."""
    document = {"name": name, "description": "VEX repository for trivy-mirror tests",
                "versions": [{"spec_version": "0.1", "locations": [{"url": url} for url in locations],
                              "update_interval": interval,
                              "repository_specific": {"location": {"url": "oci://example.invalid/vex-db:0"}}}]}
    return json.dumps(document, indent=2).encode()


def _tar(files: Mapping[str, bytes], top: str | None, mtime: int, raw: Mapping[str, bytes] | None = None,
         symlinks: Mapping[str, str] | None = None) -> bytes:
    """A tar of ``files`` under ``top/`` (with directory entries, as git archive writes them) or flat; ``raw``
    members and ``symlinks`` (name -> target) follow with their names exactly as given."""
    paths = {f"{top}/{name}" if top else name: data for name, data in files.items()}
    directories = {path.rsplit("/", depth)[0] for path in paths for depth in range(1, path.count("/") + 1)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if top is not None:
            tar.pax_headers = {"comment": "3cf57e5f0a3a2079194d22352c11f6a259c2ea03"}  # the commit, as git writes it
        for path in sorted(directories | paths.keys()):
            info = tarfile.TarInfo(path)
            info.mtime = mtime
            if path in paths:
                info.size, info.mode = len(paths[path]), 0o664
                tar.addfile(info, io.BytesIO(paths[path]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o775
                tar.addfile(info)
        for name, data in (raw or {}).items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, mtime
            tar.addfile(info)
    return buffer.getvalue()


def github_tarball(files: Mapping[str, bytes], top: str = "vexhub-main", mtime: int = 1_767_323_045, *,
                   raw: Mapping[str, bytes] | None = None, symlinks: Mapping[str, str] | None = None) -> bytes:
    """What ``github.com/OWNER/REPO/archive/refs/heads/main.tar.gz`` serves: ``top/`` holds the repository.

    ``raw`` and ``symlinks`` add members by exact name, for hostile variants."""
    return gzip.compress(_tar(files, top, mtime, raw, symlinks), mtime=0)


def flat_tarball(files: Mapping[str, bytes], mtime: int = 1_767_323_045) -> bytes:
    """A tar.gz with ``index.json`` at its root."""
    return gzip.compress(_tar(files, None, mtime), mtime=0)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def bomb_tarball(size: int = 100 << 20, top: str = "vexhub-main") -> bytes:
    """A GitHub-shaped repository whose ``zeros.json`` unpacks to ``size`` bytes (about 1000:1), built in
    constant memory."""
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as stream, \
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in repository_files().items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(f"{top}/zeros.json")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size)))
    return packed.getvalue()


def zip_archive(files: Mapping[str, bytes], top: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


@dataclass
class Logged:
    method: str
    path: str
    status: int
    if_none_match: str | None


@dataclass
class UpstreamVex:
    """An HTTP server on 127.0.0.1 serving fixed files with ETags (sha256 of the body) and 304s, and logging
    every request. Start it with ``await upstream.start()`` in the test's event loop."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    """Paths answered with a 302 to another URL (as github.com/.../archive/... redirects to codeload)."""
    log: list[Logged] = field(default_factory=list)
    etags: bool = True
    chunked: bool = False
    """Send bodies without Content-Length (chunked), as GitHub's archive downloads do."""
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> UpstreamVex:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def requests(self, path: str, since: int = 0) -> list[Logged]:
        return [entry for entry in self.log[since:] if entry.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        data = self.files.get(path)
        inm = request.headers.get("If-None-Match")
        if path in self.redirects:
            response = web.Response(status=302, headers={"Location": self.redirects[path]})
        elif data is None:
            response = web.Response(status=404, text="not found")
        elif request.method not in ("GET", "HEAD"):
            response = web.Response(status=405)
        else:
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            headers = {"ETag": etag} if self.etags else {}
            if self.etags and inm == etag:
                response = web.Response(status=304, headers=headers)
            elif self.chunked and request.method == "GET":
                self.log.append(Logged(request.method, path, 200, inm))
                return await _chunked(request, data, headers)
            else:
                response = web.Response(body=data, headers=headers, content_type="application/octet-stream")
        self.log.append(Logged(request.method, path, response.status, inm))
        return response


async def _chunked(request: web.Request, data: bytes, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={**headers, "Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(data)
    await response.write_eof()
    return response


class VexUpstreamThread:
    """An :class:`UpstreamVex` on its own event loop in a thread, for a module of synchronous tests."""

    def __init__(self) -> None:
        self.server = UpstreamVex()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> UpstreamVex:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(30)
        return self.server

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
