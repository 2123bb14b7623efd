"""Crash consistency and concurrency through the real CLI.

``kill -9`` at random instants during syncs of a large DB into the store and into a registry: after each, the
store verifies clean (or the registry tag resolves to a complete artifact), the previous version or the new one
is what is served, never a part, and the next sync converges. Then two syncs on one store at once, and a sync
landing while 16 clients download continuously from ``serve``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import trivy_mirror
from support.cli import MirrorCli, kill_at_random
from support.faultproxy import FAST
from support.newer_source import NewerSource, newer_source, served_digest
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, OCI_MANIFEST, AssetSet

pytestmark = pytest.mark.resilience

STORE_KILLS = 30
REGISTRY_KILLS = 20


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess, assets: AssetSet) -> Iterator[NewerSource]:
    """A store holding the current DB and a registry holding a newer, 16 MB one (long enough to be killed in)."""
    with newer_source(tmp_path_factory.mktemp("crash-base"), upstream, assets, filler_bytes=16_000_000) as prepared:
        yield prepared


def timed_run(cli: MirrorCli, args: list[str]) -> float:
    started = time.monotonic()
    result = cli.run(args, env=FAST)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def test_kill_9_during_sync_into_the_store(big: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    rng = random.Random(7)
    store = tmp_path / "store"
    args = ["sync", "--from", f"{big.source.host}/aquasec", "--store", str(store), "--assets", "db"]
    shutil.copytree(big.base_store, store)
    window = timed_run(mirror, args)  # one full run: kills land anywhere from start-up to the tag move
    landed = 0
    for _ in range(STORE_KILLS):
        if served_digest(store) == big.new.digest:
            landed += 1
            shutil.rmtree(store)
            shutil.copytree(big.base_store, store)
        kill_at_random(mirror, args, FAST, window, rng)
        report = trivy_mirror.verify(store=store)
        assert report.ok and not report.problems, report.problems
        assert served_digest(store) in (big.old.digest, big.new.digest)
    result = mirror.run(args, env=FAST)
    assert result.returncode == 0, result.stderr
    assert served_digest(store) == big.new.digest
    assert trivy_mirror.verify(store=store).ok
    assert not list((store / ".tmp").glob("*"))


def registry_tag(host: str) -> tuple[str, list[tuple[str, int]]]:
    """The digest the tag resolves to and the (digest, size) of every blob it references."""
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("GET", f"/v2/{DB_REPOSITORY}/manifests/2", headers={"Accept": OCI_MANIFEST})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    manifest = json.loads(body)
    blobs = [(d["digest"], d["size"]) for d in [manifest["config"], *manifest["layers"]]]
    return "sha256:" + hashlib.sha256(body).hexdigest(), blobs


def assert_complete(host: str, blobs: list[tuple[str, int]]) -> None:
    for digest, size in blobs:
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request("HEAD", f"/v2/{DB_REPOSITORY}/blobs/{digest}")
        response = conn.getresponse()
        response.read()
        assert response.status == 200, digest
        assert int(response.getheader("Content-Length") or -1) == size


def test_kill_9_during_sync_into_a_registry(big: NewerSource, mirror: MirrorCli, registry: RegistryFactory) -> None:
    rng = random.Random(9)
    dest = registry()
    push_artifact(dest.host, DB_REPOSITORY, "2", big.old)
    args = ["sync", "--from", f"{big.source.host}/aquasec", "--to", dest.host, "--assets", "db"]
    window = timed_run(mirror, args)
    for _ in range(REGISTRY_KILLS):
        digest, blobs = registry_tag(dest.host)
        if digest == big.new.digest:  # the sync finished before the kill: move the tag back and go again
            push_artifact(dest.host, DB_REPOSITORY, "2", big.old)
        kill_at_random(mirror, args, FAST, window, rng)
        digest, blobs = registry_tag(dest.host)
        assert digest in (big.old.digest, big.new.digest)
        assert_complete(dest.host, blobs)
    result = mirror.run(args, env=FAST)
    assert result.returncode == 0, result.stderr
    digest, blobs = registry_tag(dest.host)
    assert digest == big.new.digest
    assert_complete(dest.host, blobs)


def test_two_syncs_on_one_store(big: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(big.base_store, store)
    args = ["sync", "--from", f"{big.source.host}/aquasec", "--store", str(store), "--assets", "db"]
    processes = [subprocess.Popen(mirror.command(args), env=mirror.environment(FAST), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert all("Traceback" not in err for _, err in outputs)
    # The lock serialises them: exactly one copies, the other finds the new version already there.
    assert sum("unchanged" in err for _, err in outputs) == 1, outputs
    assert served_digest(store) == big.new.digest
    report = trivy_mirror.verify(store=store)
    assert report.ok and not report.problems


def test_sync_lands_while_16_clients_download(big: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(big.base_store, store)
    failures: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()
    lock = threading.Lock()
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as server:

        def client() -> None:
            rounds = 0
            while not stop.is_set() or rounds == 0:
                rounds += 1
                conn = http.client.HTTPConnection(server.host, timeout=30)
                try:
                    conn.request("GET", f"/v2/{DB_REPOSITORY}/manifests/2", headers={"Accept": OCI_MANIFEST})
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200:
                        raise AssertionError(f"manifest: HTTP {response.status}")
                    layer = json.loads(body)["layers"][0]
                    conn.request("GET", f"/v2/{DB_REPOSITORY}/blobs/{layer['digest']}")
                    response = conn.getresponse()
                    hasher, size = hashlib.sha256(), 0
                    while chunk := response.read(1 << 20):
                        hasher.update(chunk)
                        size += len(chunk)
                    if response.status != 200 or size != layer["size"] or \
                            "sha256:" + hasher.hexdigest() != layer["digest"]:
                        raise AssertionError(f"blob {layer['digest'][:19]}: HTTP {response.status}, {size} bytes")
                    with lock:
                        seen.add("sha256:" + hashlib.sha256(body).hexdigest())
                except Exception as err:
                    with lock:
                        failures.append(repr(err))
                finally:
                    conn.close()

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        result = mirror.run(["sync", "--from", f"{big.source.host}/aquasec", "--store", str(store), "--assets",
                             "db"], env=FAST)
        deadline = time.monotonic() + 15
        while big.new.digest not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(60)
    assert result.returncode == 0, result.stderr
    assert not failures, failures[:5]
    assert seen == {big.old.digest, big.new.digest}


def test_silent_clients_do_not_block_others(big: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    """32 connections that send nothing or half a request line, held open: other clients are still served."""
    import socket

    store = tmp_path / "store"
    shutil.copytree(big.base_store, store)
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as server:
        idle = []
        for i in range(32):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /v2/aquasec/trivy-db/manifests/2 HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(sock)
        try:
            started = time.monotonic()
            for _ in range(10):
                status, body = server.get(f"/v2/{DB_REPOSITORY}/manifests/2", {"Accept": OCI_MANIFEST})
                assert status == 200 and hashlib.sha256(body).hexdigest() == big.old.digest.split(":")[1]
            assert time.monotonic() - started < 5
        finally:
            for sock in idle:
                sock.close()
