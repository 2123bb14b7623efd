"""``/vex/NAME/...``: the rewritten manifest, the archive with its digest ETag, 304s, ranges, auth hook, 404s."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from support.vex_repo import UpstreamVex, github_tarball, repository_files
from trivy_mirror.catalog.result import TagResult
from trivy_mirror.store import Store
from trivy_mirror.vex import add_vex_routes
from trivy_mirror.vex.serve import Authorize
from trivy_mirror.vex.storage import VexRepository, VexState

from .conftest import ARCHIVE, sync

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client(store: Store) -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(public_url: str | None = None, authorize: Authorize | None = None) -> Client:
        app = web.Application()
        add_vex_routes(app, store, public_url, authorize=authorize)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def synced(store: Store, vex_upstream: UpstreamVex) -> TagResult:
    result = await sync(store, vex_upstream)
    assert result.outcome == "updated"
    return result


async def test_manifest_names_one_stable_location(make_client: MakeClient, synced: TagResult) -> None:
    client = await make_client()
    response = await client.get("/vex/gh/.well-known/vex-repository.json")
    assert response.status == 200 and response.content_type == "application/json"
    base = f"http://{client.host}:{client.port}"
    assert await response.json() == {
        "name": "Test VEX", "description": "VEX repository for trivy-mirror tests",
        "versions": [{"spec_version": "0.1", "locations": [{"url": f"{base}/vex/gh/archive.tar.gz"}],
                      "update_interval": "24h"}]}
    head = await client.head("/vex/gh/.well-known/vex-repository.json")
    assert head.status == 200 and await head.read() == b""


async def test_a_forged_host_never_reaches_the_manifest(make_client: MakeClient, synced: TagResult) -> None:
    client = await make_client()
    for forged in ('evil.example"/x', "evil.example/steal?", "user@evil.example"):
        response = await client.get("/vex/gh/.well-known/vex-repository.json", headers={"Host": forged})
        url = (await response.json())["versions"][0]["locations"][0]["url"]
        assert url == f"http://127.0.0.1:{client.port}/vex/gh/archive.tar.gz", (forged, url)


async def test_manifest_uses_the_public_url(make_client: MakeClient, synced: TagResult) -> None:
    client = await make_client("https://mirror.example.com/trivy/")
    document = await (await client.get("/vex/gh/.well-known/vex-repository.json")).json()
    assert document["versions"][0]["locations"] == [{"url": "https://mirror.example.com/trivy/vex/gh/archive.tar.gz"}]


async def test_archive_has_a_digest_etag_and_honours_conditionals(make_client: MakeClient, store: Store,
                                                                  synced: TagResult) -> None:
    client = await make_client()
    assert synced.digest is not None
    etag = f'"{synced.digest}"'
    response = await client.get("/vex/gh/archive.tar.gz")
    body = await response.read()
    assert response.status == 200
    assert response.headers["ETag"] == etag
    assert response.headers["Content-Type"] == "application/gzip"
    assert int(response.headers["Content-Length"]) == len(body) == synced.size
    assert response.headers["Last-Modified"]
    assert response.headers["Accept-Ranges"] == "bytes"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as tar:
        assert "index.json" in tar.getnames()

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        for method in ("GET", "HEAD"):
            answer = await client.request(method, "/vex/gh/archive.tar.gz", headers={"If-None-Match": header})
            assert answer.status == 304, (method, header)
            assert answer.headers["ETag"] == etag and await answer.read() == b""
    stale = await client.get("/vex/gh/archive.tar.gz", headers={"If-None-Match": '"sha256:0000"'})
    assert stale.status == 200 and await stale.read() == body
    head = await client.head("/vex/gh/archive.tar.gz")
    assert head.status == 200 and head.headers["ETag"] == etag and int(head.headers["Content-Length"]) == len(body)


async def test_ranges_and_if_match(make_client: MakeClient, synced: TagResult) -> None:
    client = await make_client()
    whole = await (await client.get("/vex/gh/archive.tar.gz")).read()
    partial = await client.get("/vex/gh/archive.tar.gz", headers={"Range": "bytes=0-"})  # what go-getter sends
    assert partial.status == 206 and await partial.read() == whole
    assert partial.headers["ETag"] == f'"{synced.digest}"'
    tail = await client.get("/vex/gh/archive.tar.gz", headers={"Range": "bytes=10-19"})
    assert tail.status == 206 and await tail.read() == whole[10:20]
    matching = await client.get("/vex/gh/archive.tar.gz", headers={"If-Match": f'"{synced.digest}"'})
    assert matching.status == 200
    other = await client.get("/vex/gh/archive.tar.gz", headers={"If-Match": '"sha256:0000"'})
    assert other.status == 412


async def test_new_version_appears_behind_the_same_url(make_client: MakeClient, store: Store,
                                                       vex_upstream: UpstreamVex, synced: TagResult) -> None:
    client = await make_client()
    assert (await client.get("/vex/gh/archive.tar.gz")).headers["ETag"] == f'"{synced.digest}"'
    vex_upstream.files[ARCHIVE] = github_tarball(repository_files(updated_at=datetime(2026, 2, 1, tzinfo=UTC)))
    updated = await sync(store, vex_upstream)
    assert updated.outcome == "updated" and updated.digest != synced.digest
    answer = await client.get("/vex/gh/archive.tar.gz", headers={"If-None-Match": f'"{synced.digest}"'})
    assert answer.status == 200 and answer.headers["ETag"] == f'"{updated.digest}"'


@pytest.mark.parametrize("path", [
    "/vex/nope/archive.tar.gz", "/vex/nope/.well-known/vex-repository.json", "/vex/GH/archive.tar.gz",
    "/vex/../gh/archive.tar.gz", "/vex/gh/main.tar.gz", "/vex/gh/vex-repository.json",
])
async def test_unknown_paths_are_404(make_client: MakeClient, synced: TagResult, path: str) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == 404


async def test_nothing_synced_yet_is_404_with_a_reason(make_client: MakeClient, store: Store) -> None:
    client = await make_client()
    response = await client.get("/vex/vexhub/archive.tar.gz")
    assert response.status == 404
    assert await response.json() == {"error": "VEX repository 'vexhub' is not in this mirror"}


async def test_authorize_hook_runs_before_anything_is_read(make_client: MakeClient, synced: TagResult) -> None:
    seen: list[str] = []

    async def authorize(request: web.Request) -> web.StreamResponse | None:
        seen.append(request.path)
        if request.headers.get("Authorization") == "Bearer good":
            return None
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="trivy-mirror"'})

    client = await make_client(authorize=authorize)
    for path in ("/vex/gh/.well-known/vex-repository.json", "/vex/gh/archive.tar.gz", "/vex/nope/archive.tar.gz"):
        assert (await client.get(path)).status == 401
    assert (await client.get("/vex/gh/archive.tar.gz", headers={"Authorization": "Bearer good"})).status == 200
    assert len(seen) == 4
    document = await (await client.get("/vex/gh/.well-known/vex-repository.json",
                                       headers={"Authorization": "Bearer good"})).read()
    assert json.loads(document)["name"] == "Test VEX"


@pytest.mark.parametrize(("agent", "status"), [
    ("trivy/0.67.2 (linux; amd64)", 200), ("trivy/0.72.9", 200), ("trivy/0.59.1", 200),
    ("Go-http-client/1.1", 200),  # Trivy 0.59's VEX requests
    ("trivy/0.73.0", 304), ("trivy/0.76.0 go-getter", 304), ("curl/8.5.0", 304), (None, 304),
])
async def test_trivy_before_0_73_never_gets_a_304_on_the_archive(make_client: MakeClient, synced: TagResult,
                                                                 agent: str | None, status: int) -> None:
    """Trivy < 0.73 empties its VEX cache before the conditional GET (trivy#10958): a 304 would leave it none."""
    client = await make_client()
    headers = {"If-None-Match": f'"{synced.digest}"', **({"User-Agent": agent} if agent else {})}
    for method in ("GET", "HEAD"):
        answer = await client.request(method, "/vex/gh/archive.tar.gz", headers=headers)
        assert answer.status == status, (method, agent)
        assert answer.headers["ETag"] == f'"{synced.digest}"'
        if method == "GET" and status == 200:
            assert len(await answer.read()) == synced.size


async def test_listing_names_the_served_repositories(make_client: MakeClient, store: Store,
                                                     vex_upstream: UpstreamVex) -> None:
    client = await make_client("https://mirror.example.com/trivy/")
    assert await (await client.get("/vex/")).json() == {"repositories": []}
    await sync(store, vex_upstream, name="zeta")
    await sync(store, vex_upstream, name="alpha")
    await sync(store, vex_upstream, name="broken", path="/missing")  # attempted, never served
    listing = await client.get("/vex/")
    assert listing.status == 200 and listing.content_type == "application/json"
    assert await listing.json() == {"repositories": [
        {"name": "alpha", "url": "https://mirror.example.com/trivy/vex/alpha"},
        {"name": "zeta", "url": "https://mirror.example.com/trivy/vex/zeta"},
    ]}


async def test_listing_goes_through_the_authorize_hook(make_client: MakeClient, synced: TagResult) -> None:
    async def authorize(request: web.Request) -> web.StreamResponse | None:
        return None if request.headers.get("Authorization") == "Bearer good" else web.Response(status=401)

    client = await make_client(authorize=authorize)
    assert (await client.get("/vex/")).status == 401
    document = await (await client.get("/vex/", headers={"Authorization": "Bearer good"})).json()
    assert [entry["name"] for entry in document["repositories"]] == ["gh"]


async def test_a_herd_after_a_new_version_reads_the_state_once(make_client: MakeClient, synced: TagResult,
                                                               store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many clients asking for the manifest at once, before the server has read ``repository.json``: one read,
    and every client gets the manifest; a replaced state file is read once more."""
    reads = 0
    real_load = VexRepository.load

    def counted_load(self: VexRepository) -> VexState:
        nonlocal reads
        reads += 1
        time.sleep(0.2)  # the herd arrives while the read is in flight
        return real_load(self)

    monkeypatch.setattr(VexRepository, "load", counted_load)
    client = await make_client()
    path = "/vex/gh/.well-known/vex-repository.json"

    async def herd() -> set[int]:
        responses = await asyncio.gather(*(client.get(path) for _ in range(64)))
        for response in responses:
            await response.read()
        return {response.status for response in responses}

    assert await herd() == {200}
    assert reads == 1
    assert await herd() == {200} and reads == 1  # cached while the file is unchanged
    repository = VexRepository(store.root, "gh")
    repository.save(real_load(repository))  # replaced: a new inode
    assert await herd() == {200}
    assert reads == 2
