"""``copy`` between registries and OCI layouts, ``sync --dry-run``, and ``status`` of a registry destination."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.skopeo import skopeo_raw
from support.trivy_assets import CHECKS_REPOSITORY, DB_REPOSITORY, AssetSet, build_checks_bundle, build_vuln_db

pytestmark = pytest.mark.e2e


def test_copy_registry_to_registry_to_layout_and_back(
    mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet, tmp_path: Path
) -> None:
    destination = registry()
    source = f"{upstream.host}/{DB_REPOSITORY}:2"
    first = mirror.json(["copy", source, f"{destination.host}/copies/trivy-db:2"])
    assert first["outcome"] == "copied" and first["digest"] == assets.db.digest
    assert skopeo_raw(f"docker://{destination.host}/copies/trivy-db:2") == assets.db.manifest

    again = mirror.json(["copy", source, f"{destination.host}/copies/trivy-db:2"])
    assert again["outcome"] == "unchanged" and again["bytes_copied"] == 0

    layout = tmp_path / "usb" / "Trivy_DB"  # a plain directory: no repository-name rules apply
    mirror.json(["copy", f"{destination.host}/copies/trivy-db@{assets.db.digest}", f"oci-layout:{layout}:2"])
    assert skopeo_raw(f"oci:{layout}:2") == assets.db.manifest
    assert sorted(os.listdir(layout.parent)) == ["Trivy_DB"]  # no .lock or .tmp beside it
    assert sorted(os.listdir(layout)) == ["blobs", "index.json", "oci-layout"]

    back = registry()
    mirror.json(["copy", f"oci-layout:{layout}:2", f"{back.host}/aquasec/trivy-db:2"])
    assert skopeo_raw(f"docker://{back.host}/aquasec/trivy-db:2") == assets.db.manifest


def test_copy_of_a_missing_tag_is_one_line(mirror: MirrorCli, upstream: RegistryProcess, tmp_path: Path) -> None:
    result = mirror.run(["copy", f"{upstream.host}/{DB_REPOSITORY}:nope", f"oci-layout:{tmp_path / 'x'}:1"])
    assert "nope" in assert_one_error_line(result)
    bad = mirror.run(["copy", "oci-layout:no-tag-here", f"oci-layout:{tmp_path / 'x'}:1"])
    assert bad.returncode == 2 and "oci-layout:DIR:TAG" in bad.stderr


def test_dry_run_copies_nothing(mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory) -> None:
    destination = registry()
    summary = mirror.json(["sync", "--dry-run", "--from", f"{upstream.host}/aquasec", "--to", destination.host])
    assert {r["outcome"] for r in summary["results"]} == {"would-update"}
    writes = [(m, p) for m, p in destination.requests_log() if "/blobs/" in p or (m == "PUT" and "/manifests/" in p)]
    assert writes == []
    status = mirror.run(["status", "--to", destination.host, "--json"])
    assert status.returncode == 3
    assert {row["state"] for row in json.loads(status.stdout)["assets"]} == {"missing"}


def test_dry_run_refuses_what_sync_refuses_and_names_what_it_did_not_check(
    mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path,
) -> None:
    upstream = registry()
    push_artifact(upstream.host, CHECKS_REPOSITORY, "2", build_checks_bundle(version="1.2.0"))
    push_artifact(upstream.host, DB_REPOSITORY, "2", build_vuln_db())
    args = ["sync", "--from", f"{upstream.host}/aquasec", "--store", str(tmp_path / "s"), "--assets", "db,checks"]
    dry = mirror.run([*args, "--dry-run", "--json"])
    real = mirror.run([*args, "--json"])
    assert dry.returncode == real.returncode == 1
    dry_results = {r["reference"]: r for r in json.loads(dry.stdout)["results"]}
    real_results = {r["reference"]: r for r in json.loads(real.stdout)["results"]}
    checks = dry_results["aquasec/trivy-checks:2"]
    assert checks["outcome"] == real_results["aquasec/trivy-checks:2"]["outcome"] == "refused"
    assert "needs 2.x" in checks["message"]
    db = dry_results["aquasec/trivy-db:2"]
    assert db["outcome"] == "would-update" and real_results["aquasec/trivy-db:2"]["outcome"] == "updated"
    assert "not checked without the download: metadata.json Version" in db["message"]
    assert any("UpdatedAt" in item for item in db["unchecked"])


def test_status_of_a_registry_destination(mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory,
                                          assets: AssetSet) -> None:
    destination = registry()
    mirror.json(["sync", "--from", f"{upstream.host}/aquasec", "--to", f"{destination.host}/team"])
    status = mirror.json(["status", "--to", f"{destination.host}/team"])
    rows = {row["reference"]: row for row in status["assets"]}
    assert rows["aquasec/trivy-db:2"]["digest"] == assets.db.digest
    assert rows["aquasec/trivy-db:2"]["next_update"] is not None
    assert rows["aquasec/trivy-db:2"]["source"] == f"{upstream.host}/{DB_REPOSITORY}:2"
    assert {row["state"] for row in status["assets"]} == {"fresh"}

    # Another machine (no local state) still reads the metadata from the registry itself.
    stranger = MirrorCli(mirror.home.parent / "other-home")
    rows = {row["reference"]: row for row in stranger.json(["status", "--to", f"{destination.host}/team"])["assets"]}
    assert rows["aquasec/trivy-db:2"]["updated_at"] is not None
    assert rows["aquasec/trivy-db:2"]["state"] == "fresh"
