"""serve(): listens, syncs in the background, maintains the store after a sync, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.runner import serve
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .helpers import Artifact, make_artifact, populate, push


async def start(settings: ServerSettings, store: Store,
                sync_once: Callable[[], Awaitable[SyncOutcome]] | None = None) -> tuple[asyncio.Task[None], str]:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, store, lambda: [], sync_once, on_started=started.set_result))
    await asyncio.wait_for(asyncio.shield(started), 10)
    return task, started.result()


async def test_serves_until_sigterm(store: Store) -> None:
    old = await populate(store, "aquasec/trivy-db", "2", b"old db")
    new = make_artifact(b"new db", created="2024-03-01T00:00:00Z")
    synced = asyncio.Event()

    async def sync_once() -> SyncOutcome:
        await push(store.layout("aquasec/trivy-db"), new, "2")
        synced.set()
        return SyncOutcome(True, "updated aquasec/trivy-db:2", 0.1)

    task, url = await start(ServerSettings(listen="127.0.0.1:0", keep=1, sync_every=3600), store, sync_once)
    assert url.startswith("http://127.0.0.1:")
    await asyncio.wait_for(synced.wait(), 10)
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # the post-sync step (refresh, prune keep=1) runs right after the sync
            async with session.get(f"{url}/v2/aquasec/trivy-db/manifests/{old.digest}") as response:
                if response.status == 404:
                    break
            await asyncio.sleep(0.02)
        assert response.status == 404
        async with session.get(f"{url}/v2/aquasec/trivy-db/manifests/2") as response:
            assert response.headers["Docker-Content-Digest"] == new.digest
        async with session.get(f"{url}/metrics") as response:
            assert 'trivy_mirror_sync_runs_total{result="success"} 1.0' in await response.text()
    # The new version's blobs are still there; the old layer is unreferenced but within the GC grace period.
    assert store.layout("aquasec/trivy-db").blob_path(new.layer[0].digest).exists()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 10)


async def test_no_sync_serve_prunes_the_store_at_start(store: Store) -> None:
    """A store filled while no server ran (imports, pushes, syncs elsewhere) is bounded once serve starts."""
    versions = [await populate(store, "aquasec/trivy-db", "2", f"db v{i}".encode()) for i in range(4)]
    task, _url = await start(ServerSettings(listen="127.0.0.1:0", keep=2, gc_grace=0), store)
    layout = store.layout("aquasec/trivy-db")
    for _ in range(200):
        if len(layout.manifests()) == 2 and not layout.blob_path(versions[0].layer[0].digest).exists():
            break
        await asyncio.sleep(0.02)
    assert [e.digest for e in layout.manifests()] == [v.manifest.digest for v in versions[2:]]
    assert not layout.blob_path(versions[1].layer[0].digest).exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_serve_cleans_up(store: Store) -> None:
    task, url = await start(ServerSettings(listen="127.0.0.1:0"), store)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{url}/healthz")


async def test_ipv6_loopback(store: Store) -> None:
    task, url = await start(ServerSettings(listen="[::1]:0"), store)
    try:
        assert url.startswith("http://[::1]:")
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
            assert response.status == 200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls(store: Store, certificate: tuple[Path, Path], db: Artifact) -> None:
    cert, key = certificate
    task, url = await start(ServerSettings(listen="127.0.0.1:0", tls_cert=cert, tls_key=key), store)
    try:
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        blob_url = f"{url}/v2/aquasec/trivy-db/blobs/{db.layer_digest}"
        async with aiohttp.ClientSession() as session, session.get(blob_url, ssl=context) as response:
            assert await response.read() == db.layer_bytes
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_bad_tls_files_are_usage_errors(store: Store, tmp_path: Path) -> None:
    await asyncio.to_thread((tmp_path / "c.pem").write_text, "not a certificate")
    with pytest.raises(UsageError, match="TLS certificate"):
        await serve(ServerSettings(listen="127.0.0.1:0", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "c.pem"),
                    store, lambda: [], None)


async def test_port_in_use(store: Store) -> None:
    task, url = await start(ServerSettings(listen="127.0.0.1:0"), store)
    try:
        port = url.rsplit(":", 1)[1]
        with pytest.raises(MirrorError, match="cannot listen on"):
            await serve(ServerSettings(listen=f"127.0.0.1:{port}"), store, lambda: [], None)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
