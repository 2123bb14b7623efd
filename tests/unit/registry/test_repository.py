"""RemoteRepository against the in-memory registry: manifests, tags, blob downloads and uploads, mounts."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from trivy_mirror.errors import InvalidManifest, NotFound, RegistryError, Unreachable, VerificationError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor
from trivy_mirror.registry import Credentials, RetryPolicy, Timeouts
from trivy_mirror.registry import upload as upload_module
from trivy_mirror.target import Mounter, TagPusher, push_and_tag

from .conftest import MakeClient, Serve
from .fake_registry import OCI_MANIFEST, FakeRegistry, digest_of, manifest_for

DATA = bytes(range(256)) * 4000  # ~1 MB, not a multiple of the read chunk size


def _descriptor(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", Digest.of(data), len(data))


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


# --- manifests -----------------------------------------------------------------------------------------------


async def test_resolve_and_get_manifest_byte_exact(fake: FakeRegistry, fake_host: str,
                                                   make_client: MakeClient) -> None:
    data = manifest_for(b"{}", b"layer") + b"\n"  # odd formatting must survive untouched
    digest = fake.put_manifest("aquasec/trivy-db", "2", data)
    repo = make_client(fake_host).repository("aquasec/trivy-db")
    assert await repo.resolve("2") == Descriptor(OCI_MANIFEST, Digest.parse(digest), len(data))
    assert await repo.resolve(digest) == Descriptor(OCI_MANIFEST, Digest.parse(digest), len(data))
    assert await repo.resolve("3") is None
    manifest = await repo.get_manifest("2")
    assert manifest.data == data and manifest.media_type == OCI_MANIFEST
    assert (await repo.get_manifest(digest)).data == data
    accept = fake.requests("HEAD", "/manifests/2")[0].headers["Accept"]
    assert accept == mediatype.MANIFEST_ACCEPT
    with pytest.raises(NotFound):
        await repo.get_manifest("3")


async def test_resolve_falls_back_to_get(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    data = manifest_for(b"{}", b"layer")
    fake.put_manifest("a/b", "2", data)

    async def no_head(request: web.Request) -> web.Response | None:
        return web.Response(status=405) if request.method == "HEAD" else None

    fake.hooks.append(no_head)
    repo = make_client(fake_host).repository("a/b")
    assert await repo.resolve("2") == Descriptor(OCI_MANIFEST, Digest.of(data), len(data))
    assert await repo.resolve("9") is None
    assert len(fake.requests("GET", "/manifests/")) == 2


async def test_digest_reference_is_verified(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    wanted = digest_of(b"the real manifest")
    fake.manifests[("a/b", wanted)] = (manifest_for(b"{}", b"other"), OCI_MANIFEST)
    repo = make_client(fake_host).repository("a/b")
    with pytest.raises(VerificationError, match="does not match the requested digest"):
        await repo.get_manifest(wanted)


async def test_docker_content_digest_is_checked(fake: FakeRegistry, fake_host: str,
                                                make_client: MakeClient) -> None:
    async def lying(request: web.Request) -> web.Response | None:
        if request.method == "GET" and "/manifests/" in request.path:
            return web.Response(body=manifest_for(b"{}", b"x"), content_type=OCI_MANIFEST,
                                headers={"Docker-Content-Digest": digest_of(b"something else")})
        return None

    fake.hooks.append(lying)
    with pytest.raises(VerificationError, match="Docker-Content-Digest"):
        await make_client(fake_host).repository("a/b").get_manifest("2")


@pytest.mark.parametrize("chunked", [False, True])
async def test_manifest_size_limit(fake: FakeRegistry, fake_host: str, make_client: MakeClient,
                                   chunked: bool) -> None:
    async def huge(request: web.Request) -> web.StreamResponse | None:
        if "/manifests/" not in request.path:
            return None
        response = web.StreamResponse(headers={"Content-Type": OCI_MANIFEST})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = MAX_MANIFEST_SIZE + 1
        await response.prepare(request)
        try:
            for _ in range(MAX_MANIFEST_SIZE // 65536 + 1):
                await response.write(b" " * 65536)
            await response.write(b" ")
        except ConnectionError:
            pass  # the client hung up, as it should
        return response

    fake.hooks.append(huge)
    with pytest.raises(InvalidManifest, match="over the 4194304-byte limit"):
        await make_client(fake_host).repository("a/b").get_manifest("2")


async def test_push_manifest_exact_bytes(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    data = manifest_for(b"{}", b"layer", annotation="x")
    manifest = ManifestBytes.of(data, OCI_MANIFEST)
    repo = make_client(fake_host).repository("mirror/aquasec/trivy-db")
    await repo.push_manifest(manifest)
    assert fake.manifests[("mirror/aquasec/trivy-db", str(manifest.digest))] == (data, OCI_MANIFEST)
    await repo.tag("2", manifest)
    assert fake.manifests[("mirror/aquasec/trivy-db", "2")] == (data, OCI_MANIFEST)
    assert [s.path.rpartition("/")[2] for s in fake.requests("PUT")] == [str(manifest.digest), "2"]


async def test_push_and_tag_is_one_put_under_the_tag(fake: FakeRegistry, fake_host: str,
                                                     make_client: MakeClient) -> None:
    """A registry is a TagPusher: a tagged manifest costs one request, as before tagging became its own verb."""
    manifest = ManifestBytes.of(manifest_for(b"{}", b"layer"), OCI_MANIFEST)
    repo = make_client(fake_host).repository("mirror/aquasec/trivy-db")
    assert isinstance(repo, TagPusher) and isinstance(repo, Mounter)
    await push_and_tag(repo, manifest, "2")
    assert [s.path for s in fake.requests("PUT")] == ["/v2/mirror/aquasec/trivy-db/manifests/2"]


async def test_tags_follow_link_pagination(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    for tag in ("1", "2", "latest", "nightly", "v1.0"):
        fake.put_manifest("a/b", tag, manifest_for(b"{}", tag.encode()))
    fake.page_size = 2
    assert await make_client(fake_host).repository("a/b").tags() == ["1", "2", "latest", "nightly", "v1.0"]
    assert len(fake.requests("GET", "/tags/list")) == 3
    with pytest.raises(NotFound, match="NAME_UNKNOWN"):
        await make_client(fake_host).repository("c/d").tags()


# --- blob downloads ------------------------------------------------------------------------------------------


async def test_fetch_blob_and_exists(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    fake.put_blob("a/b", DATA)
    repo = make_client(fake_host).repository("a/b")
    assert await _collect(repo.fetch_blob(_descriptor(DATA))) == DATA
    assert await repo.blob_exists(_descriptor(DATA))
    assert not await repo.blob_exists(_descriptor(b"missing"))
    with pytest.raises(NotFound, match="BLOB_UNKNOWN"):
        await _collect(repo.fetch_blob(_descriptor(b"missing")))


def _cut_off(fake: FakeRegistry, data: bytes, at: int, times: int, stall: asyncio.Event | None = None) -> None:
    """The first ``times`` full (non-range) blob GETs send ``at`` bytes, then reset or stall."""
    remaining = [times]

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if request.method != "GET" or "/blobs/sha256:" not in request.path or "Range" in request.headers:
            return None
        if remaining[0] == 0:
            return None
        remaining[0] -= 1
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[:at])
        if stall is not None:
            await stall.wait()
        elif request.transport is not None:
            request.transport.close()
        return response

    fake.hooks.append(hook)


async def test_reset_mid_body_resumes_with_range(fake: FakeRegistry, fake_host: str,
                                                 make_client: MakeClient) -> None:
    fake.put_blob("a/b", DATA)
    _cut_off(fake, DATA, 300_000, times=1)
    out = await _collect(make_client(fake_host).repository("a/b").fetch_blob(_descriptor(DATA)))
    assert out == DATA
    gets = fake.requests("GET", "/blobs/")
    assert [g.headers.get("Range") for g in gets] == [None, "bytes=300000-"]


async def test_resume_when_range_is_ignored(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    fake.put_blob("a/b", DATA)
    _cut_off(fake, DATA, 100_001, times=1)

    async def ignore_range(request: web.Request) -> web.Response | None:
        return web.Response(body=DATA) if "Range" in request.headers else None

    fake.hooks.append(ignore_range)
    assert await _collect(make_client(fake_host).repository("a/b").fetch_blob(_descriptor(DATA))) == DATA


async def test_stall_mid_body_resumes_then_gives_up(fake: FakeRegistry, fake_host: str,
                                                    make_client: MakeClient) -> None:
    fake.put_blob("a/b", DATA)
    stall = asyncio.Event()
    _cut_off(fake, DATA, 50_000, times=1, stall=stall)
    client = make_client(fake_host, timeouts=Timeouts(read=0.3, probe=1))
    try:
        assert await _collect(client.repository("a/b").fetch_blob(_descriptor(DATA))) == DATA

        async def stall_ranges(request: web.Request) -> web.StreamResponse | None:
            if "Range" not in request.headers:
                return None
            response = web.StreamResponse(status=206, headers={
                "Content-Range": f"bytes 50000-{len(DATA) - 1}/{len(DATA)}"})
            await response.prepare(request)
            await stall.wait()
            return response

        fake.hooks.insert(0, stall_ranges)
        _cut_off(fake, DATA, 50_000, times=1)
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"stalled\) \(fetch blob a/b@sha256:[0-9a-f]{12}; 50000 of 1024000 "
                                              r"bytes received, 3 attempts without progress\)$"):
            await _collect(client.repository("a/b").fetch_blob(_descriptor(DATA)))
        assert time.monotonic() - started < 4 * 0.3 + 1
    finally:
        stall.set()


async def test_wrong_content_length_is_refused(fake: FakeRegistry, fake_host: str,
                                               make_client: MakeClient) -> None:
    fake.put_blob("a/b", DATA)
    claimed = Descriptor("application/octet-stream", Digest.of(DATA), len(DATA) + 1)
    with pytest.raises(VerificationError, match="sends 1024000 bytes, expected 1024001"):
        await _collect(make_client(fake_host).repository("a/b").fetch_blob(claimed))


async def test_redirect_to_storage_drops_authorization(fake: FakeRegistry, fake_host: str, serve: Serve,
                                                       make_client: MakeClient) -> None:
    storage_seen: list[web.Request] = []

    async def storage(request: web.Request) -> web.Response:
        storage_seen.append(request)
        return web.Response(body=DATA)

    storage_app = web.Application()
    storage_app.router.add_get("/{tail:.*}", storage)
    storage_server = await serve(storage_app)
    digest = fake.put_blob("a/b", DATA)
    expected = "Basic " + base64.b64encode(b"alice:pw").decode()

    async def guard_and_redirect(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        if request.method == "GET" and request.path.endswith(digest):
            raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{storage_server.port}/blob/{digest}?sig=abc")
        return None

    fake.hooks.append(guard_and_redirect)
    repo = make_client(fake_host, Credentials("alice", "pw")).repository("a/b")
    assert await _collect(repo.fetch_blob(_descriptor(DATA))) == DATA
    assert len(storage_seen) == 1
    assert "Authorization" not in storage_seen[0].headers
    assert storage_seen[0].query["sig"] == "abc"
    assert await repo.blob_exists(_descriptor(DATA))  # HEAD: the redirect itself says "exists"
    assert len(storage_seen) == 1


# --- blob uploads --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("absolute", [False, True])
async def test_push_blob_monolithic(fake: FakeRegistry, fake_host: str, make_client: MakeClient,
                                    absolute: bool) -> None:
    fake.absolute_locations = absolute
    repo = make_client(fake_host).repository("mirror/trivy-db")
    await repo.push_blob(_descriptor(DATA), _chunks(DATA))
    await repo.push_blob(_descriptor(b""), _chunks(b""))
    assert fake.blobs[digest_of(DATA)] == DATA
    assert fake.blobs[digest_of(b"")] == b""
    put = fake.requests("PUT", "/blobs/uploads/")[0]
    assert put.headers["Content-Length"] == str(len(DATA))
    assert put.query["digest"] == digest_of(DATA)
    assert not fake.requests("PATCH")


async def test_push_blob_chunked_when_registry_asks(fake: FakeRegistry, fake_host: str, make_client: MakeClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_module, "UPLOAD_CHUNK_SIZE", 4)
    fake.chunk_min = 7
    data = b"0123456789abcdefghij"
    await make_client(fake_host).repository("a/b").push_blob(_descriptor(data), _chunks(data, 3))
    assert fake.blobs[digest_of(data)] == data
    assert [p.headers["Content-Range"] for p in fake.requests("PATCH")] == ["0-6", "7-13", "14-19"]
    assert fake.requests("PUT")[0].body == b""


async def test_push_blob_falls_back_to_chunked(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    fake.reject_monolithic = True
    client = make_client(fake_host)
    await client.repository("a/b").push_blob(_descriptor(DATA), _chunks(DATA))
    assert fake.blobs[digest_of(DATA)] == DATA
    assert [s.method for s in fake.seen if "/blobs/uploads/" in s.path] == [
        "POST", "PUT", "DELETE", "POST", "PATCH", "PUT"]
    assert not fake.uploads
    # The client remembers: the next upload goes chunked straight away.
    fake.seen.clear()
    await client.repository("a/b").push_blob(_descriptor(b"second"), _chunks(b"second"))
    assert [s.method for s in fake.seen if "/blobs/uploads/" in s.path] == ["POST", "PATCH", "PUT"]


async def test_rejected_monolithic_upload_too_large_to_replay(
    fake: FakeRegistry, fake_host: str, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_module, "REPLAY_LIMIT", 5)
    fake.reject_monolithic = True
    with pytest.raises(RegistryError, match="405 UNSUPPORTED monolithic uploads are not supported"):
        await make_client(fake_host).repository("a/b").push_blob(_descriptor(DATA), _chunks(DATA))
    assert not fake.uploads and not fake.blobs


async def _failing_source(data: bytes, fail_after: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in _chunks(data, 1000):
        if sent >= fail_after:
            break
        sent += len(chunk)
        yield chunk
    raise VerificationError("content does not match its digest")


@pytest.mark.parametrize("fail_after", [3000, len(DATA)])
@pytest.mark.parametrize("chunked", [False, True])
async def test_failing_source_never_completes_the_upload(fake: FakeRegistry, fake_host: str,
                                                         make_client: MakeClient, fail_after: int,
                                                         chunked: bool) -> None:
    fake.chunk_min = 1 if chunked else None
    repo = make_client(fake_host).repository("a/b")
    with pytest.raises(VerificationError, match="does not match"):
        await repo.push_blob(_descriptor(DATA), _failing_source(DATA, fail_after))
    assert not fake.blobs
    assert not fake.uploads  # cancelled with DELETE
    assert fake.seen[-1].method == "DELETE"


# --- mounts --------------------------------------------------------------------------------------------------


async def test_mount(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    client = make_client(fake_host)
    source, target = client.repository("upstream/trivy-db"), client.repository("mirror/trivy-db")
    fake.put_blob("upstream/trivy-db", DATA)
    assert await target.mount_blob(_descriptor(DATA), source)
    assert ("mirror/trivy-db", digest_of(DATA)) in fake.links
    post = fake.requests("POST")[0]
    assert post.query == {"mount": digest_of(DATA), "from": "upstream/trivy-db"}
    assert not await target.mount_blob(_descriptor(b"unknown"), source)
    assert [s.method for s in fake.seen[-2:]] == ["POST", "DELETE"]
    assert not fake.uploads


async def test_no_mount_across_registries(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    target = make_client(fake_host).repository("mirror/trivy-db")
    elsewhere = make_client("127.0.0.2:1").repository("upstream/trivy-db")
    assert not await target.mount_blob(_descriptor(DATA), elsewhere)
    assert not fake.seen


async def test_unreachable_upload_target(make_client: MakeClient) -> None:
    client = make_client("127.0.0.1:9", retry=RetryPolicy(attempts=1))
    with pytest.raises(Unreachable, match=r"^cannot reach 127\.0\.0\.1:9: connection refused \(push blob a/b@"):
        await client.repository("a/b").push_blob(_descriptor(DATA), _chunks(DATA))
