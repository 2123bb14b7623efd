"""Pushes hold the store lock (issue 12, item 8): a sync starting while a blob is written waits instead of
deleting the push's temp file, and a manifest commit waits for a sync (or is refused with 503 after a while)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.server import storage
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store
from trivy_mirror.store import stream as stream_module

from .conftest import PASSWORD, USER, ClientFactory
from .helpers import basic, error_codes, make_artifact

AUTH = basic(USER, PASSWORD)
NAME = "team/tool"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(make_client: ClientFactory, htpasswd: Path, tmp_path: Path) -> Client:
    return await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}),
                                            upload_dir=tmp_path / "uploads"))


def hold_lock(store: Store, seconds: float, held: threading.Event) -> threading.Thread:
    """A sync in another process, as far as the lock goes: it takes the lock and holds it for ``seconds``."""

    def run() -> None:
        with store.lock(timeout=30):
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_a_sync_starting_during_a_blob_push_waits_for_it(client: Client, store: Store,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    layer = make_artifact(b"pushed layer " * 10_000).layer
    real_write = stream_module.write_stream
    sync_locked = threading.Event()
    sync: list[threading.Thread] = []

    async def write_then_a_sync_starts(file: BinaryIO, chunks: AsyncIterator[bytes], descriptor: Descriptor,
                                       action: str) -> None:
        await real_write(file, chunks, descriptor, action)
        # The blob is in STORE/.tmp, not yet renamed into place: a sync takes the lock now.
        sync.append(hold_lock(store, 0, sync_locked))
        await asyncio.sleep(0.5)
        assert not sync_locked.is_set(), "the sync got the lock while the push was writing"

    monkeypatch.setattr(stream_module, "write_stream", write_then_a_sync_starts)
    response = await client.post(f"/v2/{NAME}/blobs/uploads/", params={"digest": str(layer[0].digest)},
                                 data=layer[1], headers=AUTH)
    assert response.status == 201, await response.text()
    await asyncio.to_thread(sync[0].join, 30)
    assert sync_locked.is_set()
    assert store.layout(NAME).blob_path(layer[0].digest).read_bytes() == layer[1]


async def test_a_manifest_commit_waits_for_a_sync_holding_the_lock(client: Client, store: Store) -> None:
    artifact = make_artifact(b"layer")
    for descriptor, data in (artifact.config, artifact.layer):
        response = await client.post(f"/v2/{NAME}/blobs/uploads/", params={"digest": str(descriptor.digest)},
                                     data=data, headers=AUTH)
        assert response.status == 201
    held = threading.Event()
    sync = hold_lock(store, 1.0, held)
    assert await asyncio.to_thread(held.wait, 10)
    started = time.monotonic()
    response = await client.put(f"/v2/{NAME}/manifests/2", data=artifact.manifest.data,
                                headers={**AUTH, "Content-Type": mediatype.OCI_MANIFEST})
    assert response.status == 201, await response.text()
    assert time.monotonic() - started >= 0.5, "the commit did not wait for the lock"
    await asyncio.to_thread(sync.join, 10)
    assert str(store.layout(NAME).tags()["2"].digest) == artifact.digest


async def test_a_push_refused_when_the_lock_stays_taken(client: Client, store: Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "PUSH_LOCK_TIMEOUT", 0.3)
    artifact = make_artifact(b"layer")
    held = threading.Event()
    sync = hold_lock(store, 1.5, held)
    assert await asyncio.to_thread(held.wait, 10)
    descriptor, data = artifact.layer
    response = await client.post(f"/v2/{NAME}/blobs/uploads/", params={"digest": str(descriptor.digest)},
                                 data=data, headers=AUTH)
    body = await response.read()
    assert (response.status, error_codes(body)) == (503, ["UNAVAILABLE"])
    assert str(store.root) not in body.decode(), "no file-system path in the answer"
    await asyncio.to_thread(sync.join, 10)
