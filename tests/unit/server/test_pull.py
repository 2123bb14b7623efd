"""The read side of the registry API over a real store: what Trivy, crane, oras and skopeo ask for."""

from __future__ import annotations

import asyncio
import json
import os

from support.clock import FakeClock
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.server.app import CACHE_KEY
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.server.watch import CHECK_INTERVAL
from trivy_mirror.store import Store

from .conftest import ClientFactory
from .helpers import Artifact, chunks, error_codes, make_artifact, populate, push


async def test_ping(make_client: ClientFactory) -> None:
    client = await make_client()
    for path in ("/v2/", "/v2"):
        response = await client.get(path)
        assert response.status == 200
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_manifest_by_tag_and_digest(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    for reference in ("2", db.digest):
        response = await client.get(f"/v2/aquasec/trivy-db/manifests/{reference}")
        assert response.status == 200
        assert await response.read() == db.manifest.data
        assert response.headers["Content-Type"] == mediatype.OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == db.digest
        assert response.headers["ETag"] == f'"{db.digest}"'
        assert response.headers["Content-Length"] == str(len(db.manifest.data))


async def test_manifest_head_has_headers_and_no_body(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    response = await client.head("/v2/aquasec/trivy-db/manifests/2")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(db.manifest.data))
    assert response.headers["Docker-Content-Digest"] == db.digest
    assert await response.read() == b""


async def test_manifest_if_none_match(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    response = await client.get("/v2/aquasec/trivy-db/manifests/2", headers={"If-None-Match": f'"{db.digest}"'})
    assert response.status == 304
    assert response.headers["Docker-Content-Digest"] == db.digest


async def test_manifest_errors(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    cases = {
        "/v2/aquasec/trivy-db/manifests/3": (404, "MANIFEST_UNKNOWN"),
        "/v2/aquasec/trivy-db/manifests/sha256:" + "0" * 64: (404, "MANIFEST_UNKNOWN"),
        "/v2/aquasec/trivy-db/manifests/sha256:abc": (400, "DIGEST_INVALID"),
        "/v2/aquasec/nothing/manifests/2": (404, "NAME_UNKNOWN"),
        "/v2/Aquasec/trivy-db/manifests/2": (400, "NAME_INVALID"),
        "/v2/aquasec/trivy-db/blobs/manifests/2": (404, "NAME_UNKNOWN"),  # "blobs" is reserved in the store
    }
    for path, (status, code) in cases.items():
        response = await client.get(path)
        assert (response.status, error_codes(await response.read())) == (status, [code]), path
        assert response.headers["Content-Type"].startswith("application/json")


async def test_head_error_has_no_body(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    response = await client.head("/v2/aquasec/trivy-db/manifests/3")
    assert response.status == 404
    assert await response.read() == b""


async def test_blob_get_and_head(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    path = f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}"
    response = await client.get(path)
    assert response.status == 200
    assert await response.read() == db.layer_bytes
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Docker-Content-Digest"] == db.layer_digest
    assert response.headers["Content-Length"] == str(len(db.layer_bytes))
    head = await client.head(path)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(db.layer_bytes))
    assert await head.read() == b""


async def test_blob_range(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    path = f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}"
    size = len(db.layer_bytes)
    response = await client.get(path, headers={"Range": "bytes=10-19"})
    assert response.status == 206
    assert await response.read() == db.layer_bytes[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{size}"
    response = await client.get(path, headers={"Range": "bytes=-5"})
    assert (response.status, await response.read()) == (206, db.layer_bytes[-5:])
    response = await client.get(path, headers={"Range": f"bytes={size}-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    response = await client.get(path, headers={"Range": "bytes=oops"})
    assert response.status == 416


async def test_blob_errors(make_client: ClientFactory, db: Artifact, store: Store) -> None:
    client = await make_client()
    cases = {
        "/v2/aquasec/trivy-db/blobs/sha256:" + "1" * 64: (404, "BLOB_UNKNOWN"),
        "/v2/aquasec/trivy-db/blobs/sha256:ABC": (400, "DIGEST_INVALID"),
        "/v2/aquasec/trivy-db/blobs/md5:" + "1" * 32: (400, "DIGEST_INVALID"),
        f"/v2/aquasec/nothing/blobs/{db.layer_digest}": (404, "NAME_UNKNOWN"),
    }
    for path, (status, code) in cases.items():
        response = await client.get(path)
        assert (response.status, error_codes(await response.read())) == (status, [code]), path


async def test_blob_only_from_its_own_repository(make_client: ClientFactory, db: Artifact, store: Store) -> None:
    await populate(store, "aquasec/trivy-java-db", "1", b"java db layer")
    client = await make_client()
    response = await client.get(f"/v2/aquasec/trivy-java-db/blobs/{db.layer_digest}")
    assert (response.status, error_codes(await response.read())) == (404, ["BLOB_UNKNOWN"])


async def test_aliases(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    response = await client.get("/v2/aquasecurity/trivy-db/manifests/2")
    assert (response.status, await response.read()) == (200, db.manifest.data)
    response = await client.get(f"/v2/aquasecurity/trivy-db/blobs/{db.layer_digest}")
    assert (response.status, await response.read()) == (200, db.layer_bytes)
    response = await client.get("/v2/aquasecurity/trivy-db/tags/list")
    assert await response.json() == {"name": "aquasecurity/trivy-db", "tags": ["2"]}


async def test_custom_aliases_replace_the_default(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client(ServerSettings(aliases={"mirror/db": "aquasec/trivy-db"}))
    assert (await client.get("/v2/mirror/db/manifests/2")).status == 200
    assert (await client.get("/v2/aquasecurity/trivy-db/manifests/2")).status == 404


async def test_tags_pagination(make_client: ClientFactory, store: Store) -> None:
    layout = store.layout("aquasec/trivy-checks")
    artifact = make_artifact(b"bundle", title="bundle.tar.gz", media_type=mediatype.CHECKS_LAYER)
    tags = ["1", "2", "2.1.0", "2.2.0", "latest"]
    for tag in tags:
        await push(layout, artifact, tag)
    client = await make_client()
    response = await client.get("/v2/aquasec/trivy-checks/tags/list")
    assert await response.json() == {"name": "aquasec/trivy-checks", "tags": tags}
    assert "Link" not in response.headers

    seen: list[str] = []
    url = "/v2/aquasec/trivy-checks/tags/list?n=2"
    while url:
        response = await client.get(url)
        body = await response.json()
        assert len(body["tags"]) <= 2
        seen += body["tags"]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == tags

    response = await client.get("/v2/aquasec/trivy-checks/tags/list?last=2.2.0")
    assert (await response.json())["tags"] == ["latest"]
    response = await client.get("/v2/aquasec/trivy-checks/tags/list?n=0")
    assert (await response.json())["tags"] == []
    for bad in ("-1", "x", "1e3", "²"):
        response = await client.get("/v2/aquasec/trivy-checks/tags/list", params={"n": bad})
        assert (response.status, error_codes(await response.read())) == (400, ["PAGINATION_NUMBER_INVALID"])


async def test_catalog(make_client: ClientFactory, db: Artifact, store: Store) -> None:
    await populate(store, "aquasec/trivy-java-db", "1", b"java")
    client = await make_client()
    response = await client.get("/v2/_catalog")
    assert await response.json() == {"repositories": ["aquasec/trivy-db", "aquasec/trivy-java-db"]}
    response = await client.get("/v2/_catalog?n=1")
    assert await response.json() == {"repositories": ["aquasec/trivy-db"]}
    assert response.headers["Link"] == '</v2/_catalog?n=1&last=aquasec%2Ftrivy-db>; rel="next"'


async def test_unknown_endpoint_and_method(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client()
    response = await client.get("/v2/aquasec/trivy-db/something")
    assert (response.status, error_codes(await response.read())) == (404, ["UNSUPPORTED"])
    for method, path in (("PUT", "/v2/aquasec/trivy-db/manifests/2"), ("DELETE", "/v2/aquasec/trivy-db/manifests/2"),
                         ("POST", "/v2/aquasec/trivy-db/blobs/uploads/")):
        response = await client.request(method, path, data=b"{}")
        assert (response.status, error_codes(await response.read())) == (405, ["UNSUPPORTED"]), method


async def test_new_version_visible_after_refresh(make_client: ClientFactory, db: Artifact,
                                                    store: Store) -> None:
    """The in-process sync lands a version and refreshes: the next request sees it."""
    client = await make_client()
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2")).headers["Docker-Content-Digest"] == db.digest
    newer = make_artifact(b"newer layer", created="2024-02-01T00:00:00Z")
    await push(store.layout("aquasec/trivy-db"), newer, "2")
    await client.app[CACHE_KEY].refresh()
    response = await client.get("/v2/aquasec/trivy-db/manifests/2")
    assert (response.headers["Docker-Content-Digest"], await response.read()) == (newer.digest, newer.manifest.data)
    # The old version stays reachable by digest, and its blob too, while it is kept.
    assert (await client.get(f"/v2/aquasec/trivy-db/manifests/{db.digest}")).status == 200
    assert (await client.get(f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}")).status == 200


async def test_new_version_noticed_by_stat(make_client: ClientFactory, db: Artifact, store: Store) -> None:
    """Another process (a CLI sync) moves the tag: the server notices by the index's stat within a second."""
    clock = FakeClock()
    client = await make_client(clock=clock)
    await client.get("/v2/aquasec/trivy-db/manifests/2")
    newer = make_artifact(b"newer layer 2")
    await push(store.layout("aquasec/trivy-db"), newer, "2")
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2")).headers["Docker-Content-Digest"] == db.digest
    await clock.advance(CHECK_INTERVAL - 0.1)  # a stat at most once per interval: not seen yet
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2")).headers["Docker-Content-Digest"] == db.digest
    await clock.advance(0.1)
    seen = []
    for _ in range(100):  # the request noticing the change starts a reload and is answered from the old snapshot
        seen.append((await client.get("/v2/aquasec/trivy-db/manifests/2")).headers["Docker-Content-Digest"])
        if seen[-1] == newer.digest:
            break
        await asyncio.sleep(0.01)
    assert seen[-1] == newer.digest and set(seen) <= {db.digest, newer.digest}


async def test_repository_removed_becomes_unknown(make_client: ClientFactory, db: Artifact, store: Store) -> None:
    client = await make_client()
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2")).status == 200
    await asyncio.to_thread(os.unlink, store.layout("aquasec/trivy-db").index_path)
    await client.app[CACHE_KEY].refresh()
    response = await client.get("/v2/aquasec/trivy-db/manifests/2")
    assert (response.status, error_codes(await response.read())) == (404, ["NAME_UNKNOWN"])


async def test_download_in_progress_finishes_on_the_old_file(make_client: ClientFactory, store: Store) -> None:
    """GC may unlink an old blob while a client downloads it: the open file keeps serving the full content."""
    big = os.urandom(4 * 1024 * 1024)
    artifact = await populate(store, "aquasec/trivy-db", "2", big)
    client = await make_client()
    response = await client.get(f"/v2/aquasec/trivy-db/blobs/{artifact.layer_digest}")
    first = await response.content.read(1024)
    await asyncio.to_thread(os.unlink, store.layout("aquasec/trivy-db").blob_path(artifact.layer[0].digest))
    rest = await response.read()
    assert first + rest == big


async def test_index_children_served_by_digest(make_client: ClientFactory, store: Store) -> None:
    """A one-entry index (as some mirrors publish): Trivy resolves it and asks for the child by digest."""
    layout = store.layout("aquasec/trivy-db")
    child = make_artifact(b"child layer")
    for descriptor, data in (child.config, child.layer):
        await layout.push_blob(descriptor, chunks(data))
    await layout.push_manifest(child.manifest)
    index_body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                             "manifests": [child.manifest.descriptor.to_json()]}).encode()
    index = ManifestBytes(index_body, mediatype.OCI_INDEX)
    await layout.tag("2", index)
    client = await make_client()
    response = await client.get("/v2/aquasec/trivy-db/manifests/2")
    assert response.headers["Content-Type"] == mediatype.OCI_INDEX
    response = await client.get(f"/v2/aquasec/trivy-db/manifests/{child.digest}")
    assert (response.status, await response.read()) == (200, child.manifest.data)
