"""Replicas on one store: three ``serve`` processes share a store (as pods on a ReadWriteMany volume do).

While another process syncs the store, a replica skips its own sync and says so; when a newer DB lands upstream,
exactly one replica copies it and all three serve it without a restart; clients reading from all three
throughout get only 200s and blobs that hash-verify; the old version's blob, pruned from the index (``--keep
1``), is still served by every replica through the garbage collector's grace period.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryProcess, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, AssetSet, build_vuln_db, sha256_digest
from trivy_mirror.store import Store

pytestmark = pytest.mark.e2e

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def fetch(url: str, accept: str | None = None, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept": accept} if accept else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class Reader(threading.Thread):
    """A client pulling the DB (manifest, then its layer, hash-checked) from one replica until stopped."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.reads = 0

    def run(self) -> None:
        while not self.stop.is_set():
            status, headers, body = fetch(f"{self.base}/v2/{DB_REPOSITORY}/manifests/2", ACCEPT)
            if status != 200:
                self.errors.append(f"manifest: {status}")
                continue
            self.seen.add(headers["Docker-Content-Digest"])
            layer = json.loads(body)["layers"][0]["digest"]
            status, _, blob = fetch(f"{self.base}/v2/{DB_REPOSITORY}/blobs/{layer}")
            if status != 200 or sha256_digest(blob) != layer:
                self.errors.append(f"blob {layer}: {status}")
            self.reads += 1
            time.sleep(0.02)


def test_three_replicas_one_syncs_all_serve_the_new_version(
    private_upstream: RegistryProcess, assets: AssetSet, tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    source = f"{private_upstream.host}/aquasec"
    filled = MirrorCli(tmp_path / "home").run(["sync", "--store", str(store), "--from", source, "--assets", "db"])
    assert filled.returncode == 0, filled.stderr
    args = ["--store", str(store), "--from", source, "--assets", "db", "--sync-every", "1s", "--keep", "1"]
    replicas = [ServeProcess(MirrorCli(tmp_path / f"home-{i}"), args) for i in range(3)]
    readers = [Reader(replica.url) for replica in replicas]
    try:
        with Store(store).lock(timeout=10, purpose="sync"):  # this test is "another process syncing"
            for replica in replicas:
                replica.start()
            skipped = f"skipped: pid {os.getpid()} (sync) is syncing this store"
            wait_for(lambda: all(skipped in replica.log() for replica in replicas), "every replica skipped")
            assert all(replica.get("/readyz")[0] == 200 for replica in replicas)  # serving meanwhile

        for reader in readers:
            reader.start()
        old_layer = sha256_digest(assets.db.layers[0])
        new = build_vuln_db(updated_at=datetime.now(UTC) + timedelta(minutes=5))
        push_artifact(private_upstream.host, DB_REPOSITORY, "2", new)
        wait_for(lambda: all(new.digest in reader.seen for reader in readers), "every replica serves the new DB")
        time.sleep(1)  # reads go on after the switch
        for reader in readers:
            reader.stop.set()
            reader.join(15)
        # The old version left the index (--keep 1); its layer waits out the grace period on every replica.
        old = f"/v2/{DB_REPOSITORY}/manifests/{assets.db.digest}"
        wait_for(lambda: all(fetch(r.url + old, ACCEPT)[0] == 404 for r in replicas), "the old version pruned")
        for replica in replicas:
            status, _, blob = fetch(f"{replica.url}/v2/{DB_REPOSITORY}/blobs/{old_layer}")
            assert status == 200 and sha256_digest(blob) == old_layer
    finally:
        for reader in readers:
            reader.stop.set()
        codes = [replica.stop() for replica in replicas]
    logs = [replica.log() for replica in replicas]
    assert codes == [0, 0, 0], logs
    assert [reader.errors for reader in readers] == [[], [], []]
    assert all(reader.reads >= 5 and assets.db.digest in reader.seen for reader in readers)
    assert sum(log.count(f"updated {DB_REPOSITORY}:2") for log in logs) == 1, logs
    assert "Traceback" not in "".join(logs)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60,
             detail: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}\n{detail()}")



def test_serve_workers_share_the_port_and_stop_together(mirror: MirrorCli, private_upstream: RegistryProcess,
                                                        tmp_path: Path) -> None:
    """``serve --workers 2``: a second process serves the same port; both stop on SIGTERM; not with pushes, whose
    upload sessions live in one process."""
    store = tmp_path / "store"
    filled = mirror.run(["sync", "--store", str(store), "--from", f"{private_upstream.host}/aquasec",
                         "--assets", "db"])
    assert filled.returncode == 0, filled.stderr
    server = ServeProcess(mirror, ["--store", str(store), "--no-sync", "--assets", "db", "--workers", "2"]).start()
    try:
        wait_for(lambda: len(children(server.pid)) >= 1, "a worker", timeout=20, detail=server.log)
        workers = children(server.pid)
        wait_for(lambda: listeners(server.port) == {server.pid, *workers}, "both processes listening", timeout=20,
                 detail=server.log)
        statuses = {fetch(f"{server.url}/v2/{DB_REPOSITORY}/manifests/2", ACCEPT)[0] for _ in range(50)}
        assert statuses == {200}
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    tokens = tmp_path / "tokens"
    tokens.write_text("ci-token push\n")
    refused = mirror.run(["serve", "--store", str(store), "--workers", "2", "--allow-push", "--token-file",
                          str(tokens)])
    assert "--allow-push" in assert_one_error_line(refused, 2)


def test_a_token_from_one_worker_is_good_on_every_worker(mirror: MirrorCli, private_upstream: RegistryProcess,
                                                         tmp_path: Path) -> None:
    """``serve --workers 2 --htpasswd``: the kernel spreads new connections over both processes, and a token
    ``/token`` issued on one is accepted by the other (one signing key for the serve, handed to its workers)."""
    store = tmp_path / "store"
    filled = mirror.run(["sync", "--store", str(store), "--from", f"{private_upstream.host}/aquasec",
                         "--assets", "db"])
    assert filled.returncode == 0, filled.stderr
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", "scanner", "s3cret"], capture_output=True, text=True,
                                       check=True).stdout)
    server = ServeProcess(mirror, ["--store", str(store), "--no-sync", "--assets", "db", "--workers", "2",
                                   "--htpasswd", str(htpasswd)]).start()
    try:
        wait_for(lambda: len(children(server.pid)) >= 1, "a worker", timeout=20, detail=server.log)
        workers = children(server.pid)
        wait_for(lambda: listeners(server.port) == {server.pid, *workers}, "both processes listening", timeout=20,
                 detail=server.log)
        basic = "Basic " + base64.b64encode(b"scanner:s3cret").decode()
        login = urllib.request.Request(f"{server.url}/token?scope=repository:{DB_REPOSITORY}:pull",
                                       headers={"Authorization": basic})
        with urllib.request.urlopen(login, timeout=10) as response:
            token = json.loads(response.read())["token"]
        statuses = [fetch(f"{server.url}/v2/{DB_REPOSITORY}/manifests/2", ACCEPT, token)[0] for _ in range(40)]
        assert set(statuses) == {200}, statuses  # each a new connection: both workers answered some
        assert fetch(f"{server.url}/v2/{DB_REPOSITORY}/manifests/2", ACCEPT, "tm1.forged.token")[0] == 401
    finally:
        assert server.stop() == 0, server.log()


def listeners(port: int) -> set[int]:
    listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True)
    return {int(pid) for pid in re.findall(r"pid=(\d+)", listening.stdout)}


def children(pid: int) -> list[int]:
    """The trivy-mirror processes ``pid`` started (multiprocessing's resource tracker is not one)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line.split()[0]) for line in out.stdout.splitlines() if "spawn_main" in line]
