"""``serve --allow-push --allow-delete`` through the CLI, driven by skopeo and by raw HTTP as the spec describes:
an image pushed by digest only is read back by digest (and by skopeo straight from the store's OCI layout), a
referrer attached to it is discovered through the referrers API, and skopeo deletes it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.serve import ServeProcess
from support.skopeo import skopeo_raw

pytestmark = pytest.mark.e2e

USER, PASSWORD = "pusher", "push-pw-0123"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SBOM = "application/vnd.example.sbom.v1"


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def image_layout(layout: Path) -> tuple[str, bytes]:
    """A one-layer image in an OCI layout, tagged v1; its manifest digest and bytes."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        content = b"hello from a pushed image\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(tar.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_write_blob(layout, config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **_write_blob(layout, gzip.compress(tar.getvalue(), mtime=0))}],
    }).encode()
    described = _write_blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, **described, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    return described["digest"], manifest


def _request(server: ServeProcess, method: str, path: str, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers={"Authorization": f"Basic {auth}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def server(mirror: MirrorCli, tmp_path: Path) -> Iterator[ServeProcess]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True,
                                       check=True).stdout)
    process = ServeProcess(mirror, ["--store", str(tmp_path / "store"), "--no-sync", "--htpasswd", str(htpasswd),
                                    "--allow-push", "--allow-delete", "--push-user", USER]).start()
    yield process
    assert process.stop() == 0


def test_push_by_digest_referrers_and_delete_with_real_clients(server: ServeProcess, tmp_path: Path) -> None:
    digest, manifest = image_layout(tmp_path / "image")
    remote = f"docker://{server.host}/team/tool@{digest}"
    creds = f"{USER}:{PASSWORD}"
    pushed = _skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", f"oci:{tmp_path / 'image'}:v1",
                     remote)
    assert pushed.returncode == 0, pushed.stderr
    assert _skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false", remote).stdout.encode() == manifest
    # The store is an OCI image layout skopeo reads: the one (untagged) manifest, by no reference at all.
    assert skopeo_raw(f"oci:{tmp_path / 'store/team/tool'}") == manifest
    status, _, body = _request(server, "GET", "/v2/team/tool/tags/list")
    assert (status, json.loads(body)["tags"]) == (200, [])

    # Attach an SBOM (an artifact whose subject is the image) and discover it.
    empty = b"{}"
    empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
    status, _, _ = _request(server, "POST", f"/v2/team/tool/blobs/uploads/?digest={empty_digest}", empty,
                            {"Content-Type": "application/octet-stream"})
    assert status == 201
    sbom = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)},
        "annotations": {"org.example.kind": "sbom"},
    }).encode()
    sbom_digest = "sha256:" + hashlib.sha256(sbom).hexdigest()
    status, headers, _ = _request(server, "PUT", f"/v2/team/tool/manifests/{sbom_digest}", sbom,
                                  {"Content-Type": OCI_MANIFEST})
    assert (status, headers.get("OCI-Subject")) == (201, digest)
    status, headers, body = _request(server, "GET", f"/v2/team/tool/referrers/{digest}?artifactType={SBOM}")
    assert (status, headers["OCI-Filters-Applied"]) == (200, "artifactType")
    assert json.loads(body)["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": sbom_digest, "size": len(sbom),
                                              "artifactType": SBOM, "annotations": {"org.example.kind": "sbom"}}]

    deleted = _skopeo("delete", "--creds", creds, "--tls-verify=false", remote)
    assert deleted.returncode == 0, deleted.stderr
    gone = _skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false", remote)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr
    # The referrer outlives its subject's deletion (the spec lets the client clean it up).
    status, _, body = _request(server, "GET", f"/v2/team/tool/referrers/{digest}")
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [sbom_digest]


def test_allow_delete_without_allow_push_is_one_error_line(mirror: MirrorCli, tmp_path: Path) -> None:
    result = mirror.run(["serve", "--store", str(tmp_path / "store"), "--no-sync", "--allow-delete"])
    assert "--allow-delete needs --allow-push" in assert_one_error_line(result, code=2)
