"""Pushing (only with allow_push and auth): uploads, mounts and manifests end up in the real store."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from support.trivy_assets import Artifact as TrivyArtifact
from support.trivy_assets import build_checks_bundle, build_vuln_db
from trivy_mirror.errors import UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.server.app import create_app
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .conftest import PASSWORD, PULL_PASSWORD, PULL_USER, USER, ClientFactory
from .helpers import Artifact, basic, error_codes, make_artifact

AUTH = basic(USER, PASSWORD)
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(make_client: ClientFactory, htpasswd: Path, tmp_path: Path) -> Client:
    return await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}),
                                            upload_dir=tmp_path / "uploads"))


async def monolithic(client: Client, name: str, data: bytes, digest: str) -> None:
    response = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data,
                                 headers=AUTH)
    assert response.status == 201, await response.text()
    assert response.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest


async def push_artifact(client: Client, name: str, tag: str, artifact: Artifact) -> None:
    for descriptor, data in (artifact.config, artifact.layer):
        await monolithic(client, name, data, str(descriptor.digest))
    response = await client.put(f"/v2/{name}/manifests/{tag}", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == artifact.digest
    assert response.headers["Location"] == f"/v2/{name}/manifests/{artifact.digest}"


async def push_trivy(client: Client, name: str, tag: str, artifact: TrivyArtifact, status: int = 201) -> bytes:
    """Push one of the test suite's Trivy-shaped artifacts; the manifest answer's body."""
    for digest, data in artifact.blobs.items():
        await monolithic(client, name, data, digest)
    response = await client.put(f"/v2/{name}/manifests/{tag}", data=artifact.manifest,
                                headers={**AUTH, "Content-Type": artifact.media_type})
    body = await response.read()
    assert response.status == status, body
    return body


def test_push_needs_auth(store: Store) -> None:
    with pytest.raises(UsageError, match="authentication"):
        create_app(ServerSettings(allow_push=True), store)


async def test_monolithic_push_then_pull_identical_bytes(client: Client, store: Store) -> None:
    artifact = make_artifact(b"layer bytes " * 1000)
    await push_artifact(client, "team/tool", "2", artifact)
    response = await client.get("/v2/team/tool/manifests/2", headers=AUTH)
    assert (response.status, await response.read()) == (200, artifact.manifest.data)
    assert response.headers["Docker-Content-Digest"] == artifact.digest
    response = await client.get(f"/v2/team/tool/blobs/{artifact.layer_digest}", headers=AUTH)
    assert await response.read() == artifact.layer_bytes
    assert store.layout("team/tool").tags()["2"].digest == artifact.manifest.digest


async def test_push_through_an_alias_lands_in_the_store_name(client: Client, store: Store) -> None:
    db = build_vuln_db()
    await push_trivy(client, "aquasecurity/trivy-db", "2", db)
    assert store.layout("aquasec/trivy-db").tags()["2"].digest == Digest.parse(db.digest)


async def test_chunked_upload(client: Client) -> None:
    data = bytes(range(256)) * 50
    digest = str(make_artifact(data).layer[0].digest)
    response = await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)
    assert response.status == 202
    location = response.headers["Location"]
    upload_id = response.headers["Docker-Upload-UUID"]
    assert location.endswith(upload_id)
    offset = 0
    for size in (1000, 5000, 10, len(data) - 6010):
        chunk = data[offset : offset + size]
        response = await client.patch(location, data=chunk, headers={
            **AUTH, "Content-Range": f"{offset}-{offset + size - 1}", "Content-Type": "application/octet-stream"})
        assert response.status == 202, await response.text()
        offset += size
        assert response.headers["Range"] == f"0-{offset - 1}"
    status = await client.get(location, headers=AUTH)
    assert (status.status, status.headers["Range"]) == (204, f"0-{len(data) - 1}")
    response = await client.put(location, params={"digest": digest}, headers=AUTH)
    assert response.status == 201, await response.text()
    response = await client.get(f"/v2/team/tool/blobs/{digest}", headers=AUTH)
    assert await response.read() == data
    # The session is gone once finished.
    assert (await client.get(location, headers=AUTH)).status == 404


async def test_chunk_out_of_order_is_416(client: Client) -> None:
    response = await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)
    location = response.headers["Location"]
    await client.patch(location, data=b"abc", headers={**AUTH, "Content-Range": "0-2"})
    response = await client.patch(location, data=b"xyz", headers={**AUTH, "Content-Range": "10-12"})
    assert response.status == 416
    assert response.headers["Range"] == "0-2"
    response = await client.patch(location, data=b"xyz", headers={**AUTH, "Content-Range": "bogus"})
    assert (response.status, error_codes(await response.read())) == (400, ["BLOB_UPLOAD_INVALID"])


async def test_streamed_patch_then_put_with_last_chunk(client: Client) -> None:
    data = b"0123456789" * 100
    digest = str(make_artifact(data).layer[0].digest)
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    await client.patch(location, data=data[:600], headers=AUTH)
    response = await client.put(location, params={"digest": digest}, data=data[600:], headers=AUTH)
    assert response.status == 201
    assert await (await client.get(f"/v2/team/tool/blobs/{digest}", headers=AUTH)).read() == data


async def test_single_put_upload(client: Client) -> None:
    data = b"one put"
    digest = str(make_artifact(data).layer[0].digest)
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    response = await client.put(location, params={"digest": digest}, data=data, headers=AUTH)
    assert response.status == 201


async def test_wrong_digest_is_refused_and_nothing_stored(client: Client, store: Store) -> None:
    wrong = "sha256:" + "a" * 64
    response = await client.post("/v2/team/tool/blobs/uploads/", params={"digest": wrong},
                                 data=b"content", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])
    assert not store.layout("team/tool").blob_path(make_artifact(b"content").layer[0].digest).exists()
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    await client.patch(location, data=b"content", headers=AUTH)
    response = await client.put(location, params={"digest": wrong}, headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])
    response = await client.put(location, params={"digest": "nope"}, headers=AUTH)
    assert response.status in (400, 404)


async def test_upload_cancel_and_unknown(client: Client) -> None:
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    assert (await client.delete(location, headers=AUTH)).status == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.request(method, location, headers=AUTH)
        assert (response.status, error_codes(await response.read())) == (404, ["BLOB_UPLOAD_UNKNOWN"]), method
    response = await client.get("/v2/team/tool/blobs/uploads/../../etc", headers=AUTH)
    assert response.status in (400, 404)


async def test_upload_belongs_to_its_repository(client: Client) -> None:
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    response = await client.get(f"/v2/aquasec/other/blobs/uploads/{upload_id}", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (404, ["BLOB_UPLOAD_UNKNOWN"])


async def test_cross_repository_mount(client: Client) -> None:
    artifact = make_artifact(b"shared layer")
    await push_artifact(client, "team/tool", "2", artifact)
    response = await client.post("/v2/mirror/trivy-db/blobs/uploads/",
                                 params={"mount": artifact.layer_digest, "from": "team/tool"}, headers=AUTH)
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/mirror/trivy-db/blobs/{artifact.layer_digest}"
    # Mount from somewhere without the blob: a normal upload session instead.
    response = await client.post("/v2/mirror/trivy-db/blobs/uploads/",
                                 params={"mount": "sha256:" + "b" * 64, "from": "team/tool"}, headers=AUTH)
    assert response.status == 202
    assert "Docker-Upload-UUID" in response.headers
    response = await client.post("/v2/mirror/trivy-db/blobs/uploads/",
                                 params={"mount": artifact.layer_digest, "from": "Not Valid"}, headers=AUTH)
    assert response.status == 202


async def test_manifest_with_missing_blobs_is_refused(client: Client) -> None:
    artifact = make_artifact(b"never uploaded")
    response = await client.put("/v2/team/tool/manifests/2", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert response.status == 400
    body = json.loads(await response.read())
    assert body["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert artifact.layer_digest in body["errors"][0]["detail"]


async def test_invalid_manifests_are_refused(client: Client) -> None:
    cases = [b"not json", b"{}", json.dumps({"schemaVersion": 1}).encode()]
    for data in cases:
        response = await client.put("/v2/team/tool/manifests/2", data=data, headers=AUTH)
        assert (response.status, error_codes(await response.read())) == (400, ["MANIFEST_INVALID"]), data
    artifact = make_artifact(b"x")
    response = await client.put("/v2/team/tool/manifests/sha256:" + "c" * 64, data=artifact.manifest.data,
                                headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])
    response = await client.put("/v2/team/tool/manifests/-bad-tag", data=artifact.manifest.data, headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["TAG_INVALID"])
    response = await client.put("/v2/team/tool/manifests/2", data=b"x" * (5 * 1024 * 1024), headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (413, ["SIZE_INVALID"])


async def test_push_by_digest(client: Client) -> None:
    artifact = make_artifact(b"by digest")
    for descriptor, data in (artifact.config, artifact.layer):
        await monolithic(client, "team/tool", data, str(descriptor.digest))
    response = await client.put(f"/v2/team/tool/manifests/{artifact.digest}", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert response.status == 201


async def test_index_push_with_children(client: Client) -> None:
    child = make_artifact(b"child")
    for descriptor, data in (child.config, child.layer):
        await monolithic(client, "team/tool", data, str(descriptor.digest))
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                        "manifests": [child.manifest.descriptor.to_json()]}).encode()
    response = await client.put("/v2/team/tool/manifests/2", data=index, headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["MANIFEST_BLOB_UNKNOWN"])
    response = await client.put(f"/v2/team/tool/manifests/{child.digest}", data=child.manifest.data,
                                headers=AUTH)
    assert response.status == 201
    response = await client.put("/v2/team/tool/manifests/2", data=index,
                                headers={**AUTH, "Content-Type": mediatype.OCI_INDEX})
    assert response.status == 201
    response = await client.get(f"/v2/team/tool/manifests/{child.digest}", headers=AUTH)
    assert (response.status, await response.read()) == (200, child.manifest.data)


async def test_blob_pushed_but_unreferenced_is_visible_to_head(client: Client) -> None:
    data = b"loose blob"
    digest = str(make_artifact(data).layer[0].digest)
    await monolithic(client, "aquasec/new-repo", data, digest)
    response = await client.head(f"/v2/aquasec/new-repo/blobs/{digest}", headers=AUTH)
    assert response.status == 200


async def test_too_many_uploads(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}),
                                              max_uploads=2))
    for _ in range(2):
        assert (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).status == 202
    response = await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (429, ["TOOMANYREQUESTS"])


async def test_chunked_transfer_monolithic(client: Client) -> None:
    """A monolithic POST without Content-Length (chunked encoding) is spooled, then verified."""
    data = b"streamed " * 500
    digest = str(make_artifact(data).layer[0].digest)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 100):
            yield data[start : start + 100]

    response = await client.post("/v2/team/tool/blobs/uploads/", params={"digest": digest}, data=body(),
                                 headers=AUTH)
    assert response.status == 201
    assert await (await client.get(f"/v2/team/tool/blobs/{digest}", headers=AUTH)).read() == data


async def test_client_disconnect_mid_upload_stores_nothing(client: Client, store: Store) -> None:
    digest = "sha256:" + "0" * 64
    _, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(f"POST /v2/team/tool/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: {AUTH['Authorization']}\r\nContent-Length: 100000\r\n\r\n".encode() + b"x" * 10)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)
    assert not store.layout("team/tool").blob_path(Digest.parse(digest)).exists()
    assert not list((store.root / ".tmp").glob("*"))
    assert (await client.get("/v2/", headers=AUTH)).status == 200


async def test_catalog_pushes_pass_the_sync_checks(client: Client, store: Store) -> None:
    """What sync refuses, a push into aquasec/trivy-db (or an alias) refuses too, with the reason."""
    now = datetime.now(UTC)
    served = build_vuln_db(updated_at=now - timedelta(hours=1))
    await push_trivy(client, "aquasec/trivy-db", "2", served)
    refused = {
        "in the future": build_vuln_db(updated_at=datetime(2099, 1, 1, tzinfo=UTC)),
        "older than the served": build_vuln_db(updated_at=now - timedelta(days=3)),
        "Version is 3": build_vuln_db(schema_version=3),
        "exactly one": build_vuln_db(layer_count=2),
        "media type": build_vuln_db(layer_media_type=mediatype.TRIVY_JAVA_DB_LAYER),
        "no org.opencontainers.image.title": build_vuln_db(title=None),
    }
    for reason, artifact in refused.items():
        for name in ("aquasec/trivy-db", "aquasecurity/trivy-db"):
            body = await push_trivy(client, name, "2", artifact, status=400)
            assert error_codes(body) == ["MANIFEST_INVALID"] and reason in body.decode(), (reason, body)
    empty = make_artifact(b"not a tar.gz")  # held, not refused: an operator may decide otherwise (approve)
    body = await push_trivy(client, "aquasec/trivy-db", "2", TrivyArtifact(
        empty.manifest.data, empty.config[1], [empty.layer_bytes]), status=403)
    assert error_codes(body) == ["DENIED"] and b"held (sanity)" in body
    body = await push_trivy(client, "aquasec/trivy-db", "latest", served, status=400)
    assert b"only the tag(s) 2" in body
    body = await push_trivy(client, "aquasec/trivy-db", served.digest, served, status=400)
    assert b"by tag" in body
    assert store.layout("aquasec/trivy-db").tags()["2"].digest == Digest.parse(served.digest)
    newer = build_vuln_db(updated_at=now)
    await push_trivy(client, "aquasec/trivy-db", "2", newer)
    assert store.layout("aquasec/trivy-db").tags()["2"].digest == Digest.parse(newer.digest)


async def test_checks_bundle_push_needs_the_tag_major(client: Client) -> None:
    bundle = build_checks_bundle(version="1.0.0")
    body = await push_trivy(client, "aquasec/trivy-checks", "2", bundle, status=400)
    assert b"tag :2 needs 2.x" in body
    await push_trivy(client, "aquasec/trivy-checks", "1", bundle)


async def test_upload_sessions_are_bounded_per_credential(make_client: ClientFactory, htpasswd: Path,
                                                          tmp_path: Path) -> None:
    settings = ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER, PULL_USER}),
                              max_uploads_per_user=3, max_spool_per_user=1000, upload_dir=tmp_path / "spool")
    client = await make_client(settings)
    other = basic(PULL_USER, PULL_PASSWORD)
    held = [(await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"] for _ in range(3)]
    response = await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (429, ["TOOMANYREQUESTS"])
    assert (await client.post("/v2/team/tool/blobs/uploads/", headers=other)).status == 202
    # A session belongs to the credential that started it.
    response = await client.patch(held[0], data=b"x", headers=other)
    assert (response.status, error_codes(await response.read())) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    # Spooled bytes are bounded across the credential's sessions; the session that overflows is dropped.
    assert (await client.patch(held[0], data=b"a" * 600, headers=AUTH)).status == 202
    response = await client.patch(held[1], data=b"b" * 600, headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (413, ["SIZE_INVALID"])
    assert (await client.get(held[1], headers=AUTH)).status == 404
    assert sum(path.stat().st_size for path in (tmp_path / "spool").rglob("*") if path.is_file()) == 600


def test_spools_left_by_a_dead_server_are_removed_at_start(store: Store, htpasswd: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead = spool / "trivy-mirror-uploads-999999999-abc"
    alive = spool / f"trivy-mirror-uploads-{os.getppid()}-def"
    unrelated = spool / "something-else"
    for directory in (dead, alive, unrelated):
        directory.mkdir(parents=True)
        (directory / "chunk").write_bytes(b"x" * 100)
    create_app(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}), upload_dir=spool),
               store)
    assert not dead.exists() and alive.exists() and unrelated.exists()


async def test_manifest_checks_are_as_strict_as_distribution(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    artifact = make_artifact(b"strict")
    for descriptor, data in (artifact.config, artifact.layer):
        await monolithic(client, "team/tool", data, str(descriptor.digest))
    good = json.loads(artifact.manifest.data)
    index_type = mediatype.OCI_INDEX
    cases: list[tuple[bytes, str, str]] = [
        (json.dumps({**good, "manifests": []}).encode(), mediatype.OCI_MANIFEST, "ambiguous"),
        (artifact.manifest.data, index_type, "does not match"),
        (json.dumps({**good, "mediaType": mediatype.DOCKER_MANIFEST}).encode(), mediatype.OCI_MANIFEST,
         "does not match"),
        (json.dumps({**good, "mediaType": index_type}).encode(), index_type, "structure does not match"),
        (json.dumps({**good, "schemaVersion": 2.0}).encode(), mediatype.OCI_MANIFEST, "integer 2"),
        (json.dumps({**good, "schemaVersion": True}).encode(), mediatype.OCI_MANIFEST, "integer 2"),
        (json.dumps({**good, "schemaVersion": "2"}).encode(), mediatype.OCI_MANIFEST, "integer 2"),
        (artifact.manifest.data.replace(b'"schemaVersion"', b'"\xff\xfe"', 1), mediatype.OCI_MANIFEST, "UTF-8"),
        (b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", mediatype.OCI_MANIFEST,
         "nested too deeply"),
    ]
    with caplog.at_level(logging.ERROR):
        for body, content_type, reason in cases:
            response = await client.put("/v2/team/tool/manifests/v1", data=body,
                                        headers={**AUTH, "Content-Type": content_type})
            text = await response.text()
            assert (response.status, error_codes(text.encode())) == (400, ["MANIFEST_INVALID"]), (reason, text)
            assert reason in text, (reason, text)
    assert not caplog.records  # no traceback, no internal error
    response = await client.put("/v2/team/tool/manifests/v1", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert response.status == 201


async def test_store_failures_never_show_paths(client: Client, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from trivy_mirror.errors import StoreError
    from trivy_mirror.store import Layout

    async def full(*_: object) -> None:
        raise StoreError("cannot write: No space left on device (/srv/private/store/.tmp/upload)")

    artifact = make_artifact(b"disk full")
    monkeypatch.setattr(Layout, "push_blob", full)
    response = await client.post("/v2/team/tool/blobs/uploads/", params={"digest": artifact.layer_digest},
                                 data=artifact.layer_bytes, headers=AUTH)
    text = await response.text()
    assert response.status == 500 and "/srv/private" not in text and "server log" in text
    monkeypatch.undo()
    for descriptor, data in (artifact.config, artifact.layer):
        await monolithic(client, "team/tool", data, str(descriptor.digest))
    monkeypatch.setattr(Layout, "tag", full)
    response = await client.put("/v2/team/tool/manifests/v1", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    text = await response.text()
    assert response.status == 500 and "/srv/private" not in text and "server log" in text
    assert "/srv/private" in caplog.text  # the operator still learns where
