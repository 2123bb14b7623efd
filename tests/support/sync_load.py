"""A changing upstream synced by ``serve`` while clients hammer it: the resilience test and ``bench/soak.py``.

A publisher pushes a new DB version to the upstream registry every ``publish_every`` seconds; ``serve`` syncs it
(``--sync-every``), prunes and collects garbage. Meanwhile manifest clients GET the tag in a loop and blob
clients resolve the tag, download the layer it names and hash it. Every answer is counted; every layer a
client resolved is remembered with the moment it was first resolved, so the caller can check it is still
downloadable for the GC grace period.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.registry import RegistryProcess, push_artifact
from support.trivy_assets import DB_REPOSITORY, OCI_MANIFEST, build_vuln_db

TAG_PATH = f"/v2/{DB_REPOSITORY}/manifests/2"
ACCEPT = {"Accept": OCI_MANIFEST}


@dataclass
class LoadFigures:
    """What the clients saw; ``errors`` holds the first few unexpected answers, verbatim."""

    manifest_requests: int = 0
    blob_downloads: int = 0
    blob_bytes: int = 0
    published: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    resolved: dict[str, float] = field(default_factory=dict)
    """Layer digest -> when a client first resolved it through the tag's manifest."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text)

    @property
    def error_count(self) -> int:
        return sum(count for status, count in self.statuses.items() if status not in (200,))


def age_store(store: Path, seconds: float) -> None:
    """Make every blob of ``store`` look ``seconds`` old (a store synced long ago)."""
    then = time.time() - seconds
    for path in store.rglob("blobs/*/*"):
        os.utime(path, (then, then))


class SyncLoad:
    """Start with :meth:`start`, stop with :meth:`stop`; figures in :attr:`figures`."""

    def __init__(self, server: str, upstream: RegistryProcess, *, manifest_clients: int, blob_clients: int,
                 publish_every: float, filler_bytes: int = 0) -> None:
        self.server = server
        self.upstream = upstream
        self.manifest_clients = manifest_clients
        self.blob_clients = blob_clients
        self.publish_every = publish_every
        self.filler_bytes = filler_bytes
        self.figures = LoadFigures()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._updated = datetime.now(UTC) + timedelta(minutes=1)

    def start(self) -> SyncLoad:
        loops: list[Callable[[], None]] = [self._publish]
        loops += [self._manifests] * self.manifest_clients + [self._blobs] * self.blob_clients
        for index, loop in enumerate(loops):
            thread = threading.Thread(target=loop, name=f"sync-load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> LoadFigures:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.figures

    def blob_status(self, digest: str) -> int:
        """The server's answer to a GET of one DB layer, read to the end and hashed (a wrong hash is 0)."""
        connection = http.client.HTTPConnection(self.server, timeout=30)
        try:
            return self._download(connection, digest)
        finally:
            connection.close()

    # Loops

    def _publish(self) -> None:
        while not self._stop.wait(self.publish_every):
            # Each version is newer than the last (a sync refuses an older DB) and far from stale.
            self._updated += timedelta(minutes=1)
            artifact = build_vuln_db(updated_at=self._updated, next_update=self._updated + timedelta(days=1),
                                     filler_bytes=self.filler_bytes)
            try:
                push_artifact(self.upstream.host, DB_REPOSITORY, "2", artifact)
            except Exception as err:
                self.figures.error(f"publish failed: {err!r}")
                continue
            with self.figures.lock:
                self.figures.published += 1

    def _manifests(self) -> None:
        connection = http.client.HTTPConnection(self.server, timeout=30)
        try:
            while not self._stop.is_set():
                self._get_manifest(connection)
                with self.figures.lock:
                    self.figures.manifest_requests += 1
        finally:
            connection.close()

    def _blobs(self) -> None:
        connection = http.client.HTTPConnection(self.server, timeout=30)
        try:
            while not self._stop.is_set():
                status, body = self._get_manifest(connection)
                if status != 200:
                    continue
                layer = json.loads(body)["layers"][0]["digest"]
                with self.figures.lock:
                    self.figures.resolved.setdefault(layer, time.monotonic())
                if self._download(connection, layer) == 200:
                    with self.figures.lock:
                        self.figures.blob_downloads += 1
        finally:
            connection.close()

    # Requests

    def _get_manifest(self, connection: http.client.HTTPConnection) -> tuple[int, bytes]:
        status, body = self._request(connection, TAG_PATH, ACCEPT)
        if status != 200:
            self.figures.error(f"GET {TAG_PATH}: {status} {body[:200]!r}")
        return status, body

    def _download(self, connection: http.client.HTTPConnection, digest: str) -> int:
        path = f"/v2/{DB_REPOSITORY}/blobs/{digest}"
        status, body = self._request(connection, path, {})
        if status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            self.figures.error(f"GET {path}: content does not hash to its digest")
            return 0
        if status != 200:
            self.figures.error(f"GET {path}: {status} {body[:200]!r}")
        else:
            with self.figures.lock:
                self.figures.blob_bytes += len(body)
        return status

    def _request(self, connection: http.client.HTTPConnection, path: str,
                 headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            status, body = response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            status, body = 0, repr(err).encode()
        with self.figures.lock:
            self.figures.statuses[status] += 1
        return status, body
