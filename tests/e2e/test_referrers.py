"""Referrers travel with the assets (issue 14): a signature-like artifact whose subject is the DB manifest, on a
real docker-registry 2.8 upstream (which has no referrers API, so the tag schema fallback is what is read), is
kept by ``sync`` and served by ``serve``'s referrers API, carried through ``export``/``import``, and copied
between two registries by ``copy -r`` (which keeps the fallback tag up to date on a destination without the API).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, RegistryProcess, push_artifact, push_blob, push_manifest
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, AssetSet, sha256_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-")


def attach_signature(registry: RegistryProcess, repository: str, subject: bytes) -> str:
    """Push a small signature whose subject is ``subject`` by digest, and list it in the fallback tag as a client
    of a registry without the referrers API does (oras, cosign). Written with plain HTTP calls, not the product."""
    config, payload = b"{}", b'{"signed": "the DB manifest", "by": "test"}'
    push_blob(registry.host, repository, config)
    push_blob(registry.host, repository, payload)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SIGNATURE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(config), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sha256_digest(payload),
                    "size": len(payload)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sha256_digest(subject), "size": len(subject)},
        "annotations": {"org.example.note": "test signature"},
    }).encode()
    digest = push_manifest(registry.host, repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "artifactType": SIGNATURE_TYPE}]}).encode()
    push_manifest(registry.host, repository, fallback_tag(sha256_digest(subject)), index, OCI_INDEX)
    return digest


@pytest.fixture
def signed_upstream(registry: RegistryFactory, assets: AssetSet) -> tuple[RegistryProcess, str]:
    """(an upstream holding the DB and a signature of it; the signature's digest)."""
    process = registry()
    push_artifact(process.host, DB_REPOSITORY, "2", assets.db)
    return process, attach_signature(process, DB_REPOSITORY, assets.db.manifest)


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    assert all(server.stop() == 0 for server in started)


def served_referrers(mirror: MirrorCli, servers: list[ServeProcess], store: Path, subject: str) -> list[str]:
    server = ServeProcess(mirror, ["--store", str(store), "--no-sync"])
    servers.append(server.start())
    status, body = server.get(f"/v2/{DB_REPOSITORY}/referrers/{subject}")
    assert status == 200, body
    found = [entry["digest"] for entry in json.loads(body)["manifests"]]
    for digest in found:
        assert server.get(f"/v2/{DB_REPOSITORY}/manifests/{digest}",
                          {"Accept": OCI_MANIFEST})[0] == 200
    return found


def test_sync_keeps_referrers_and_serve_lists_them_through_export_and_import(
        mirror: MirrorCli, signed_upstream: tuple[RegistryProcess, str], servers: list[ServeProcess],
        assets: AssetSet, tmp_path: Path) -> None:
    upstream, signature = signed_upstream
    subject = assets.db.digest
    store = tmp_path / "store"
    synced = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--assets", "db", "--store", str(store),
                         "--json"])
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["results"][0]["referrers_copied"] == 1
    assert ("GET", f"/v2/{DB_REPOSITORY}/manifests/{fallback_tag(subject)}") in upstream.requests_log()
    assert served_referrers(mirror, servers, store, subject) == [signature]

    again = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--assets", "db", "--store", str(store),
                        "--json"])
    assert again.returncode == 0 and json.loads(again.stdout)["results"][0]["referrers_copied"] == 0

    bundle = tmp_path / "bundle.tar"
    assert mirror.run(["export", "--store", str(store), "--assets", "db", str(bundle)]).returncode == 0
    imported_store = tmp_path / "imported"
    imported = mirror.run(["import", str(bundle), "--store", str(imported_store)])
    assert imported.returncode == 0, imported.stderr
    assert served_referrers(mirror, servers, imported_store, subject) == [signature]

    bare = tmp_path / "bare"
    skipped = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--assets", "db", "--store", str(bare),
                          "--no-referrers"])
    assert skipped.returncode == 0, skipped.stderr
    entries = json.loads((bare / DB_REPOSITORY / "index.json").read_text())["manifests"]
    assert {entry["digest"] for entry in entries} == {subject}  # its tag and dated tag: no referrer


def listed_in_fallback_tag(registry: RegistryProcess, repository: str, subject: str) -> list[tuple[str, str]]:
    url = f"{registry.url}/v2/{repository}/manifests/{fallback_tag(subject)}"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": OCI_INDEX}), timeout=10) as answer:
        return [(m["digest"], m["artifactType"]) for m in json.loads(answer.read())["manifests"]]


def test_sync_to_a_registry_without_the_api_keeps_the_fallback_tag(
        mirror: MirrorCli, signed_upstream: tuple[RegistryProcess, str], registry: RegistryFactory,
        assets: AssetSet) -> None:
    upstream, signature = signed_upstream
    destination = registry()
    synced = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--assets", "db", "--to",
                         f"{destination.host}/mirror"])
    assert synced.returncode == 0, synced.stderr
    assert listed_in_fallback_tag(destination, f"mirror/{DB_REPOSITORY}", assets.db.digest) == [
        (signature, SIGNATURE_TYPE)]


def test_copy_r_between_two_registries(mirror: MirrorCli, signed_upstream: tuple[RegistryProcess, str],
                                       registry: RegistryFactory, assets: AssetSet) -> None:
    upstream, signature = signed_upstream
    destination = registry()
    subject = assets.db.digest
    source = f"{upstream.host}/{DB_REPOSITORY}:2"

    plain = mirror.run(["copy", source, f"{destination.host}/plain/trivy-db:2"])
    assert plain.returncode == 0, plain.stderr
    assert not any(signature in path for _, path in destination.requests_log())

    copied = mirror.run(["copy", "-r", source, f"{destination.host}/signed/trivy-db:2", "--json"])
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["referrers_copied"] == 1
    assert listed_in_fallback_tag(destination, "signed/trivy-db", subject) == [(signature, SIGNATURE_TYPE)]

    later = mirror.run(["copy", "-r", source, f"{destination.host}/plain/trivy-db:2", "--json"])
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["outcome"] == "unchanged" and json.loads(later.stdout)["referrers_copied"] == 1
