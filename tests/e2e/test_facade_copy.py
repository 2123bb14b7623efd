"""``trivy_mirror.copy`` in-process: registry to an OCI layout and back, against real registries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import trivy_mirror
from support.registry import RegistryFactory, RegistryProcess
from support.skopeo import skopeo_raw
from support.trivy_assets import DB_REPOSITORY, AssetSet

pytestmark = pytest.mark.e2e


def test_copy_registry_to_layout_and_back(upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet,
                                          tmp_path: Path) -> None:
    layout = tmp_path / "usb" / "Trivy DB"  # any directory: no repository-name rules
    source = f"http://{upstream.host}/{DB_REPOSITORY}:2"
    out = trivy_mirror.copy(source, f"oci-layout:{layout}:2")
    assert isinstance(out, trivy_mirror.CopyResult)
    assert (out.outcome, out.digest, out.source) == ("copied", assets.db.digest, source)
    assert out.stats.blobs_copied == 2 and out.stats.bytes_copied > 0 and out.stats.blobs_mounted == 0
    assert skopeo_raw(f"oci:{layout}:2") == assets.db.manifest
    assert sorted(os.listdir(layout)) == ["blobs", "index.json", "oci-layout"]  # its temp directory is gone

    again = trivy_mirror.copy(source, f"oci-layout:{layout}:2")
    assert (again.outcome, again.stats.bytes_copied) == ("unchanged", 0)

    back = registry()
    home = trivy_mirror.copy(f"oci-layout:{layout}:2", f"{back.host}/aquasec/trivy-db@{assets.db.digest}")
    assert (home.outcome, home.digest) == ("copied", assets.db.digest)
    assert skopeo_raw(f"docker://{back.host}/aquasec/trivy-db@{assets.db.digest}") == assets.db.manifest
    assert home.to_json()["blobs_copied"] == 2


def test_copy_raises_the_public_errors(upstream: RegistryProcess, tmp_path: Path) -> None:
    with pytest.raises(trivy_mirror.CopyError, match="nope") as failed:
        trivy_mirror.copy(f"{upstream.host}/{DB_REPOSITORY}:nope", f"oci-layout:{tmp_path / 'x'}:1")
    assert failed.value.side == "source"
    with pytest.raises(trivy_mirror.UsageError, match="oci-layout:DIR:TAG"):
        trivy_mirror.copy("oci-layout:no-tag-here", f"oci-layout:{tmp_path / 'x'}:1")
    with pytest.raises(trivy_mirror.UsageError, match="not one artifact's place"):
        trivy_mirror.copy(f"{upstream.host}/{DB_REPOSITORY}:2", f"static:{tmp_path}")
