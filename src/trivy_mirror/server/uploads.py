"""Unfinished blob uploads (POST, then PATCH chunks, then PUT): spooled to private temporary files.

Nothing here is visible to pulls; the finished upload goes through the store's verified ``push_blob``. Sessions
are bounded overall and per credential (their number and the bytes they spool), so one pusher cannot hold every
session or fill the disk; a session belongs to the credential that started it. Spool directories carry the
server's PID: one left by a process that died is removed when the next one starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.server.errors import OciError

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 3600.0
SPOOL_PREFIX = "trivy-mirror-uploads-"
_ID = re.compile(r"[0-9a-f-]{36}")
_SPOOL_DIR = re.compile(re.escape(SPOOL_PREFIX) + r"(\d+)-.*")


@dataclass(eq=False)
class Upload:
    id: str
    repository: str
    owner: str
    path: Path
    size: int = 0
    touched: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Uploads:
    """At most ``limit`` sessions at once and ``per_owner`` for one credential, which may spool at most
    ``max_spool`` bytes in all; sessions idle for an hour are dropped when a new one starts."""

    def __init__(self, directory: Path | None, limit: int, per_owner: int, max_spool: int) -> None:
        self._parent = directory
        self._limit = limit
        self._per_owner = per_owner
        self._max_spool = max_spool
        self._directory: Path | None = None
        self._sessions: dict[str, Upload] = {}
        remove_abandoned_spools(Path(directory) if directory is not None else Path(tempfile.gettempdir()))

    def start(self, repository: str, owner: str) -> Upload:
        self._expire()
        if len(self._sessions) >= self._limit:
            raise OciError("TOOMANYREQUESTS", f"too many unfinished uploads (limit {self._limit})")
        if sum(1 for upload in self._sessions.values() if upload.owner == owner) >= self._per_owner:
            raise OciError("TOOMANYREQUESTS", f"too many unfinished uploads for these credentials (limit "
                                              f"{self._per_owner}); finish or cancel some")
        if self._directory is None:
            if self._parent is not None:
                self._parent.mkdir(parents=True, exist_ok=True)
            self._directory = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=self._parent))
        upload_id = str(uuid.uuid4())
        path = self._directory / upload_id
        path.touch(mode=0o600)
        upload = Upload(upload_id, repository, owner, path)
        self._sessions[upload_id] = upload
        return upload

    def get(self, upload_id: str, repository: str, owner: str) -> Upload:
        upload = self._sessions.get(upload_id) if _ID.fullmatch(upload_id) else None
        if upload is None or upload.repository != repository or upload.owner != owner:
            raise OciError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id[:40]!r} is not in progress")
        upload.touched = time.monotonic()
        return upload

    async def append(self, upload: Upload, chunks: AsyncIterable[bytes]) -> None:
        """Spool the chunks; beyond the credential's spool allowance the session is dropped (413)."""
        spooled = sum(other.size for other in self._sessions.values() if other.owner == upload.owner)
        with upload.path.open("ab") as out:
            async for chunk in chunks:
                spooled += len(chunk)
                if spooled > self._max_spool:
                    self.discard(upload)
                    raise OciError("SIZE_INVALID", f"unfinished uploads of these credentials would spool more "
                                                   f"than {self._max_spool} bytes", status=413)
                out.write(chunk)
                upload.size += len(chunk)

    async def read(self, upload: Upload) -> AsyncIterator[bytes]:
        with upload.path.open("rb") as source:
            while chunk := source.read(CHUNK_SIZE):
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


def remove_abandoned_spools(parent: Path) -> None:
    """Remove spool directories whose server process is gone (it crashed or was killed)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        found = _SPOOL_DIR.fullmatch(entry.name)
        if found is None or not entry.is_dir() or entry.is_symlink() or _alive(int(found[1])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.info("removed the upload spool %s left by a server that stopped without cleaning up", entry)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
