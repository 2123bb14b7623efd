"""The client's referrers: the referrers API when the registry has it, else the tag schema fallback, which a push
of a referrer keeps up to date when the registry does not say (``OCI-Subject``) it indexed it."""

from __future__ import annotations

import json

from aiohttp import web

from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.referrers import fallback_tag

from .conftest import MakeClient
from .fake_registry import OCI_MANIFEST, FakeRegistry, manifest_for

SIG_TYPE = "application/vnd.example.signature.v1"


def _referrer(fake: FakeRegistry, subject: Digest, note: str) -> ManifestBytes:
    config = b"{}"
    fake.put_blob("aquasec/trivy-db", config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SIG_TYPE,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": str(Digest.of(config)), "size": 2},
           "layers": [], "annotations": {"note": note},
           "subject": {"mediaType": OCI_MANIFEST, "digest": str(subject), "size": 1}}
    return ManifestBytes(json.dumps(doc).encode(), OCI_MANIFEST)


async def test_push_keeps_the_fallback_tag_and_listing_reads_it(fake: FakeRegistry, fake_host: str,
                                                                make_client: MakeClient) -> None:
    subject = Digest.parse(fake.put_manifest("aquasec/trivy-db", "2", manifest_for(b"c", b"l")))
    repository = make_client(fake_host).repository("aquasec/trivy-db")
    assert await repository.referrers(subject) == []
    first, second = _referrer(fake, subject, "one"), _referrer(fake, subject, "two")
    for referrer in (first, second, first):  # pushing one again lists it once
        await repository.push_manifest(referrer)
    found = await repository.referrers(subject)
    assert [d.digest for d in found] == [first.digest, second.digest]
    assert found[0].artifact_type == SIG_TYPE and found[0].annotations == {"note": "one"}
    assert ("aquasec/trivy-db", fallback_tag(subject)) in fake.manifests
    assert fake.requests("GET", f"/referrers/{subject}")  # the API was asked first


async def test_a_registry_with_the_api_is_asked_and_not_tagged(fake: FakeRegistry, fake_host: str,
                                                               make_client: MakeClient) -> None:
    subject = Digest.parse(fake.put_manifest("aquasec/trivy-db", "2", manifest_for(b"c", b"l")))
    referrer = _referrer(fake, subject, "api")
    listed = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
              "manifests": [{"mediaType": OCI_MANIFEST, "digest": str(referrer.digest),
                             "size": len(referrer.data), "artifactType": SIG_TYPE}]}

    async def api(request: web.Request) -> web.Response | None:
        if "/referrers/" in request.path:
            return web.json_response(listed, content_type="application/vnd.oci.image.index.v1+json")
        if request.method == "PUT":
            handled = await fake._manifest(request)
            handled.headers["OCI-Subject"] = str(subject)
            return handled
        return None

    fake.hooks.append(api)
    repository = make_client(fake_host).repository("aquasec/trivy-db")
    await repository.push_manifest(referrer)
    assert ("aquasec/trivy-db", fallback_tag(subject)) not in fake.manifests
    assert [d.digest for d in await repository.referrers(subject)] == [referrer.digest]


def test_fallback_tag_is_the_spec_s() -> None:
    digest = Digest.of(b"x")
    assert fallback_tag(digest) == f"sha256-{digest.hex}"
