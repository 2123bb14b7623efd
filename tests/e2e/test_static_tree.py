"""``sync --to static:DIR`` (and ``import --to static:DIR``) served by a real nginx, configured from
deploy/static's template, to a real Trivy: DB, Java DB, checks bundle and a VEX repository through nginx alone,
and a new DB landing while clients read the tag and the blob without one error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.nginx import Nginx
from support.registry import RegistryProcess, push_artifact
from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_ID,
    DB_REPOSITORY,
    MAVEN_CVE,
    OCI_MANIFEST,
    PIP_CVE,
    AssetSet,
    build_vuln_db,
    sha256_digest,
)
from support.trivy_versions import trivy_binary
from support.vex_repo import DOCUMENT, UpstreamVex, github_tarball, manifest, repository_files

pytestmark = pytest.mark.e2e

GH_ARCHIVE = "/gh/archive/refs/heads/main.tar.gz"


@pytest.fixture
async def vex_upstream() -> AsyncIterator[UpstreamVex]:
    """One VEX repository shaped like VEX Hub on GitHub (a top-level directory, hence ``//vexhub-main``)."""
    server = await UpstreamVex().start()
    server.files["/gh/.well-known/vex-repository.json"] = manifest(f"{server.url}{GH_ARCHIVE}//vexhub-main")
    server.files[GH_ARCHIVE] = github_tarball(repository_files())
    yield server
    await server.stop()


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr[-3000:]
    return {entry["reference"]: entry["outcome"] for entry in json.loads(result.stdout)["results"]}


def use_vex_mirror(trivy: TrivySandbox, url: str) -> None:
    """Trivy's repository.yaml: its GitHub default disabled, the tree's repository enabled."""
    config = trivy.home / ".local" / "share" / ".trivy" / "vex" / "repository.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("repositories:\n"
                      "  - name: default\n    url: https://github.com/aquasecurity/vexhub\n    enabled: false\n"
                      f"  - name: mirror\n    url: {url}\n    enabled: true\n")


def check_registry_surface(nginx: Nginx, assets: AssetSet) -> None:
    """What a registry client sees: /v2/, manifests by tag and digest with their type and digest, blobs, the
    ghcr alias, and nothing of trivy-mirror's own files."""
    status, headers, body = nginx.get("/v2/")
    assert (status, body) == (200, b"{}\n") and headers["Content-Type"] == "application/json"
    db = assets.db
    for path in ("/v2/aquasec/trivy-db/manifests/2", f"/v2/aquasec/trivy-db/manifests/{db.digest}",
                 "/v2/aquasecurity/trivy-db/manifests/2"):
        status, headers, body = nginx.get(path)
        assert (status, body) == (200, db.manifest), path
        assert headers.get_all("Content-Type") == [OCI_MANIFEST], path
        assert headers["Docker-Content-Digest"] == db.digest, path
    layer = db.layers[0]
    status, headers, body = nginx.get(f"/v2/aquasecurity/trivy-db/blobs/{sha256_digest(layer)}")
    assert (status, body) == (200, layer)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Docker-Content-Digest"] == sha256_digest(layer)
    assert nginx.get("/v2/aquasec/trivy-db/manifests/3")[0] == 404
    assert nginx.get("/.trivy-mirror/headers.json")[0] == 404


def scan_every_asset(trivy: TrivySandbox, assets: AssetSet, host: str) -> None:
    fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{host}/aquasec/trivy-db:2",
                     str(assets.targets.requirements_dir)])
    assert vuln_ids(fs) == {PIP_CVE}
    rootfs = trivy.scan(["rootfs", "--scanners", "vuln", "--skip-db-update",
                         "--java-db-repository", f"{host}/aquasecurity/trivy-java-db:1",
                         str(assets.targets.rootfs_dir)])
    assert vuln_ids(rootfs) == {MAVEN_CVE}
    config = trivy.scan(["config", "--checks-bundle-repository", f"{host}/aquasec/trivy-checks:2",
                         str(assets.targets.dockerfile_dir)])
    assert CHECK_ID in misconfig_ids(config)


async def test_trivy_gets_every_asset_and_vex_from_nginx_alone(
    mirror: MirrorCli, upstream: RegistryProcess, vex_upstream: UpstreamVex, assets: AssetSet, trivy: TrivySandbox,
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    nginx = Nginx(tree, tmp_path / "nginx")
    result = await asyncio.to_thread(mirror.run, [
        "sync", "--to", f"static:{tree}", "--from", f"{upstream.host}/aquasec", "--assets", "db,java-db,checks,vex",
        "--vex-from", f"gh={vex_upstream.url}/gh", "--public-url", nginx.url, "--json"])
    assert outcomes(result) == {"aquasec/trivy-db:2": "updated", "aquasec/trivy-java-db:1": "updated",
                                "aquasec/trivy-checks:2": "updated", "aquasec/trivy-checks:1": "updated",
                                "vex/gh": "updated"}
    await vex_upstream.stop()

    with nginx:
        await asyncio.to_thread(check_registry_surface, nginx, assets)
        status, headers, body = nginx.get("/vex/gh/.well-known/vex-repository.json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(body)["versions"][0]["locations"] == [{"url": f"{nginx.url}/vex/gh/archive.tar.gz"}]

        await asyncio.to_thread(scan_every_asset, trivy, assets, nginx.host)
        use_vex_mirror(trivy, f"{nginx.url}/vex/gh")
        download = await asyncio.to_thread(trivy.run, ["vex", "repo", "download"])
        assert download.returncode == 0, download.stderr[-3000:]
        assert (trivy.cache_dir / "vex" / "repositories" / "mirror" / "0.1" / DOCUMENT).is_file()
        report = await asyncio.to_thread(trivy.scan, [
            "fs", "--scanners", "vuln", "--skip-db-update", "--vex", "repo", "--show-suppressed",
            str(assets.targets.requirements_dir)])
    assert PIP_CVE not in vuln_ids(report)
    assert [(f["Finding"]["VulnerabilityID"], f["Status"]) for r in report["Results"]
            for f in r.get("ExperimentalModifiedFindings") or []] == [(PIP_CVE, "not_affected")]

    sidecar = json.loads((tree / ".trivy-mirror" / "headers.json").read_text())
    assert sidecar["/v2/aquasec/trivy-db/manifests/2"] == {"Content-Type": OCI_MANIFEST,
                                                           "Docker-Content-Digest": assets.db.digest}
    assert sidecar["/vex/gh/archive.tar.gz"] == {"Content-Type": "application/gzip"}
    status_run = await asyncio.to_thread(mirror.run, ["status", "--to", f"static:{tree}", "--json"])
    rows = {row["reference"]: row for row in json.loads(status_run.stdout)["assets"]}
    assert rows["aquasec/trivy-db:2"]["digest"] == assets.db.digest
    assert rows["vex/gh"]["state"] == "fresh"


async def test_trivy_0_67_and_0_76_through_registry_mirrors_and_vex_never_answered_304(
    mirror: MirrorCli, upstream: RegistryProcess, vex_upstream: UpstreamVex, assets: AssetSet, tmp_path: Path,
) -> None:
    """Trivy's default references redirected by ``registry.mirrors`` (0.67 asks for trivy-checks:1, 0.76 for :2),
    and VEX re-checked after its interval: nginx sends no ETag, so Trivy before 0.73 never meets the 304 that
    makes it delete its VEX cache."""
    tree = tmp_path / "tree"
    nginx = Nginx(tree, tmp_path / "nginx")
    result = await asyncio.to_thread(mirror.run, [
        "sync", "--to", f"static:{tree}", "--from", f"{upstream.host}/aquasec", "--assets", "db,checks,vex",
        "--vex-from", f"gh={vex_upstream.url}/gh", "--public-url", nginx.url, "--json"])
    assert outcomes(result)["vex/gh"] == "updated"
    config = tmp_path / "trivy.yaml"
    config.write_text(f"registry:\n  mirrors:\n    mirror.gcr.io:\n      - {nginx.host}\n")
    old_binary = trivy_binary("0.67.2")
    with nginx:
        for binary, name in (("trivy", "new"), (old_binary, "old")):
            client = TrivySandbox(tmp_path / f"{name}-cache", tmp_path / f"{name}-home", binary)
            fs = await asyncio.to_thread(client.scan, ["fs", "--config", str(config), "--scanners", "vuln",
                                                       str(assets.targets.requirements_dir)])
            assert vuln_ids(fs) == {PIP_CVE}, binary
            checks = await asyncio.to_thread(client.scan, ["config", "--config", str(config),
                                                           str(assets.targets.dockerfile_dir)])
            assert CHECK_ID in misconfig_ids(checks), binary
        use_vex_mirror(client, f"{nginx.url}/vex/gh")
        for _ in range(2):
            download = await asyncio.to_thread(client.run, ["vex", "repo", "download"])
            assert download.returncode == 0, download.stderr[-3000:]
            cache_file = client.cache_dir / "vex" / "repositories" / "mirror" / "cache.json"
            cache = json.loads(cache_file.read_text())
            cache["UpdatedAt"] = "2000-01-01T00:00:00Z"  # the update_interval has passed
            cache_file.write_text(json.dumps(cache))
        assert (client.cache_dir / "vex" / "repositories" / "mirror" / "0.1" / DOCUMENT).is_file()
    log = (tmp_path / "nginx" / "access.log").read_text()
    archive = [(line.split('"')[1].split()[0], line.split('"')[2].split()[0])
               for line in log.splitlines() if "/vex/gh/archive.tar.gz " in line]
    assert [method for method, _ in archive].count("GET") >= 2 and {status for _, status in archive} == {"200"}
    assert '/trivy-checks/manifests/1 HTTP/1.1" 200' in log and '/trivy-checks/manifests/2 HTTP/1.1" 200' in log


class Readers:
    """Client threads reading the tag and then its layer through nginx in a loop, hash-verifying every blob."""

    def __init__(self, nginx: Nginx, count: int) -> None:
        self.nginx = nginx
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._read, daemon=True) for _ in range(count)]

    def _read(self) -> None:
        while not self.stop.is_set():
            status, _, body = self.nginx.get("/v2/aquasec/trivy-db/manifests/2")
            if status != 200:
                self.failures.append(f"manifest: {status}")
                continue
            layer: dict[str, Any] = json.loads(body)["layers"][0]
            status, _, blob = self.nginx.get(f"/v2/aquasec/trivy-db/blobs/{layer['digest']}")
            if status != 200 or len(blob) != layer["size"] or sha256_digest(blob) != layer["digest"]:
                self.failures.append(f"blob {layer['digest'][:19]}: {status}, {len(blob)} bytes, "
                                     f"{hashlib.sha256(blob).hexdigest()[:12]}")
                continue
            with self.lock:
                self.seen[layer["digest"]] = self.seen.get(layer["digest"], 0) + 1

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def wait_for(self, digest: str, reads: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.seen.get(digest, 0) < reads:
            assert time.monotonic() < deadline, f"readers never read {digest[:19]} {reads} times: {self.seen}"
            time.sleep(0.05)


def test_a_new_db_lands_while_clients_read_through_nginx(
    mirror: MirrorCli, upstream: RegistryProcess, assets: AssetSet, tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    first = mirror.run(["sync", "--to", f"static:{tree}", "--from", f"{upstream.host}/aquasec", "--assets", "db",
                        "--json"])
    assert outcomes(first) == {"aquasec/trivy-db:2": "updated"}
    old_layer = sha256_digest(assets.db.layers[0])
    new = build_vuln_db(updated_at=datetime.now(UTC) + timedelta(minutes=5), filler_bytes=24 << 20)
    new_layer = sha256_digest(new.layers[0])
    with RegistryProcess(tmp_path / "source") as source, Nginx(tree, tmp_path / "nginx") as nginx:
        push_artifact(source.host, DB_REPOSITORY, "2", new)
        with Readers(nginx, 4) as readers:
            readers.wait_for(old_layer, 20)
            second = mirror.run(["sync", "--to", f"static:{tree}", "--from", f"{source.host}/aquasec",
                                 "--assets", "db", "--json"])
            assert outcomes(second) == {"aquasec/trivy-db:2": "updated"}
            readers.wait_for(new_layer, 8)
            nginx.reload()
            readers.wait_for(new_layer, readers.seen[new_layer] + 8)
        assert readers.failures == []
        assert readers.seen[old_layer] >= 20
        status, headers, _ = nginx.get("/v2/aquasec/trivy-db/manifests/2")
        assert status == 200 and headers["Docker-Content-Digest"] == new.digest
        # --keep 2 (the default): the previous version's manifest and layer stay for clients that read it late.
        assert nginx.get(f"/v2/aquasec/trivy-db/manifests/{assets.db.digest}")[0] == 200
        assert nginx.get(f"/v2/aquasec/trivy-db/blobs/{old_layer}", "HEAD")[0] == 200


async def test_import_writes_a_static_tree_and_its_vex_repositories_under_the_public_url(
    mirror: MirrorCli, upstream: RegistryProcess, vex_upstream: UpstreamVex, assets: AssetSet, tmp_path: Path,
) -> None:
    store, bundle, tree = tmp_path / "store", tmp_path / "bundle.tar", tmp_path / "tree"
    synced = await asyncio.to_thread(mirror.run, [
        "sync", "--store", str(store), "--from", f"{upstream.host}/aquasec", "--assets", "db,checks,vex",
        "--vex-from", f"gh={vex_upstream.url}/gh"])
    assert synced.returncode == 0, synced.stderr
    exported = await asyncio.to_thread(mirror.run, ["export", str(bundle), "--store", str(store),
                                                    "--assets", "db,checks,vex"])
    assert exported.returncode == 0, exported.stderr

    without_url = await asyncio.to_thread(mirror.run, ["import", str(bundle), "--to", f"static:{tmp_path / 'other'}",
                                                       "--json"])
    assert outcomes(without_url)["vex/gh"] == "skipped" and "--public-url" in without_url.stderr

    imported = await asyncio.to_thread(mirror.run, ["import", str(bundle), "--to", f"static:{tree}", "--public-url",
                                                    "http://mirror.example:8080", "--json"])
    assert outcomes(imported) == {"aquasec/trivy-db:2": "updated", "aquasec/trivy-checks:2": "updated",
                                  "aquasec/trivy-checks:1": "updated", "vex/gh": "updated"}
    assert (tree / "v2" / "aquasec" / "trivy-db" / "manifests" / "2").read_bytes() == assets.db.manifest
    assert (tree / "v2" / "aquasecurity" / "trivy-checks").resolve() == tree / "v2" / "aquasec" / "trivy-checks"
    vex_manifest = json.loads((tree / "vex" / "gh" / ".well-known" / "vex-repository.json").read_bytes())
    assert vex_manifest["versions"][0]["locations"] == [{"url": "http://mirror.example:8080/vex/gh/archive.tar.gz"}]
    [stored_archive] = (store / "vex" / "gh" / "blobs" / "sha256").iterdir()
    assert (tree / "vex" / "gh" / "archive.tar.gz").read_bytes() == stored_archive.read_bytes()

    again = await asyncio.to_thread(mirror.run, ["import", str(bundle), "--to", f"static:{tree}", "--json"])
    assert set(outcomes(again).values()) == {"unchanged"}
    status = json.loads((await asyncio.to_thread(mirror.run, ["status", "--to", f"static:{tree}", "--json"])).stdout)
    rows = {row["reference"]: row["digest"] for row in status["assets"]}
    assert rows["aquasec/trivy-db:2"] == assets.db.digest and rows["vex/gh"] == f"sha256:{stored_archive.name}"


@pytest.mark.parametrize(("args", "message"), [
    (["sync", "--to", "static:{tree}", "--assets", "vex"], "needs --public-url"),
    (["sync", "--to", "static:{tree}", "--assets", "vex", "--public-url", "mirror.internal"],
     "must be an http:// or https:// URL"),
    (["sync", "--to", "127.0.0.1:9/trivy", "--keep", "3"], "--keep applies to the store and to --to static:DIR"),
    (["sync", "--store", "{tree}", "--public-url", "http://mirror.internal"], "--public-url applies to --to static"),
    (["import", "-", "--to", "static:"], "static: needs a directory"),
])
def test_static_usage_errors_are_one_line_and_touch_nothing(mirror: MirrorCli, tmp_path: Path, args: list[str],
                                                            message: str) -> None:
    tree = tmp_path / "tree"
    result = mirror.run([arg.replace("{tree}", str(tree)) for arg in args], input="")
    assert message in assert_one_error_line(result, code=2)
    assert not tree.exists()


def test_public_url_and_keep_from_the_environment_or_config_leave_other_destinations_alone(
    mirror: MirrorCli, upstream: RegistryProcess, tmp_path: Path,
) -> None:
    """serve shares these names: a shared ``keep:`` in the config file or TRIVY_MIRROR_PUBLIC_URL in the
    environment must not turn ``sync --store`` into a usage error."""
    config = tmp_path / "config.yaml"
    config.write_text("keep: 3\n")
    result = mirror.run(["--config", str(config), "sync", "--store", str(tmp_path / "store"), "--from",
                         f"{upstream.host}/aquasec", "--assets", "db", "--dry-run"],
                        env={"TRIVY_MIRROR_PUBLIC_URL": "http://mirror.example"})
    assert result.returncode == 0, result.stderr
