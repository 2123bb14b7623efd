"""VEX repositories end to end: ``trivy-mirror sync --assets vex --vex-from NAME=URL`` from a local upstream (GitHub
and flat shapes), served by the VEX routes on loopback, consumed by a real Trivy with the upstream stopped.

The sync runs through the CLI as a user runs it; the serving side is ``add_vex_routes`` on an aiohttp server with
an access log, so the test can count Trivy's requests (HEAD then GET, both with ``If-None-Match``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryProcess
from support.trivy import TrivySandbox, vuln_ids
from support.trivy_assets import PIP_CVE, AssetSet
from support.vex_repo import (
    DOCUMENT,
    UpstreamVex,
    bomb_tarball,
    flat_tarball,
    github_tarball,
    manifest,
    repository_files,
    zip_archive,
)
from trivy_mirror.store import Store
from trivy_mirror.vex import add_vex_routes

pytestmark = pytest.mark.e2e

GH_ARCHIVE = "/gh/archive/refs/heads/main.tar.gz"
CODELOAD = "/codeload/gh/tar.gz/refs/heads/main"
FLAT_ARCHIVE = "/flat/vex-repository.zip"


@pytest.fixture
async def vex_upstream() -> AsyncIterator[UpstreamVex]:
    """Two repositories: ``/gh`` as GitHub serves VEX Hub (an archive URL redirecting to codeload, a top-level
    ``vexhub-main/`` directory, hence ``//vexhub-main``) and ``/flat`` (a zip with index.json at its root)."""
    server = await UpstreamVex().start()
    server.files["/gh/.well-known/vex-repository.json"] = manifest(f"{server.url}{GH_ARCHIVE}//vexhub-main")
    server.redirects[GH_ARCHIVE] = f"{server.url}{CODELOAD}"
    server.files[CODELOAD] = github_tarball(repository_files())
    server.files["/flat/.well-known/vex-repository.json"] = manifest(f"{server.url}{FLAT_ARCHIVE}")
    server.files[FLAT_ARCHIVE] = zip_archive(repository_files())
    yield server
    await server.stop()


@dataclass
class MirrorServer:
    """The VEX routes over a store on a loopback port, logging (method, path, status, If-None-Match)."""

    url: str
    log: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    def archive_requests(self, name: str, since: int = 0) -> list[tuple[str, int, str | None]]:
        return [(m, s, inm) for m, p, s, inm in self.log[since:] if p == f"/vex/{name}/archive.tar.gz"]

    async def etag(self, name: str) -> str:
        """The ETag the mirror serves for ``name`` now (through HEAD, as Trivy asks)."""
        async with aiohttp.ClientSession() as session, session.head(f"{self.url}/vex/{name}/archive.tar.gz") as r:
            assert r.status == 200
            return r.headers["ETag"]


@asynccontextmanager
async def serving(store: Path) -> AsyncIterator[MirrorServer]:
    log: list[tuple[str, str, int, str | None]] = []

    class AccessLog(AbstractAccessLogger):
        """Called once the response is complete, so FileResponse's own 304 and 206 answers are seen."""

        def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
            log.append((request.method, request.path, response.status, request.headers.get("If-None-Match")))

    app = web.Application()
    add_vex_routes(app, Store(store), None)
    runner = web.AppRunner(app, access_log_class=AccessLog)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield MirrorServer(f"http://127.0.0.1:{runner.addresses[0][1]}", log)
    finally:
        await runner.cleanup()


async def sync_vex_cli(mirror: MirrorCli, store: Path, *vex_from: str) -> subprocess.CompletedProcess[str]:
    """``trivy-mirror sync --assets vex --vex-from ... --store S --json`` (a subprocess: the upstream is served by
    this event loop, so the wait runs in a thread)."""
    args = ["sync", "--assets", "vex", "--store", str(store), "--json"]
    for value in vex_from:
        args += ["--vex-from", value]
    return await asyncio.to_thread(mirror.run, args)


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    document = json.loads(result.stdout)
    return {entry["reference"]: entry["outcome"] for entry in document["results"]}


def use_mirror(trivy: TrivySandbox, url: str) -> None:
    """The repository.yaml the README documents: Trivy's default (GitHub) disabled, the mirror enabled."""
    config = trivy.home / ".local" / "share" / ".trivy" / "vex" / "repository.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("repositories:\n"
                      "  - name: default\n    url: https://github.com/aquasecurity/vexhub\n    enabled: false\n"
                      f"  - name: mirror\n    url: {url}\n    enabled: true\n")


async def trivy_run(trivy: TrivySandbox, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    result = await asyncio.to_thread(trivy.run, args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


async def scan_requirements(trivy: TrivySandbox, upstream: RegistryProcess, assets: AssetSet) -> dict[str, Any]:
    return await asyncio.to_thread(trivy.scan, [
        "fs", "--scanners", "vuln", "--db-repository", f"{upstream.host}/aquasec/trivy-db:2", "--vex", "repo",
        "--show-suppressed", str(assets.targets.requirements_dir)])


def suppressed(report: dict[str, Any]) -> dict[str, str]:
    """VulnerabilityID -> VEX status of every finding the VEX repository suppressed."""
    return {finding["Finding"]["VulnerabilityID"]: finding["Status"]
            for result in report.get("Results") or []
            for finding in result.get("ExperimentalModifiedFindings") or []}


def expire_trivy_cache(trivy: TrivySandbox) -> dict[str, Any]:
    """Make Trivy's next update check due now (as if update_interval had passed); its ETags are kept."""
    path = trivy.cache_dir / "vex" / "repositories" / "mirror" / "cache.json"
    cache: dict[str, Any] = json.loads(path.read_text())
    cache["UpdatedAt"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(cache))
    return cache


@pytest.mark.parametrize("name", ["gh", "flat"])
async def test_trivy_suppresses_the_planted_cve_from_the_mirror_with_upstream_stopped(
    name: str, mirror: MirrorCli, vex_upstream: UpstreamVex, trivy: TrivySandbox, upstream: RegistryProcess,
    assets: AssetSet, tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    result = await sync_vex_cli(mirror, store, f"{name}={vex_upstream.url}/{name}")
    assert result.returncode == 0, result.stderr
    assert outcomes(result) == {f"vex/{name}": "updated"}
    await vex_upstream.stop()

    async with serving(store) as server:
        use_mirror(trivy, f"{server.url}/vex/{name}")
        await trivy_run(trivy, ["vex", "repo", "download"])
        assert (trivy.cache_dir / "vex" / "repositories" / "mirror" / "0.1" / DOCUMENT).is_file()
        report = await scan_requirements(trivy, upstream, assets)
    assert PIP_CVE not in vuln_ids(report)
    assert suppressed(report) == {PIP_CVE: "not_affected"}
    [(head, head_status, _), (get, get_status, _)] = server.archive_requests(name)
    assert (head, head_status, get) == ("HEAD", 200, "GET") and get_status in (200, 206)


async def test_trivy_gets_304_until_a_changed_upstream_is_synced(
    mirror: MirrorCli, vex_upstream: UpstreamVex, trivy: TrivySandbox, upstream: RegistryProcess, assets: AssetSet,
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    assert (await sync_vex_cli(mirror, store, f"gh={vex_upstream.url}/gh")).returncode == 0
    async with serving(store) as server:
        use_mirror(trivy, f"{server.url}/vex/gh")
        await trivy_run(trivy, ["vex", "repo", "download"])
        first_etag = await server.etag("gh")
        assert expire_trivy_cache(trivy)["ETags"] == {f"{server.url}/vex/gh/archive.tar.gz": first_etag}

        since = len(server.log)
        await trivy_run(trivy, ["vex", "repo", "download"])
        assert server.archive_requests("gh", since) == [("HEAD", 304, first_etag), ("GET", 304, first_etag)]

        # The mirror's own re-sync of an unchanged upstream costs one conditional GET answered 304.
        upstream_since = len(vex_upstream.log)
        result = await sync_vex_cli(mirror, store, f"gh={vex_upstream.url}/gh")
        assert outcomes(result) == {"vex/gh": "unchanged"}
        assert [(e.method, e.status) for e in vex_upstream.log[upstream_since:] if e.path == CODELOAD] == \
            [("GET", 304)]

        vex_upstream.files[CODELOAD] = github_tarball(
            repository_files("under_investigation", updated_at=datetime(2026, 3, 1, tzinfo=UTC)))
        result = await sync_vex_cli(mirror, store, f"gh={vex_upstream.url}/gh")
        assert outcomes(result) == {"vex/gh": "updated"}
        second_etag = await server.etag("gh")
        assert second_etag != first_etag

        expire_trivy_cache(trivy)
        since = len(server.log)
        await trivy_run(trivy, ["vex", "repo", "download"])
        statuses = [(m, s) for m, s, _ in server.archive_requests("gh", since)]
        assert statuses[0] == ("HEAD", 200) and statuses[-1][1] in (200, 206)
        report = await scan_requirements(trivy, upstream, assets)
    assert PIP_CVE in vuln_ids(report)  # under_investigation does not suppress
    assert suppressed(report) == {}


def hostile_index() -> bytes:
    return json.dumps({"updated_at": "2026-02-01T00:00:00Z",
                       "packages": [{"id": "pkg:pypi/requests", "location": "../../../etc/passwd.json"}]}).encode()


HOSTILE = {
    "traversal": (lambda: github_tarball(repository_files(), raw={"vexhub-main/../../escape.json": b"{}"}),
                  "leaves the archive"),
    "absolute path": (lambda: github_tarball(repository_files(), raw={"/tmp/trivy-mirror-absolute.json": b"{}"}),
                      "absolute member name"),
    "symlink escape": (lambda: github_tarball(repository_files(),
                                              symlinks={"vexhub-main/pkg/x.json": "../../../../etc/passwd"}),
                       "points outside the archive"),
    "decompression bomb": (bomb_tarball, "a decompression bomb"),
    "index.json pointing outside": (lambda: github_tarball({**repository_files(), "index.json": hostile_index()}),
                                    "points outside the repository"),
    "invalid JSON document": (lambda: github_tarball({**repository_files(), DOCUMENT: b"{not json"}),
                              f"VEX document {DOCUMENT} is not valid JSON"),
    "flat archive behind //vexhub-main": (lambda: flat_tarball(repository_files()),
                                          "//vexhub-main is not in the archive"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_upstream_is_refused_and_the_previous_version_served(
    case: str, mirror: MirrorCli, vex_upstream: UpstreamVex, tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    assert (await sync_vex_cli(mirror, store, f"gh={vex_upstream.url}/gh")).returncode == 0
    async with serving(store) as server:
        served = await server.etag("gh")
        build, message = HOSTILE[case]
        vex_upstream.files[CODELOAD] = build()
        result = await asyncio.to_thread(mirror.run, ["sync", "--assets", "vex", "--store", str(store),
                                                      "--vex-from", f"gh={vex_upstream.url}/gh"])
        line = assert_one_error_line(result)
        assert line.startswith("trivy-mirror: error: vex vex/gh: kept the current version: ")
        assert message in line
        assert await server.etag("gh") == served
        assert not list((store / ".tmp").iterdir())
        checked = await asyncio.to_thread(mirror.run, ["status", "--store", str(store), "--json"])
        [row] = [row for row in json.loads(checked.stdout)["assets"] if row["asset"] == "vex"]
        assert row["digest"] == served.strip('"') and row["last_result"] == "refused"
        assert row["last_message"].startswith("kept the current") and checked.returncode in (3, 4)


async def test_sync_off_a_terminal_logs_each_archive_download(mirror: MirrorCli, vex_upstream: UpstreamVex,
                                                              tmp_path: Path) -> None:
    """A VEX archive download is a transfer as a layer is (a start line, ``copied`` at the end); an unchanged
    upstream (a 304) is none."""
    vex_upstream.chunked = True  # as codeload sends it: no Content-Length, so no size ahead
    args = ["sync", "--assets", "vex", "--store", str(tmp_path / "store"), "--vex-from", f"gh={vex_upstream.url}/gh"]
    first = await asyncio.to_thread(mirror.run, args)
    assert first.returncode == 0, first.stderr
    name = f"vex/gh ({vex_upstream.url}{GH_ARCHIVE}//vexhub-main)"
    size = len(vex_upstream.files[CODELOAD]) / 1e6
    assert f"copying {name}\n" in first.stderr
    assert f"copied {name}: {size:.1f} MB in " in first.stderr
    again = await asyncio.to_thread(mirror.run, args)
    assert again.returncode == 0 and "unchanged" in again.stderr and "copying" not in again.stderr, again.stderr
