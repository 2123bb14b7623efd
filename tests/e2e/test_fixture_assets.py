"""Proof that the test fixtures are real: a real Trivy, pulling from a real registry, reports each planted finding.

If one of these fails, every product e2e test built on the fixtures is meaningless, so they check the chain
independently of trivy_mirror: assets built by ``support.trivy_assets``, pushed by ``support.registry``.
"""

from __future__ import annotations

import subprocess

import pytest

from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_AVD_ID,
    CHECK_ID,
    CHECKS_REPOSITORY,
    DB_REPOSITORY,
    JAVA_DB_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    AssetSet,
    build_vuln_db,
)

pytestmark = pytest.mark.e2e


def test_fs_reports_planted_pip_cve(upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox) -> None:
    before = len(upstream.requests_log())
    report = trivy.scan(
        [
            "fs",
            "--scanners", "vuln",
            "--db-repository", f"{upstream.host}/{DB_REPOSITORY}:2",
            str(assets.targets.requirements_dir),
        ]
    )
    assert vuln_ids(report) == {PIP_CVE}
    served = upstream.requests_log()[before:]
    assert ("GET", f"/v2/{DB_REPOSITORY}/manifests/2") in served
    assert ("GET", f"/v2/{DB_REPOSITORY}/blobs/{assets.db.manifest_json['layers'][0]['digest']}") in served


def test_rootfs_reports_planted_maven_cve_through_java_db(
    upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox
) -> None:
    report = trivy.scan(
        [
            "rootfs",
            "--scanners", "vuln",
            "--db-repository", f"{upstream.host}/{DB_REPOSITORY}:2",
            "--java-db-repository", f"{upstream.host}/{JAVA_DB_REPOSITORY}:1",
            str(assets.targets.rootfs_dir),
        ]
    )
    assert vuln_ids(report) == {MAVEN_CVE}


@pytest.mark.parametrize("tag", ["2", "1"])
def test_config_reports_only_the_planted_check(
    upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox, tag: str
) -> None:
    report = trivy.scan(
        [
            "config",
            "--checks-bundle-repository", f"{upstream.host}/{CHECKS_REPOSITORY}:{tag}",
            str(assets.targets.dockerfile_dir),
        ]
    )
    # A downloaded bundle switches the embedded checks off, so nothing else may fire.
    assert misconfig_ids(report) == {CHECK_ID, CHECK_AVD_ID}


@pytest.mark.parametrize(
    ("repository", "tag", "attribute"),
    [
        (DB_REPOSITORY, "2", "db"),
        (JAVA_DB_REPOSITORY, "1", "java_db"),
        (CHECKS_REPOSITORY, "2", "checks"),
        (CHECKS_REPOSITORY, "1", "checks_v1"),
    ],
)
def test_skopeo_reads_the_pushed_manifest_bytes(
    upstream: RegistryProcess, assets: AssetSet, repository: str, tag: str, attribute: str
) -> None:
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{upstream.host}/{repository}:{tag}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == getattr(assets, attribute).manifest


def test_filler_db_behind_auth_is_accepted_and_cached(
    registry: RegistryFactory, assets: AssetSet, trivy: TrivySandbox
) -> None:
    credentials = ("alice", "wonderland")
    private = registry(auth=credentials)
    artifact = build_vuln_db(filler_bytes=3 << 20)
    layer = artifact.layers[0]
    assert len(layer) > 3 << 20
    push_artifact(private.host, DB_REPOSITORY, "2", artifact, auth=credentials)
    args = [
        "fs",
        "--scanners", "vuln",
        "--db-repository", f"{private.host}/{DB_REPOSITORY}:2",
        str(assets.targets.requirements_dir),
    ]
    env = {"TRIVY_USERNAME": credentials[0], "TRIVY_PASSWORD": credentials[1]}

    before = len(private.requests_log())
    assert vuln_ids(trivy.scan(args, env=env)) == {PIP_CVE}
    first = private.access_log()[before:]
    blob_path = f"/v2/{DB_REPOSITORY}/blobs/{artifact.manifest_json['layers'][0]['digest']}"
    assert [(e.method, e.status) for e in first if e.path == blob_path] == [("GET", 200)]

    # The DB is fresh (NextUpdate in 24h), so a second scan must not touch the registry at all.
    before = len(private.requests_log())
    assert vuln_ids(trivy.scan(args, env=env)) == {PIP_CVE}
    assert private.requests_log()[before:] == []
