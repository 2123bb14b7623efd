"""The registry client against a real CNCF distribution (Debian's ``docker-registry``), with and without auth.

Content is seeded or checked with tools that share no code with trivy_mirror: ``support.registry``'s
``http.client`` pusher and skopeo.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.registry import RegistryFactory, push_blob, push_manifest
from trivy_mirror.errors import AuthError, NotFound, VerificationError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.registry import Credentials, Keychain, RegistryClient, RetryPolicy
from trivy_mirror.registry import upload as upload_module

pytestmark = pytest.mark.e2e

LAYER = bytes(range(256)) * 12_000 + b"tail"  # ~3 MB, several read chunks
CONFIG = b"{}"


def _manifest(layer: bytes = LAYER) -> bytes:
    """A trivy-db shaped manifest, indented so that any re-serialisation would change its digest."""
    doc = {
        "schemaVersion": 2,
        "mediaType": mediatype.OCI_MANIFEST,
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "config": {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(CONFIG)), "size": 2, "data": "e30="},
        "layers": [{"mediaType": mediatype.TRIVY_DB_LAYER, "digest": str(Digest.of(layer)), "size": len(layer),
                    "annotations": {mediatype.ANNOTATION_TITLE: "db.tar.gz"}}],
    }
    return json.dumps(doc, indent=3).encode()


def _descriptor(data: bytes, media_type: str = mediatype.TRIVY_DB_LAYER) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data))


async def _chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _client(host: str, credentials: Credentials | None = None, keychain: Keychain | None = None) -> RegistryClient:
    return RegistryClient(host, credentials, keychain=keychain or Keychain(),
                          retry=RetryPolicy(attempts=2, backoff_base=0.05))


async def test_push_then_read_back(registry: RegistryFactory) -> None:
    process = registry()
    manifest = ManifestBytes.of(_manifest(), mediatype.OCI_MANIFEST)
    async with _client(process.host) as client:
        await client.ping()
        repo = client.repository("mirror/aquasec/trivy-db")
        assert await repo.resolve("2") is None
        assert not await repo.blob_exists(_descriptor(LAYER))
        for data in (CONFIG, LAYER):
            await repo.push_blob(_descriptor(data), _chunks(data))
            assert await repo.blob_exists(_descriptor(data))
        await repo.tag("2", manifest)
        await repo.tag("latest", manifest)

        assert await repo.resolve("2") == manifest.descriptor
        fetched = await repo.get_manifest("2")
        assert fetched.data == manifest.data and fetched.media_type == mediatype.OCI_MANIFEST
        assert (await repo.get_manifest(str(manifest.digest))).data == manifest.data
        assert await _collect(repo.fetch_blob(_descriptor(LAYER))) == LAYER
        assert sorted(await repo.tags()) == ["2", "latest"]
        with pytest.raises(NotFound, match="MANIFEST_UNKNOWN"):
            await repo.get_manifest("3")

    if shutil.which("skopeo"):
        command = ["skopeo", "inspect", "--raw", "--tls-verify=false",
                   f"docker://{process.host}/mirror/aquasec/trivy-db:2"]
        inspected = await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True, timeout=60)
        raw = inspected.stdout
        assert raw == manifest.data


async def test_reads_what_another_client_pushed(registry: RegistryFactory) -> None:
    process = registry()
    push_blob(process.host, "aquasec/trivy-db", CONFIG)
    push_blob(process.host, "aquasec/trivy-db", LAYER)
    digest = push_manifest(process.host, "aquasec/trivy-db", "2", _manifest(), mediatype.OCI_MANIFEST)
    async with _client(process.host) as client:
        repo = client.repository("aquasec/trivy-db")
        assert str((await repo.resolve("2") or pytest.fail("not found")).digest) == digest
        assert (await repo.get_manifest(digest)).data == _manifest()
        assert await _collect(repo.fetch_blob(_descriptor(LAYER))) == LAYER


async def test_chunked_upload_and_mount(registry: RegistryFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_module, "UPLOAD_CHUNK_SIZE", 1_000_000)
    process = registry()
    async with _client(process.host) as client:
        client.monolithic_uploads = False
        source = client.repository("upstream/trivy-db")
        await source.push_blob(_descriptor(LAYER), _chunks(LAYER, 77_777))
        patches = [r for r in process.requests_log() if r[0] == "PATCH"]
        assert len(patches) == 4

        target = client.repository("mirror/trivy-db")
        assert await target.mount_blob(_descriptor(LAYER), source)
        assert await _collect(target.fetch_blob(_descriptor(LAYER))) == LAYER
        assert not await target.mount_blob(_descriptor(b"never pushed"), source)


async def test_failed_source_leaves_no_blob(registry: RegistryFactory) -> None:
    process = registry()

    async def corrupt() -> AsyncIterator[bytes]:
        async for chunk in _chunks(LAYER):
            yield chunk
        raise VerificationError("content does not match its digest")

    async with _client(process.host) as client:
        repo = client.repository("a/b")
        with pytest.raises(VerificationError):
            await repo.push_blob(_descriptor(LAYER), corrupt())
        assert not await repo.blob_exists(_descriptor(LAYER))
    served = process.access_log()
    assert [e.status for e in served if e.method == "PUT"] != [201]
    assert any(e.method == "DELETE" for e in served)  # the upload was cancelled


async def test_htpasswd_registry_with_docker_config(registry: RegistryFactory, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    process = registry(auth=("alice", "c0rrect-horse"))
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(b"alice:c0rrect-horse").decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {process.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("HOME", str(tmp_path))

    async with RegistryClient(process.host, retry=RetryPolicy(attempts=2, backoff_base=0.05)) as client:
        repo = client.repository("aquasec/trivy-db")
        await repo.push_blob(_descriptor(CONFIG), _chunks(CONFIG))
        await repo.push_blob(_descriptor(LAYER), _chunks(LAYER))
        await repo.tag("2", ManifestBytes.of(_manifest(), mediatype.OCI_MANIFEST))
        assert (await repo.get_manifest("2")).data == _manifest()

    async with _client(process.host) as anonymous:
        with pytest.raises(AuthError, match=f"401 UNAUTHORIZED .*no credentials found for {process.host}") as denied:
            await anonymous.repository("aquasec/trivy-db").get_manifest("2")
        assert denied.value.codes == ("UNAUTHORIZED",)
        with pytest.raises(AuthError, match=f"^{process.host}: resolve aquasec/trivy-db:2: 401 "):
            await anonymous.repository("aquasec/trivy-db").resolve("2")

    async with _client(process.host, Credentials("alice", "wrong-horse")) as wrong:
        with pytest.raises(AuthError, match="were rejected") as caught:
            await wrong.repository("aquasec/trivy-db").get_manifest("2")
        assert "wrong-horse" not in str(caught.value)
