"""``trivy-mirror sync`` end to end: real registries, the CLI as a user runs it, a real Trivy and skopeo."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, free_port, push_artifact
from support.skopeo import skopeo_raw
from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_ID,
    CHECKS_REPOSITORY,
    DB_REPOSITORY,
    JAVA_DB_LAYER,
    JAVA_DB_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    AssetSet,
    build_checks_bundle,
    build_vuln_db,
)

pytestmark = pytest.mark.e2e


def blob_requests(process: RegistryProcess, since: int) -> list[tuple[str, str]]:
    return [(m, p) for m, p in process.requests_log()[since:] if "/blobs/" in p]


def test_sync_to_registry_serves_trivy_with_upstream_stopped(
    mirror: MirrorCli, private_upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet,
    trivy: TrivySandbox,
) -> None:
    destination = registry()
    summary = mirror.json(["sync", "--from", f"{private_upstream.host}/aquasec", "--to", f"{destination.host}/mirror"])
    outcomes = {(r["asset"], r["reference"]): r["outcome"] for r in summary["results"]}
    assert outcomes == {("db", "aquasec/trivy-db:2"): "updated", ("java-db", "aquasec/trivy-java-db:1"): "updated",
                        ("checks", "aquasec/trivy-checks:2"): "updated",
                        ("checks", "aquasec/trivy-checks:1"): "updated"}

    for repository, tag, artifact in assets.upstream_tags():
        assert skopeo_raw(f"docker://{destination.host}/mirror/{repository}:{tag}") == artifact.manifest

    private_upstream.stop()
    base = f"{destination.host}/mirror/aquasec"
    fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{base}/trivy-db:2",
                     str(assets.targets.requirements_dir)])
    assert vuln_ids(fs) == {PIP_CVE}
    rootfs = trivy.scan(["rootfs", "--scanners", "vuln", "--skip-db-update",
                         "--java-db-repository", f"{base}/trivy-java-db:1", str(assets.targets.rootfs_dir)])
    assert vuln_ids(rootfs) == {MAVEN_CVE}
    config = trivy.scan(["config", "--checks-bundle-repository", f"{base}/trivy-checks:2",
                         str(assets.targets.dockerfile_dir)])
    assert CHECK_ID in misconfig_ids(config)


def test_sync_into_store_is_read_by_skopeo_and_second_sync_moves_no_blob(
    mirror: MirrorCli, private_upstream: RegistryProcess, assets: AssetSet, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    source = f"{private_upstream.host}/aquasec"
    first = mirror.json(["sync", "--from", source, "--store", str(store)])
    assert {r["outcome"] for r in first["results"]} == {"updated"}
    db = next(r for r in first["results"] if r["asset"] == "db")
    assert db["updated_at"] is not None and db["next_update"] is not None
    assert db["digest"] == assets.db.digest

    assert skopeo_raw(f"oci:{store}/aquasec/trivy-db:2") == assets.db.manifest
    copied = tmp_path / "copied"
    subprocess.run(["skopeo", "copy", f"oci:{store}/aquasec/trivy-db:2", f"dir:{copied}"], check=True,
                   capture_output=True, timeout=60)
    assert (copied / assets.db.manifest_json["layers"][0]["digest"].split(":")[1]).read_bytes() == assets.db.layers[0]

    before = len(private_upstream.requests_log())
    second = mirror.json(["sync", "--from", source, "--store", str(store)])
    assert {r["outcome"] for r in second["results"]} == {"unchanged"}
    requests = private_upstream.requests_log()[before:]
    assert blob_requests(private_upstream, before) == []
    manifest_gets = [p for m, p in requests if "/manifests/" in p and "/manifests/sha256-" not in p]
    assert len(manifest_gets) == 4  # one per asset tag: db, java-db, checks :2 and :1
    lookups = [p for m, p in requests if "/referrers/" in p or "/manifests/sha256-" in p]
    assert len(lookups) == 8  # per asset tag, its referrers: the API (distribution 2.8 has none) and the tag fallback

    status = mirror.json(["status", "--store", str(store)])
    rows = {row["reference"]: row for row in status["assets"]}
    assert rows["aquasec/trivy-db:2"]["state"] == "fresh"
    assert rows["aquasec/trivy-db:2"]["digest"] == assets.db.digest
    assert rows["aquasec/trivy-db:2"]["size"] == len(assets.db.layers[0]) + 2
    assert set(rows["aquasec/trivy-db:2"]) >= {"asset", "reference", "digest", "size", "updated_at", "next_update",
                                              "source", "state"}


def test_second_sync_to_registry_transfers_no_blob(
    mirror: MirrorCli, private_upstream: RegistryProcess, registry: RegistryFactory
) -> None:
    destination = registry()
    args = ["sync", "--from", f"{private_upstream.host}/aquasec", "--to", destination.host]
    mirror.json(args)
    before_src, before_dst = len(private_upstream.requests_log()), len(destination.requests_log())
    summary = mirror.json(args)
    assert {r["outcome"] for r in summary["results"]} == {"unchanged"}
    assert blob_requests(private_upstream, before_src) == []
    assert blob_requests(destination, before_dst) == []


def test_status_reports_missing_with_exit_3(mirror: MirrorCli, tmp_path: Path) -> None:
    status = mirror.json(["status", "--store", str(tmp_path / "empty")], expect=3)
    assert {row["state"] for row in status["assets"]} == {"missing"}
    assert {row["asset"] for row in status["assets"]} == {"db", "java-db", "checks"}


def test_auth_with_docker_config_and_clear_failure_without(
    mirror: MirrorCli, private_upstream: RegistryProcess, registry: RegistryFactory, tmp_path: Path
) -> None:
    credentials = ("robot", "s3cret-pass")
    destination = registry(auth=credentials)
    args = ["sync", "--from", f"{private_upstream.host}/aquasec", "--to", destination.host, "--assets", "checks"]

    denied = mirror.run(args)
    line = assert_one_error_line(denied)
    assert "401" in line or "auth" in line.lower()
    assert credentials[1] not in denied.stderr + denied.stdout

    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(":".join(credentials).encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {destination.host: {"auth": auth}}}))
    allowed = mirror.run([*args, "--json"], env={"DOCKER_CONFIG": str(docker_config)})
    assert allowed.returncode == 0, allowed.stderr
    assert credentials[1] not in allowed.stderr + allowed.stdout
    assert {r["outcome"] for r in json.loads(allowed.stdout)["results"]} == {"updated"}

    env_creds = {"TRIVY_MIRROR_DEST_USERNAME": credentials[0], "TRIVY_MIRROR_DEST_PASSWORD": credentials[1]}
    again = mirror.run([*args, "--json"], env=env_creds)
    assert again.returncode == 0, again.stderr
    assert {r["outcome"] for r in json.loads(again.stdout)["results"]} == {"unchanged"}


def test_unreachable_source_one_line_and_store_untouched(
    mirror: MirrorCli, private_upstream: RegistryProcess, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    mirror.json(["sync", "--from", f"{private_upstream.host}/aquasec", "--store", str(store)])
    before = sorted((p.relative_to(store), p.stat().st_size) for p in store.rglob("*") if p.is_file()
                    and p.name != "trivy-mirror.json")

    result = mirror.run(["sync", "--from", f"127.0.0.1:{free_port()}/aquasec", "--store", str(store)])
    line = assert_one_error_line(result)
    assert "127.0.0.1" in line
    errors = [x for x in result.stderr.splitlines() if x.startswith("trivy-mirror: error:")]
    assert len(errors) == 1, result.stderr
    after = sorted((p.relative_to(store), p.stat().st_size) for p in store.rglob("*") if p.is_file()
                   and p.name != "trivy-mirror.json")
    assert after == before


def _bad_db_candidates() -> dict[str, tuple[object, str]]:
    future = datetime.now(UTC) + timedelta(days=1)
    return {
        "two layers": (build_vuln_db(layer_count=2), "exactly one"),
        "wrong media type": (build_vuln_db(layer_media_type=JAVA_DB_LAYER), "media type"),
        "no title": (build_vuln_db(title=None), "title"),
        "unsafe title": (build_vuln_db(title="../db.tar.gz"), "local relative path"),
        "schema 3": (build_vuln_db(schema_version=3, updated_at=future), "Version is 3"),
        "older": (build_vuln_db(updated_at=datetime.now(UTC) - timedelta(days=3)), "older"),
    }


@pytest.mark.parametrize("case", list(_bad_db_candidates()))
def test_refused_candidates_keep_the_current_version(
    case: str, mirror: MirrorCli, private_upstream: RegistryProcess, registry: RegistryFactory,
    assets: AssetSet, tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    mirror.json(["sync", "--from", f"{private_upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    artifact, reason = _bad_db_candidates()[case]
    bad_upstream = registry()
    push_artifact(bad_upstream.host, DB_REPOSITORY, "2", artifact)  # type: ignore[arg-type]

    result = mirror.run(["sync", "--from", f"{bad_upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    line = assert_one_error_line(result)
    assert reason in line
    assert skopeo_raw(f"oci:{store}/aquasec/trivy-db:2") == assets.db.manifest


def test_checks_major_version_mismatch_is_refused(
    mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path
) -> None:
    upstream = registry()
    push_artifact(upstream.host, CHECKS_REPOSITORY, "2", build_checks_bundle(version="1.2.0"))
    result = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(tmp_path / "s"),
                         "--assets", "checks"])
    assert "needs 2.x" in assert_one_error_line(result)


def test_bad_flags_are_usage_errors(mirror: MirrorCli, tmp_path: Path) -> None:
    result = mirror.run(["sync", "--assets", "nope", "--store", str(tmp_path)])
    assert result.returncode == 2 and "unknown asset" in result.stderr and "Traceback" not in result.stderr
    result = mirror.run(["sync", "--from", "Not A Prefix!", "--store", str(tmp_path)])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = mirror.run(["sync", "--store", str(tmp_path), "--to", "127.0.0.1:1"])
    assert result.returncode == 2 and "cannot be used together" in result.stderr


def test_java_db_from_fallback_source(
    mirror: MirrorCli, private_upstream: RegistryProcess, tmp_path: Path
) -> None:
    summary = mirror.json(["sync", "--from", f"127.0.0.1:{free_port()}/aquasec", "--from",
                           f"{private_upstream.host}/aquasec", "--store", str(tmp_path / "s"), "--assets", "java-db"])
    [result] = summary["results"]
    assert result["outcome"] == "updated"
    assert result["source"] == f"{private_upstream.host}/{JAVA_DB_REPOSITORY}:1"
