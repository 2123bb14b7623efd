"""``trivy-mirror serve`` as a user runs it: it syncs from upstream, then real Trivy clients (0.76 and 0.67) pull
every asset from it with the upstream stopped: plainly, through ``registry.mirrors``, with htpasswd users,
``trivy registry login``, a static token, and over TLS with a private CA.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.serve import ServeProcess
from support.tls import make_tls
from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_ID,
    DB_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    AssetSet,
    build_vuln_db,
)
from support.trivy_versions import trivy_binary

pytestmark = pytest.mark.e2e

USER, PASSWORD, TOKEN = "scanner", "correct-horse-battery", "static-token-for-trivy"


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    """Servers started by a test; each must exit 0 on SIGTERM."""
    started: list[ServeProcess] = []
    yield started
    codes = {server.host: server.stop() for server in started}
    assert all(code == 0 for code in codes.values()), codes


def start(servers: list[ServeProcess], server: ServeProcess) -> ServeProcess:
    servers.append(server)
    return server.start()


def scan_everything(trivy: TrivySandbox, assets: AssetSet, base: str, *extra: str,
                    env: dict[str, str] | None = None) -> None:
    fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{base}/aquasec/trivy-db:2", *extra,
                     str(assets.targets.requirements_dir)], env=env)
    assert vuln_ids(fs) == {PIP_CVE}
    rootfs = trivy.scan(["rootfs", "--scanners", "vuln", "--skip-db-update", "--java-db-repository",
                         f"{base}/aquasec/trivy-java-db:1", *extra, str(assets.targets.rootfs_dir)], env=env)
    assert vuln_ids(rootfs) == {MAVEN_CVE}
    config = trivy.scan(["config", "--checks-bundle-repository", f"{base}/aquasec/trivy-checks:2", *extra,
                         str(assets.targets.dockerfile_dir)], env=env)
    assert CHECK_ID in misconfig_ids(config)


def test_serve_syncs_then_serves_new_and_old_trivy_with_upstream_stopped(
    mirror: MirrorCli, private_upstream: RegistryProcess, servers: list[ServeProcess], assets: AssetSet,
    trivy: TrivySandbox, tmp_path: Path,
) -> None:
    server = start(servers, ServeProcess(mirror, ["--store", str(tmp_path / "store"), "--from",
                                                  f"{private_upstream.host}/aquasec"]))
    ready = server.wait_ready()
    assert {row["state"] for row in ready["assets"]} == {"fresh"}
    private_upstream.stop()

    scan_everything(trivy, assets, server.host)

    # Only registry.mirrors: Trivy keeps its default references and the mirror answers for mirror.gcr.io.
    config = tmp_path / "trivy.yaml"
    config.write_text(f"registry:\n  mirrors:\n    mirror.gcr.io:\n      - {server.host}\n")
    for binary, home in (("trivy", "new"), (trivy_binary("0.67.2"), "old")):
        client = TrivySandbox(tmp_path / f"{home}-cache", tmp_path / f"{home}-home", binary)
        fs = client.scan(["fs", "--config", str(config), "--scanners", "vuln", str(assets.targets.requirements_dir)])
        assert vuln_ids(fs) == {PIP_CVE}, binary
        checks = client.scan(["config", "--config", str(config), str(assets.targets.dockerfile_dir)])
        assert CHECK_ID in misconfig_ids(checks), binary  # 0.67 asks for trivy-checks:1, 0.76 for :2

    status, body = server.get("/metrics")
    assert status == 200
    assert b'trivy_mirror_http_requests_total{method="GET",route="blobs",status="200"}' in body


def test_serve_with_htpasswd_login_and_token(
    mirror: MirrorCli, private_upstream: RegistryProcess, servers: list[ServeProcess], assets: AssetSet,
    tmp_path: Path,
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True,
                                       check=True).stdout)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    server = start(servers, ServeProcess(mirror, [
        "--store", str(tmp_path / "store"), "--from", f"{private_upstream.host}/aquasec",
        "--htpasswd", str(htpasswd), "--token-file", str(tokens)]))
    server.wait_ready()
    private_upstream.stop()

    assert server.get("/v2/")[0] == 401
    assert server.get("/v2/aquasec/trivy-db/manifests/2")[0] == 401
    assert server.get("/v2/aquasec/trivy-db/manifests/2", {"Authorization": "Bearer wrong"})[0] == 401

    with_env = TrivySandbox(tmp_path / "env-cache", tmp_path / "env-home")
    scan_everything(with_env, assets, server.host, env={"TRIVY_USERNAME": USER, "TRIVY_PASSWORD": PASSWORD})

    logged_in = TrivySandbox(tmp_path / "login-cache", tmp_path / "login-home")
    login = logged_in.run(["registry", "login", server.host, "--username", USER, "--password", PASSWORD])
    assert login.returncode == 0, login.stderr
    scan_everything(logged_in, assets, server.host)

    with_token = TrivySandbox(tmp_path / "token-cache", tmp_path / "token-home")
    scan_everything(with_token, assets, server.host, "--registry-token", TOKEN)

    anonymous = TrivySandbox(tmp_path / "anon-cache", tmp_path / "anon-home")
    refused = anonymous.run(["fs", "--scanners", "vuln", "--db-repository", f"{server.host}/aquasec/trivy-db:2",
                             str(assets.targets.requirements_dir)])
    assert refused.returncode != 0
    assert PASSWORD not in server.log() and TOKEN not in server.log()


def test_serve_over_tls_with_a_private_ca(
    mirror: MirrorCli, private_upstream: RegistryProcess, servers: list[ServeProcess], assets: AssetSet,
    tmp_path: Path,
) -> None:
    ca, cert, key = make_tls(tmp_path)
    server = start(servers, ServeProcess(mirror, [
        "--store", str(tmp_path / "store"), "--from", f"{private_upstream.host}/aquasec",
        "--tls-cert", str(cert), "--tls-key", str(key)], ca_file=ca))
    server.wait_ready()
    private_upstream.stop()

    untrusting = TrivySandbox(tmp_path / "plain-cache", tmp_path / "plain-home")
    refused = untrusting.run(["fs", "--scanners", "vuln", "--db-repository", f"{server.host}/aquasec/trivy-db:2",
                              str(assets.targets.requirements_dir)])
    assert refused.returncode != 0 and "certificate" in refused.stderr

    with_env = TrivySandbox(tmp_path / "env-cache", tmp_path / "env-home")
    scan_everything(with_env, assets, server.host, env={"SSL_CERT_FILE": str(ca)})
    with_flag = TrivySandbox(tmp_path / "flag-cache", tmp_path / "flag-home")
    scan_everything(with_flag, assets, server.host, "--cacert", str(ca))

    # trivy-config asks the mirror over the same TLS: refused without the CA, fine with it (or --insecure).
    untrusted = mirror.run(["trivy-config", "--mirror", server.url, "--format", "flags"])
    assert "certificate" in assert_one_error_line(untrusted, code=1)
    for trust in (["--ca-file", str(ca)], ["--insecure"]):
        configured = mirror.run(["trivy-config", "--mirror", server.url, "--format", "flags", *trust])
        assert configured.returncode == 0, configured.stderr
        assert "serves no VEX repository" in configured.stderr


def test_skopeo_reads_and_a_sync_pushes_into_an_allow_push_server(
    mirror: MirrorCli, private_upstream: RegistryProcess, servers: list[ServeProcess], assets: AssetSet,
    trivy: TrivySandbox, tmp_path: Path,
) -> None:
    hub = start(servers, ServeProcess(mirror, ["--store", str(tmp_path / "hub"), "--from",
                                               f"{private_upstream.host}/aquasec"]))
    hub.wait_ready()
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{hub.host}/aquasec/trivy-db:2"], capture_output=True, check=True).stdout
    assert raw == assets.db.manifest
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{hub.host}/aquasecurity/trivy-java-db:1",
                    f"dir:{tmp_path / 'copied'}"], capture_output=True, check=True)
    assert (tmp_path / "copied" / "manifest.json").read_bytes() == assets.java_db.manifest

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True,
                                       check=True).stdout)
    spoke = start(servers, ServeProcess(mirror, ["--store", str(tmp_path / "spoke"), "--no-sync", "--htpasswd",
                                                 str(htpasswd), "--allow-push", "--push-user", USER,
                                                 "--anonymous-pull"]))
    summary = mirror.json(["sync", "--from", f"{hub.host}/aquasec", "--to", spoke.host,
                           "--dest-creds", f"{USER}:{PASSWORD}"])
    assert {r["outcome"] for r in summary["results"]} == {"updated"}
    private_upstream.stop()
    scan_everything(trivy, assets, spoke.host)


def _download_forever(server: ServeProcess, path: str, digest: str, stop: threading.Event,
                      results: list[bool]) -> None:
    while not stop.is_set():
        status, body = server.get(path)
        results.append(status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == digest)


def test_a_sync_lands_while_clients_download(
    mirror: MirrorCli, registry: RegistryFactory, servers: list[ServeProcess], tmp_path: Path,
) -> None:
    upstream = registry()
    old = build_vuln_db(filler_bytes=8 << 20, updated_at=datetime.now(UTC) - timedelta(hours=1))
    push_artifact(upstream.host, DB_REPOSITORY, "2", old)
    store = tmp_path / "store"
    sync = ["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"]
    mirror.json(sync)
    server = start(servers, ServeProcess(mirror, ["--store", str(store), "--no-sync", "--assets", "db"]))
    assert json.loads(server.get("/v2/aquasec/trivy-db/manifests/2")[1]) == old.manifest_json

    layer = old.manifest_json["layers"][0]["digest"]
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    clients = [threading.Thread(target=_download_forever, args=(server, f"/v2/aquasec/trivy-db/blobs/{layer}",
                                                               layer, stop, results)) for _ in range(8)]
    for client in clients:
        client.start()
    new = build_vuln_db(filler_bytes=8 << 20)
    push_artifact(upstream.host, DB_REPOSITORY, "2", new)
    summary = mirror.json(sync)  # another process writes the store the server is serving
    assert summary["results"][0]["outcome"] == "updated"
    time.sleep(1.5)  # the server notices index.json changes within a second
    stop.set()
    for client in clients:
        client.join()
    assert len(results) >= 8 and all(results), f"{results.count(False)} bad downloads of {len(results)}"
    status, body = server.get("/v2/aquasec/trivy-db/manifests/2")
    assert status == 200 and body == new.manifest
