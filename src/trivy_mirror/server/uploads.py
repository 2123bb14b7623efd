"""Unfinished blob uploads (POST, then PATCH chunks, then PUT): spooled to private temporary files.

Nothing here is visible to pulls; the finished upload goes through the store's verified ``push_blob``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from trivy_mirror.server.errors import OciError

CHUNK = 1024 * 1024
IDLE_TIMEOUT = 3600.0
_ID = re.compile(r"[0-9a-f-]{36}")


@dataclass(eq=False)
class Upload:
    id: str
    repository: str
    path: Path
    size: int = 0
    touched: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Uploads:
    """At most ``limit`` sessions at once; sessions idle for an hour are dropped when a new one starts."""

    def __init__(self, directory: Path | None, limit: int) -> None:
        self._parent = directory
        self._limit = limit
        self._directory: Path | None = None
        self._sessions: dict[str, Upload] = {}

    def start(self, repository: str) -> Upload:
        self._expire()
        if len(self._sessions) >= self._limit:
            raise OciError("TOOMANYREQUESTS", f"too many unfinished uploads (limit {self._limit})")
        if self._directory is None:
            if self._parent is not None:
                self._parent.mkdir(parents=True, exist_ok=True)
            self._directory = Path(tempfile.mkdtemp(prefix="trivy-mirror-uploads-", dir=self._parent))
        upload_id = str(uuid.uuid4())
        path = self._directory / upload_id
        path.touch(mode=0o600)
        upload = Upload(upload_id, repository, path)
        self._sessions[upload_id] = upload
        return upload

    def get(self, upload_id: str, repository: str) -> Upload:
        upload = self._sessions.get(upload_id) if _ID.fullmatch(upload_id) else None
        if upload is None or upload.repository != repository:
            raise OciError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id[:40]!r} is not in progress")
        upload.touched = time.monotonic()
        return upload

    async def append(self, upload: Upload, chunks: AsyncIterable[bytes]) -> None:
        with upload.path.open("ab") as out:
            async for chunk in chunks:
                out.write(chunk)
                upload.size += len(chunk)

    async def read(self, upload: Upload) -> AsyncIterator[bytes]:
        with upload.path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk

    def discard(self, upload: Upload) -> None:
        self._sessions.pop(upload.id, None)
        upload.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Drop every session and the spool directory (at shutdown)."""
        self._sessions.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def _expire(self) -> None:
        cutoff = time.monotonic() - IDLE_TIMEOUT
        for upload in [u for u in self._sessions.values() if u.touched < cutoff and not u.lock.locked()]:
            self.discard(upload)
