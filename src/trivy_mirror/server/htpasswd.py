"""Users from an htpasswd file with bcrypt entries (what ``htpasswd -B`` writes).

bcrypt costs about a quarter of a second on purpose, so it runs in a small thread pool of its own (blob
serving keeps the default pool) with a bounded queue, and a successful check is remembered for a minute,
keyed by an HMAC of the credentials under a per-process key: the cache never holds a password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt

from trivy_mirror.server.errors import OciError
from trivy_mirror.server.watch import ReloadingFile

log = logging.getLogger(__name__)

CACHE_TTL = 60.0
CACHE_SIZE = 1024
MAX_PENDING = 32
BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")
BCRYPT_MAX_PASSWORD = 72
"""bcrypt reads only the first 72 bytes (htpasswd truncates the same way); bcrypt>=5 refuses longer input."""


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """``user:hash`` lines; entries that are not bcrypt are skipped with a warning naming the line only."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        encoded = hashed.strip().encode()
        if not sep or not user or not encoded.startswith(BCRYPT_PREFIXES):
            log.warning("htpasswd line %d is not a bcrypt entry (create it with htpasswd -B); ignored", number)
            continue
        users[user] = encoded
    return users


class Htpasswd:
    """Checks user names and passwords against the file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self._file = ReloadingFile(path, parse_htpasswd)
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[float, bytes]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0

    async def verify(self, user: str, password: str) -> bool:
        users = self._file.value
        hashed = users.get(user)
        key = hmac.new(self._key, f"{user}\0{password}".encode(errors="surrogatepass"), hashlib.sha256).digest()
        cached = self._verified.get(key)
        if hashed is not None and cached is not None and cached[0] > time.monotonic() and cached[1] == hashed:
            return True
        if hashed is None:
            # Spend the same time on unknown users as on known ones, so timing does not reveal names.
            hashed = next(iter(users.values()), None)
            if hashed is None:
                return False
            await self._checkpw(password, hashed)
            return False
        if not await self._checkpw(password, hashed):
            return False
        self._remember(key, hashed)
        return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _checkpw(self, password: str, hashed: bytes) -> bool:
        if self._pending >= MAX_PENDING:
            raise OciError("TOOMANYREQUESTS", "too many password checks in progress; retry shortly")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")
        candidate = password.encode(errors="surrogatepass")[:BCRYPT_MAX_PASSWORD]
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _checkpw, candidate, hashed)
        finally:
            self._pending -= 1

    def _remember(self, key: bytes, hashed: bytes) -> None:
        now = time.monotonic()
        if len(self._verified) >= CACHE_SIZE:
            self._verified = {k: v for k, v in self._verified.items() if v[0] > now}
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
        self._verified[key] = (now + CACHE_TTL, hashed)


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a damaged hash in the file
        return False
