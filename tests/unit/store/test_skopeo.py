"""The store is a plain OCI image layout: skopeo reads what we write, and we read what skopeo writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from store_helpers import artifact, push

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.store import Store


def skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True,
                          timeout=60).stdout


async def test_skopeo_reads_the_layout(store: Store, tmp_path: Path) -> None:
    layout = store.layout("aquasec/trivy-db")
    item = artifact(b"a trivy db layer" * 1000)
    await push(layout, item, "2")
    await push(layout, artifact(b"newer layer"), "latest")

    raw = skopeo("inspect", "--raw", f"oci:{layout.path}:2")
    assert raw == item.manifest.data

    out = tmp_path / "copied"
    skopeo("copy", f"oci:{layout.path}:2", f"dir:{out}")
    manifest = (out / "manifest.json").read_bytes()
    assert Digest.of(manifest) == item.manifest.digest
    assert (out / item.layer.digest.hex).read_bytes() == item.blobs[1][1]


async def test_we_read_what_skopeo_writes(store: Store, tmp_path: Path) -> None:
    source = store.layout("aquasec/trivy-db")
    item = artifact(b"layer")
    await push(source, item, "2")
    target = store.layout("aquasecurity/trivy-db")
    target.path.mkdir(parents=True)  # skopeo creates the layout directory, not its parents
    skopeo("copy", "--preserve-digests", f"oci:{source.path}:2", f"oci:{target.path}:2")

    assert target.tags()["2"].digest == item.manifest.digest
    manifest = target.read_manifest("2")
    assert manifest is not None and manifest.data == item.manifest.data
    assert manifest.media_type == mediatype.OCI_MANIFEST
    assert store.repositories() == ["aquasec/trivy-db", "aquasecurity/trivy-db"]
