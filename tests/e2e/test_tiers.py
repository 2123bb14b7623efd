"""Tiered mirrors: upstream (docker-registry and a VEX repository) → central ``serve`` (with auth) → edge
``serve --parent CENTRAL`` → Trivy. The upstream is stopped, then the central: the edge keeps serving what it
synced, and Trivy still finds the planted findings with the VEX statement applied.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryProcess, basic_auth_header
from support.serve import ServeProcess
from support.trivy import TrivySandbox, vuln_ids
from support.trivy_assets import MAVEN_CVE, PIP_CVE, AssetSet
from support.vex_repo import VexUpstreamThread, flat_tarball, manifest, repository_files

pytestmark = pytest.mark.e2e

USER = ("edge", "edge-secret")


def suppressed(report: dict[str, Any]) -> dict[str, str]:
    return {finding["Finding"]["VulnerabilityID"]: finding["Status"]
            for result in report.get("Results") or []
            for finding in result.get("ExperimentalModifiedFindings") or []}


def wait_synced(server: ServeProcess, references: set[str], timeout: float = 90,
                auth: dict[str, str] | None = None) -> dict[str, Any]:
    """/readyz once every reference in ``references`` is fresh (the first background sync landed)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, raw = server.get("/readyz", auth)
        body = json.loads(raw) if raw.startswith(b"{") else {}
        present = {row["reference"] for row in body.get("assets", []) if row.get("state") == "fresh"}
        if status == 200 and references <= present:
            return body
        time.sleep(0.3)
    raise AssertionError(f"{server.url} did not sync {sorted(references)}: {body}\n{server.log()}")


def use_vex(trivy: TrivySandbox, url: str) -> None:
    config = trivy.home / ".local" / "share" / ".trivy" / "vex" / "repository.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("repositories:\n"
                      "  - name: default\n    url: https://github.com/aquasecurity/vexhub\n    enabled: false\n"
                      f"  - name: mirror\n    url: {url}\n    enabled: true\n")


def test_edge_keeps_serving_with_upstream_then_central_stopped(
    private_upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox, tmp_path: Path,
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER[0]}:{bcrypt.hashpw(USER[1].encode(), bcrypt.gensalt(4)).decode()}\n")
    edge_args = ["--store", str(tmp_path / "edge"), "--src-creds", ":".join(USER)]
    with VexUpstreamThread() as vex:
        vex.files["/flat/.well-known/vex-repository.json"] = manifest(f"{vex.url}/flat/vex.tgz")
        vex.files["/flat/vex.tgz"] = flat_tarball(repository_files())
        central = ServeProcess(MirrorCli(tmp_path / "central-home"), [
            "--store", str(tmp_path / "central"), "--from", f"{private_upstream.host}/aquasec", "--htpasswd",
            str(htpasswd), "--vex-from", f"internal={vex.url}/flat"]).start()
        try:
            wait_synced(central, {"vex/internal"}, auth={"Authorization": basic_auth_header(USER)})
        except AssertionError:
            central.stop()
            raise
    try:
        private_upstream.stop()  # the upstream (registry and VEX) is gone before the edge starts
        with ServeProcess(MirrorCli(tmp_path / "edge-home"), [*edge_args, "--parent", central.url]) as edge:
            chain(central, edge, trivy, assets)
    finally:
        central.stop()


def chain(central: ServeProcess, edge: ServeProcess, trivy: TrivySandbox, assets: AssetSet) -> None:
    """The edge syncs everything from the central (with credentials: the listing answers 401 without), then
    serves Trivy with the central stopped too."""
    assert central.get("/vex/")[0] == 401
    ready = wait_synced(edge, {"vex/internal"})
    assert {row["reference"] for row in ready["assets"] if row["state"] == "fresh"} >= {
        "aquasec/trivy-db:2", "aquasec/trivy-java-db:1", "aquasec/trivy-checks:2", "vex/internal"}
    assert {row["source"].rpartition("/aquasec/")[0] for row in ready["assets"] if row["asset"] != "vex"} == \
        {central.host}
    status, listing = edge.get("/vex/")
    assert status == 200 and [r["name"] for r in json.loads(listing)["repositories"]] == ["internal"]
    synced = edge.cli.run(["sync", "--store", str(edge.cli.home / "sync-store"), "--parent", central.url,
                           "--src-creds", ":".join(USER), "--json"])
    assert synced.returncode == 0, synced.stderr
    assert {row["reference"]: row["outcome"] for row in json.loads(synced.stdout)["results"]} == {
        "aquasec/trivy-db:2": "updated", "aquasec/trivy-java-db:1": "updated", "aquasec/trivy-checks:2": "updated",
        "aquasec/trivy-checks:1": "updated", "vex/internal": "updated"}
    code = central.stop()
    assert code == 0, central.log()[-3000:]

    use_vex(trivy, f"{edge.url}/vex/internal")
    downloaded = trivy.run(["vex", "repo", "download"])
    assert downloaded.returncode == 0, downloaded.stderr[-3000:]
    report = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{edge.host}/aquasec/trivy-db:2",
                         "--vex", "repo", "--show-suppressed", str(assets.targets.requirements_dir)])
    assert PIP_CVE not in vuln_ids(report)
    assert suppressed(report) == {PIP_CVE: "not_affected"}
    java = trivy.scan(["rootfs", "--scanners", "vuln", "--skip-db-update", "--java-db-repository",
                       f"{edge.host}/aquasec/trivy-java-db:1", str(assets.targets.rootfs_dir)])
    assert vuln_ids(java) == {MAVEN_CVE}
    assert edge.get("/healthz")[0] == 200 and "Traceback" not in edge.log()


def test_sync_parent_errors(mirror: MirrorCli, tmp_path: Path) -> None:
    """``--parent`` with a path is one usage line (exit 2); an unreachable parent is one error line naming it."""
    bad = mirror.run(["sync", "--store", str(tmp_path / "s"), "--parent", "http://127.0.0.1:9/sub"])
    assert "--parent" in assert_one_error_line(bad, 2)
    down = mirror.run(["sync", "--store", str(tmp_path / "s"), "--parent", "http://127.0.0.1:9"],
                      env={"TRIVY_MIRROR_RETRY_DELAY": "0.01"})
    assert "127.0.0.1:9" in assert_one_error_line(down, 1)
