"""OCI Distribution behaviours beyond pull and tagged push, written from the spec (distribution-spec v1.1):
manifests by digest whatever tags point at them, DELETE (with allow_delete), the referrers API, sha512 digests,
non-distributable layers, and an out-of-order chunk that leaves its upload usable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from support.skopeo import skopeo_raw
from support.trivy_assets import build_vuln_db
from trivy_mirror.errors import UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store
from trivy_mirror.store.index import REF_NAME

from .conftest import PASSWORD, PULL_PASSWORD, PULL_USER, USER, ClientFactory
from .helpers import EMPTY_CONFIG, Artifact, basic, bearer, error_codes, make_artifact
from .test_push import monolithic, push_artifact, push_trivy

AUTH = basic(USER, PASSWORD)
PULL_AUTH = basic(PULL_USER, PULL_PASSWORD)
SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"
Client = TestClient[web.Request, web.Application]


def settings(htpasswd: Path, tmp_path: Path, *, delete: bool = True, grace: float = 600.0) -> ServerSettings:
    return ServerSettings(htpasswd=htpasswd, allow_push=True, allow_delete=delete, push_users=frozenset({USER}),
                          upload_dir=tmp_path / "uploads", gc_grace=grace)


@pytest.fixture
async def client(make_client: ClientFactory, htpasswd: Path, tmp_path: Path) -> Client:
    return await make_client(settings(htpasswd, tmp_path))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrer(subject: Artifact | str, artifact_type: str, note: str, *, size: int = 100) -> bytes:
    """An artifact manifest whose subject is ``subject`` (an artifact, or a digest nothing was pushed at)."""
    subject_descriptor = subject.manifest.descriptor.to_json() if isinstance(subject, Artifact) else {
        "mediaType": mediatype.OCI_MANIFEST, "digest": subject, "size": size}
    body = {
        "schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": mediatype.OCI_EMPTY, "digest": sha256(EMPTY_CONFIG), "size": 2},
        "layers": [{"mediaType": mediatype.OCI_EMPTY, "digest": sha256(EMPTY_CONFIG), "size": 2}],
        "subject": subject_descriptor,
        "annotations": {"note": note},
    }
    return json.dumps(body).encode()


async def put_manifest(client: Client, name: str, reference: str, data: bytes, status: int = 201,
                       media_type: str = mediatype.OCI_MANIFEST) -> Any:
    response = await client.put(f"/v2/{name}/manifests/{reference}", data=data,
                                headers={**AUTH, "Content-Type": media_type})
    assert response.status == status, await response.text()
    return response


async def push_blobs(client: Client, name: str, artifact: Artifact) -> None:
    for descriptor, data in (artifact.config, artifact.layer):
        await monolithic(client, name, data, str(descriptor.digest))


async def referrers(client: Client, name: str, digest: str, **params: str) -> tuple[dict[str, Any], Any]:
    response = await client.get(f"/v2/{name}/referrers/{digest}", params=params, headers=PULL_AUTH)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == mediatype.OCI_INDEX
    return json.loads(await response.read()), response.headers


# Manifests by digest


async def test_untagged_manifest_pushed_by_digest_is_served_and_stored_without_a_ref_name(
        client: Client, store: Store) -> None:
    artifact = make_artifact(b"untagged")
    await push_blobs(client, "team/tool", artifact)
    response = await put_manifest(client, "team/tool", artifact.digest, artifact.manifest.data)
    assert response.headers["Location"] == f"/v2/team/tool/manifests/{artifact.digest}"
    for method in ("GET", "HEAD"):
        answer = await client.request(method, f"/v2/team/tool/manifests/{artifact.digest}", headers=PULL_AUTH)
        assert answer.status == 200, method
        assert answer.headers["Docker-Content-Digest"] == artifact.digest
    got = await client.get(f"/v2/team/tool/manifests/{artifact.digest}", headers=PULL_AUTH)
    assert await got.read() == artifact.manifest.data
    entries = json.loads((store.root / "team/tool/index.json").read_bytes())["manifests"]
    assert [(e["digest"], REF_NAME in e.get("annotations", {})) for e in entries] == [(artifact.digest, False)]
    tags = await client.get("/v2/team/tool/tags/list", headers=PULL_AUTH)
    assert json.loads(await tags.read())["tags"] == []
    # Tagged later, then the tag moves on: the digest still answers, and only one entry holds it.
    await put_manifest(client, "team/tool", "v1", artifact.manifest.data)
    other = make_artifact(b"other")
    await push_artifact(client, "team/tool", "v1", other)
    answer = await client.get(f"/v2/team/tool/manifests/{artifact.digest}", headers=PULL_AUTH)
    assert answer.status == 200


async def test_the_layout_stays_readable_by_skopeo(client: Client, store: Store) -> None:
    """skopeo reads the tagged image of a layout that also holds untagged manifests, and every blob is there."""
    untagged, tagged = make_artifact(b"by digest only"), make_artifact(b"tagged")
    await push_blobs(client, "team/tool", untagged)
    await put_manifest(client, "team/tool", untagged.digest, untagged.manifest.data)
    await push_artifact(client, "team/tool", "v1", tagged)
    layout = store.root / "team/tool"
    raw = await asyncio.to_thread(skopeo_raw, f"oci:{layout}:v1")
    assert raw == tagged.manifest.data
    copied = await asyncio.to_thread(subprocess.run, ["skopeo", "copy", f"oci:{layout}:v1",
                                                      f"dir:{layout.parent / 'copy'}"], capture_output=True,
                                     timeout=60)
    assert copied.returncode == 0, copied.stderr


# DELETE


async def test_delete_is_405_without_allow_delete(make_client: ClientFactory, htpasswd: Path,
                                                  tmp_path: Path) -> None:
    client = await make_client(settings(htpasswd, tmp_path, delete=False))
    artifact = make_artifact(b"kept")
    await push_artifact(client, "team/tool", "v1", artifact)
    for path in (f"manifests/{artifact.digest}", "manifests/v1", f"blobs/{artifact.layer_digest}"):
        response = await client.delete(f"/v2/team/tool/{path}", headers=AUTH)
        assert (response.status, error_codes(await response.read())) == (405, ["UNSUPPORTED"]), path


def test_allow_delete_needs_allow_push(htpasswd: Path) -> None:
    with pytest.raises(UsageError, match="--allow-delete needs --allow-push"):
        ServerSettings(htpasswd=htpasswd, allow_delete=True)


async def test_pull_credentials_cannot_delete(client: Client) -> None:
    artifact = make_artifact(b"kept")
    await push_artifact(client, "team/tool", "v1", artifact)
    response = await client.delete(f"/v2/team/tool/manifests/{artifact.digest}", headers=PULL_AUTH)
    assert (response.status, error_codes(await response.read())) == (403, ["DENIED"])
    response = await client.delete(f"/v2/team/tool/manifests/{artifact.digest}")
    assert response.status == 401


async def test_delete_with_a_token_from_the_token_endpoint(client: Client) -> None:
    """Clients that follow the challenge ask for a ``delete`` scope; a pusher's token gets it and may delete."""
    artifact = make_artifact(b"deleted with a token")
    await push_artifact(client, "team/tool", "v1", artifact)
    asked = {"service": "x", "scope": "repository:team/tool:delete"}
    pusher = await (await client.get("/token", params=asked, headers=AUTH)).json()
    reader = await (await client.get("/token", params=asked, headers=PULL_AUTH)).json()
    assert pusher["scope"] == "repository:team/tool:delete" and "scope" not in reader
    response = await client.delete("/v2/team/tool/manifests/v1", headers=bearer(reader["token"]))
    assert (response.status, error_codes(await response.read())) == (403, ["DENIED"])
    response = await client.delete("/v2/team/tool/manifests/v1", headers=bearer(pusher["token"]))
    assert response.status == 202


async def test_delete_tag_then_manifest_then_blobs(client: Client, store: Store) -> None:
    artifact = make_artifact(b"deleted step by step")
    await push_artifact(client, "team/tool", "v1", artifact)
    await put_manifest(client, "team/tool", "v2", artifact.manifest.data)
    response = await client.delete("/v2/team/tool/manifests/v1", headers=AUTH)
    assert response.status == 202
    assert (await client.get("/v2/team/tool/manifests/v1", headers=AUTH)).status == 404
    tags = json.loads(await (await client.get("/v2/team/tool/tags/list", headers=AUTH)).read())["tags"]
    assert tags == ["v2"]
    response = await client.delete("/v2/team/tool/manifests/v2", headers=AUTH)
    assert response.status == 202
    # No tag left; the manifest still answers by digest until it is deleted by digest.
    assert (await client.get(f"/v2/team/tool/manifests/{artifact.digest}", headers=AUTH)).status == 200
    response = await client.delete(f"/v2/team/tool/blobs/{artifact.layer_digest}", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (403, ["DENIED"])
    assert artifact.digest in (await response.read()).decode()
    response = await client.delete(f"/v2/team/tool/manifests/{artifact.digest}", headers=AUTH)
    assert response.status == 202
    for method in ("GET", "HEAD"):
        answer = await client.request(method, f"/v2/team/tool/manifests/{artifact.digest}", headers=AUTH)
        assert answer.status == 404, method
    response = await client.delete(f"/v2/team/tool/manifests/{artifact.digest}", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (404, ["MANIFEST_UNKNOWN"])
    response = await client.delete(f"/v2/team/tool/blobs/{artifact.layer_digest}", headers=AUTH)
    assert response.status == 202
    assert (await client.get(f"/v2/team/tool/blobs/{artifact.layer_digest}", headers=AUTH)).status == 404
    response = await client.delete(f"/v2/team/tool/blobs/{artifact.layer_digest}", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (404, ["BLOB_UNKNOWN"])
    # The GC started the grace clock of what the deletion unreferenced: the config waits out its grace.
    layout = store.layout("team/tool")
    assert layout.blob_path(artifact.config[0].digest).exists()
    assert str(artifact.config[0].digest) in (layout.path / "trivy-mirror-gc.json").read_text()
    response = await client.delete("/v2/team/tool/manifests/-bad", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["TAG_INVALID"])
    response = await client.delete("/v2/team/tool/manifests/sha256:nope", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])
    response = await client.delete("/v2/nobody/here/manifests/v1", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (404, ["NAME_UNKNOWN"])


async def test_anonymous_mount_finds_the_blob_in_the_store(client: Client) -> None:
    artifact = make_artifact(b"mount me anywhere")
    await push_artifact(client, "team/tool", "v1", artifact)
    response = await client.post("/v2/other/repo/blobs/uploads/", params={"mount": artifact.layer_digest},
                                 headers=AUTH)
    assert (response.status, response.headers["Location"]) == (201, f"/v2/other/repo/blobs/{artifact.layer_digest}")
    response = await client.post("/v2/other/repo/blobs/uploads/", params={"mount": sha256(b"nowhere")},
                                 headers=AUTH)
    assert response.status == 202  # not in the store: an upload session instead


async def test_a_child_served_only_through_its_index_is_not_deleted_alone(client: Client, store: Store) -> None:
    child = make_artifact(b"child of an index")
    await push_blobs(client, "team/tool", child)
    await store.layout("team/tool").push_manifest(child.manifest)  # as a sync stores an index's children
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                        "manifests": [child.manifest.descriptor.to_json()]}).encode()
    await put_manifest(client, "team/tool", "multi", index, media_type=mediatype.OCI_INDEX)
    assert (await client.get(f"/v2/team/tool/manifests/{child.digest}", headers=AUTH)).status == 200
    response = await client.delete(f"/v2/team/tool/manifests/{child.digest}", headers=AUTH)
    body = await response.read()
    assert (response.status, error_codes(body)) == (403, ["DENIED"]) and b"delete the index first" in body
    await client.delete(f"/v2/team/tool/manifests/{sha256(index)}", headers=AUTH)
    response = await client.delete(f"/v2/team/tool/manifests/{child.digest}", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (404, ["MANIFEST_UNKNOWN"])


async def test_a_blob_uploaded_to_a_repository_without_manifests_can_be_deleted(client: Client) -> None:
    digest = sha256(b"lonely")
    await monolithic(client, "team/fresh", b"lonely", digest)
    assert (await client.delete(f"/v2/team/fresh/blobs/{digest}", headers=AUTH)).status == 202
    assert (await client.head(f"/v2/team/fresh/blobs/{digest}", headers=AUTH)).status == 404


async def test_a_deleted_manifest_is_collected_after_the_grace_period(make_client: ClientFactory, htpasswd: Path,
                                                                      tmp_path: Path, store: Store) -> None:
    client = await make_client(settings(htpasswd, tmp_path, grace=0.0))
    artifact = make_artifact(b"collected")
    await push_artifact(client, "team/tool", "v1", artifact)
    assert (await client.delete(f"/v2/team/tool/manifests/{artifact.digest}", headers=AUTH)).status == 202
    layout = store.layout("team/tool")
    for digest in (artifact.manifest.digest, artifact.config[0].digest, artifact.layer[0].digest):
        assert not layout.blob_path(digest).exists()


async def test_the_served_catalog_version_is_never_deleted(client: Client) -> None:
    served = build_vuln_db()
    await push_trivy(client, "aquasec/trivy-db", "2", served)
    for name in ("aquasec/trivy-db", "aquasecurity/trivy-db"):
        for reference in ("2", served.digest):
            response = await client.delete(f"/v2/{name}/manifests/{reference}", headers=AUTH)
            body = await response.read()
            assert (response.status, error_codes(body)) == (403, ["DENIED"]), (name, reference)
            assert b"the version Trivy downloads" in body
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2", headers=AUTH)).status == 200
    # A signature attached to it is not the served version: it may be pushed by digest and deleted.
    signature = referrer(served.digest, SIGNATURE, "signed", size=len(served.manifest))
    await put_manifest(client, "aquasec/trivy-db", sha256(signature), signature)
    response = await client.delete(f"/v2/aquasec/trivy-db/manifests/{sha256(signature)}", headers=AUTH)
    assert response.status == 202


async def test_push_by_digest_with_tag_parameters(client: Client) -> None:
    artifact = make_artifact(b"tagged by parameters")
    await push_blobs(client, "team/tool", artifact)
    response = await client.put(f"/v2/team/tool/manifests/{artifact.digest}?tag=1.2.3&tag=1.2&tag=latest&tag=1.2",
                                data=artifact.manifest.data, headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert (response.status, response.headers["OCI-Tag"]) == (201, "1.2.3, 1.2, latest")
    tags = json.loads(await (await client.get("/v2/team/tool/tags/list", headers=AUTH)).read())["tags"]
    assert tags == ["1.2", "1.2.3", "latest"]
    response = await client.put(f"/v2/team/tool/manifests/{artifact.digest}?tag=-bad", data=artifact.manifest.data,
                                headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["TAG_INVALID"])
    many = "&".join(f"tag=t{i}" for i in range(33))
    response = await client.put(f"/v2/team/tool/manifests/{artifact.digest}?{many}", data=artifact.manifest.data,
                                headers=AUTH)
    assert response.status == 414


# Referrers


async def test_referrers_list_filter_and_subject_header(client: Client) -> None:
    image = make_artifact(b"the subject")
    await push_artifact(client, "team/tool", "v1", image)
    found, headers = await referrers(client, "team/tool", image.digest)
    assert found == {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": []}
    assert "OCI-Filters-Applied" not in headers
    sbom, signature = referrer(image, SBOM, "an sbom"), referrer(image, SIGNATURE, "a signature")
    for data in (sbom, signature):
        response = await put_manifest(client, "team/tool", sha256(data), data)
        assert response.headers["OCI-Subject"] == image.digest
    found, _ = await referrers(client, "team/tool", image.digest)
    assert found["manifests"] == [
        {"mediaType": mediatype.OCI_MANIFEST, "digest": sha256(data), "size": len(data), "artifactType": kind,
         "annotations": {"note": note}}
        for data, kind, note in ((sbom, SBOM, "an sbom"), (signature, SIGNATURE, "a signature"))]
    found, headers = await referrers(client, "team/tool", image.digest, artifactType=SBOM)
    assert [m["digest"] for m in found["manifests"]] == [sha256(sbom)]
    assert headers["OCI-Filters-Applied"] == "artifactType"
    # The referrers are manifests too: by digest, and absent from the tag list.
    assert (await client.get(f"/v2/team/tool/manifests/{sha256(sbom)}", headers=AUTH)).status == 200
    tags = json.loads(await (await client.get("/v2/team/tool/tags/list", headers=AUTH)).read())["tags"]
    assert tags == ["v1"]
    await client.delete(f"/v2/team/tool/manifests/{sha256(sbom)}", headers=AUTH)
    found, _ = await referrers(client, "team/tool", image.digest)
    assert [m["digest"] for m in found["manifests"]] == [sha256(signature)]


async def test_referrer_pushed_before_its_subject(client: Client) -> None:
    """The spec: a manifest whose subject does not exist (yet) is accepted, and listed."""
    absent = "sha256:" + "e" * 64
    data = referrer(absent, SBOM, "early")
    await monolithic(client, "team/tool", EMPTY_CONFIG, sha256(EMPTY_CONFIG))
    response = await put_manifest(client, "team/tool", sha256(data), data)
    assert response.headers["OCI-Subject"] == absent
    found, _ = await referrers(client, "team/tool", absent)
    assert [m["digest"] for m in found["manifests"]] == [sha256(data)]
    found, _ = await referrers(client, "no/such-repo", absent)
    assert found["manifests"] == []
    response = await client.get("/v2/team/tool/referrers/not-a-digest", headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])


async def test_referrer_without_artifact_type_is_listed_with_its_config_media_type(client: Client) -> None:
    image = make_artifact(b"subject")
    await push_artifact(client, "team/tool", "v1", image)
    obj = json.loads(referrer(image, SBOM, "x"))
    del obj["artifactType"]
    obj["config"] = {"mediaType": "application/vnd.example.config+json", "digest": sha256(b"{}"), "size": 2}
    data = json.dumps(obj).encode()
    await put_manifest(client, "team/tool", sha256(data), data)
    found, _ = await referrers(client, "team/tool", image.digest)
    assert found["manifests"][0]["artifactType"] == "application/vnd.example.config+json"


# sha512, non-distributable layers, chunks out of order


async def test_sha512_blob_and_manifest(client: Client) -> None:
    layer = b"sha512 layer"
    layer_digest = "sha512:" + hashlib.sha512(layer).hexdigest()
    await monolithic(client, "team/tool", layer, layer_digest)
    await monolithic(client, "team/tool", EMPTY_CONFIG, sha256(EMPTY_CONFIG))
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": sha256(EMPTY_CONFIG), "size": 2},
                       "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest,
                                   "size": len(layer)}]}).encode()
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    response = await put_manifest(client, "team/tool", digest, body)
    assert response.headers["Docker-Content-Digest"] == digest
    got = await client.get(f"/v2/team/tool/manifests/{digest}", headers=AUTH)
    assert (got.status, await got.read(), got.headers["Docker-Content-Digest"]) == (200, body, digest)
    blob = await client.get(f"/v2/team/tool/blobs/{layer_digest}", headers=AUTH)
    assert (blob.status, await blob.read()) == (200, layer)
    wrong = "sha512:" + hashlib.sha512(b"else").hexdigest()
    response = await client.put(f"/v2/team/tool/manifests/{wrong}", data=body, headers=AUTH)
    assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"])


async def test_non_distributable_layers_need_no_blob(client: Client) -> None:
    await monolithic(client, "team/tool", EMPTY_CONFIG, sha256(EMPTY_CONFIG))
    foreign = {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "digest": "sha256:" + "f" * 64, "size": 12345, "urls": ["https://example.invalid/layer"]}
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": sha256(EMPTY_CONFIG), "size": 2},
                       "layers": [foreign]}).encode()
    await put_manifest(client, "team/tool", "foreign", body)
    got = await client.get("/v2/team/tool/manifests/foreign", headers=AUTH)
    assert (got.status, await got.read()) == (200, body)
    missing = dict(foreign, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": sha256(EMPTY_CONFIG), "size": 2},
                       "layers": [missing]}).encode()
    response = await put_manifest(client, "team/tool", "plain", body, status=400)
    assert error_codes(await response.read()) == ["MANIFEST_BLOB_UNKNOWN"]


async def test_a_chunk_out_of_order_is_416_and_the_upload_goes_on(client: Client) -> None:
    data = b"0123456789" * 100
    location = (await client.post("/v2/team/tool/blobs/uploads/", headers=AUTH)).headers["Location"]
    response = await client.patch(location, data=data[:500],
                                  headers={**AUTH, "Content-Range": "0-499"})
    assert (response.status, response.headers["Range"]) == (202, "0-499")
    for method in ("PATCH", "PUT"):
        response = await client.request(method, location, data=data[600:], params={"digest": sha256(data)},
                                        headers={**AUTH, "Content-Range": f"600-{len(data) - 1}"})
        assert (response.status, error_codes(await response.read())) == (416, ["RANGE_INVALID"]), method
        assert response.headers["Range"] == "0-499"
    status = await client.get(location, headers=AUTH)
    assert (status.status, status.headers["Range"]) == (204, "0-499")
    response = await client.put(location, data=data[500:], params={"digest": sha256(data)},
                                headers={**AUTH, "Content-Range": f"500-{len(data) - 1}"})
    assert response.status == 201, await response.text()
    blob = await client.get(f"/v2/team/tool/blobs/{sha256(data)}", headers=AUTH)
    assert await blob.read() == data


# What already beat distribution stays


async def test_tags_stay_sorted_and_paginated_and_a_bad_digest_is_400(client: Client) -> None:
    artifact = make_artifact(b"tags")
    for tag in ("b", "a", "c"):
        await push_artifact(client, "team/tool", tag, artifact)
    page = await client.get("/v2/team/tool/tags/list", params={"n": "2"}, headers=AUTH)
    assert json.loads(await page.read())["tags"] == ["a", "b"]
    assert 'rel="next"' in page.headers["Link"]
    rest = await client.get("/v2/team/tool/tags/list", params={"n": "2", "last": "b"}, headers=AUTH)
    assert json.loads(await rest.read())["tags"] == ["c"]
    for path in ("manifests/sha256:zz", "blobs/sha256:zz", "referrers/sha999:00"):
        response = await client.get(f"/v2/team/tool/{path}", headers=AUTH)
        assert (response.status, error_codes(await response.read())) == (400, ["DIGEST_INVALID"]), path


async def test_prune_keeps_explicit_untagged_manifests_and_drops_referrers_of_pruned_versions(
        client: Client, store: Store) -> None:
    old, new, loose = make_artifact(b"old"), make_artifact(b"new"), make_artifact(b"pushed by digest")
    await push_artifact(client, "team/tool", "v1", old)
    signature = referrer(old, SIGNATURE, "old signature")
    await put_manifest(client, "team/tool", sha256(signature), signature)
    await push_blobs(client, "team/tool", loose)
    await put_manifest(client, "team/tool", loose.digest, loose.manifest.data)
    await push_artifact(client, "team/tool", "v1", new)
    assert store.layout("team/tool").prune(1) == [old.manifest.digest, Digest.parse(sha256(signature))]
    assert [str(e.digest) for e in store.layout("team/tool").manifests()] == [loose.digest, new.digest]
