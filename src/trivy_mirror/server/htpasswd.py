"""Users from an htpasswd file with bcrypt entries (what ``htpasswd -B`` writes).

bcrypt costs about a quarter of a second on purpose, so it runs in a small thread pool of its own (blob
serving keeps the default pool) and the work is bounded three ways, so wrong passwords cannot lock the right
ones out:

* a successful check is remembered for a minute: known-good credentials never wait for bcrypt again;
* a failed check is remembered for a few seconds: repeating one wrong password costs nothing;
* at most :data:`MAX_PENDING_PER_CLIENT` checks run for one client address, and :data:`MAX_PENDING` overall.

Both caches are keyed by an HMAC of the credentials under a per-process key: they never hold a password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import UsageError
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.watch import ReloadingFile

log = logging.getLogger(__name__)

CACHE_TTL = 60.0
FAILURE_TTL = 5.0
"""How long a wrong user/password pair is answered from memory (a fixed typo is accepted after this)."""
CACHE_SIZE = 1024
MAX_PENDING = 32
MAX_PENDING_PER_CLIENT = 4
"""bcrypt checks one client address may have running or queued; behind a proxy, all clients share one."""
BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")
BCRYPT_MAX_PASSWORD = 72
"""bcrypt reads only the first 72 bytes (htpasswd truncates the same way); bcrypt>=5 refuses longer input."""


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """``user:hash`` lines, all bcrypt; raises ValueError naming the first other line (never its content)."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        encoded = hashed.strip().encode()
        if not sep or not user or not encoded.startswith(BCRYPT_PREFIXES):
            raise ValueError(f"line {number} is not a bcrypt entry; create the user again with htpasswd -B")
        users[user] = encoded
    return users


class _Memo:
    """Recent answers of the password check, bounded in size, keyed by an HMAC of the credentials."""

    def __init__(self, ttl: float, clock: Clock) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[bytes, tuple[float, bytes | None]] = {}

    def hit(self, key: bytes, hashed: bytes | None) -> bool:
        """Whether the answer for ``key`` was recorded against this very hash, and recently."""
        entry = self._entries.get(key)
        return entry is not None and entry[0] > self._clock.monotonic() and entry[1] == hashed

    def remember(self, key: bytes, hashed: bytes | None) -> None:
        now = self._clock.monotonic()
        if len(self._entries) >= CACHE_SIZE:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= CACHE_SIZE:
                self._entries.clear()
        self._entries[key] = (now + self._ttl, hashed)


class Htpasswd:
    """Checks user names and passwords against the file, re-read when it changes."""

    def __init__(self, path: Path, clock: Clock = SYSTEM) -> None:
        self._file = ReloadingFile(path, parse_htpasswd, what="htpasswd file", clock=clock)
        if not self._file.value:
            raise UsageError(f"{path} has no users: add one with htpasswd -B {path} NAME")
        self._key = secrets.token_bytes(32)
        self._verified = _Memo(CACHE_TTL, clock)
        self._refused = _Memo(FAILURE_TTL, clock)
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self._per_client: dict[str, int] = {}

    @property
    def problem(self) -> str | None:
        """Why the file in force is not the one on disk (missing, refused), or None."""
        return self._file.problem

    async def verify(self, user: str, password: str, client: str | None = None) -> bool:
        users = self._file.value
        hashed = users.get(user)
        key = hmac.new(self._key, f"{user}\0{password}".encode(errors="surrogatepass"), hashlib.sha256).digest()
        if hashed is not None and self._verified.hit(key, hashed):
            return True
        if self._refused.hit(key, hashed):
            return False
        if hashed is None:
            # Spend the same time on unknown users as on known ones, so timing does not reveal names.
            decoy = next(iter(users.values()), None)
            if decoy is not None:
                await self._checkpw(password, decoy, client)
            self._refused.remember(key, None)
            return False
        if not await self._checkpw(password, hashed, client):
            self._refused.remember(key, hashed)
            return False
        self._verified.remember(key, hashed)
        return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _checkpw(self, password: str, hashed: bytes, client: str | None) -> bool:
        address = client or ""
        if self._per_client.get(address, 0) >= MAX_PENDING_PER_CLIENT:
            raise OciError("TOOMANYREQUESTS", "too many password checks from this address; retry shortly")
        if self._pending >= MAX_PENDING:
            raise OciError("TOOMANYREQUESTS", "too many password checks in progress; retry shortly")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")
        candidate = password.encode(errors="surrogatepass")[:BCRYPT_MAX_PASSWORD]
        self._pending += 1
        self._per_client[address] = self._per_client.get(address, 0) + 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _checkpw, candidate, hashed)
        finally:
            self._pending -= 1
            left = self._per_client[address] - 1
            if left:
                self._per_client[address] = left
            else:
                del self._per_client[address]


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a damaged hash in the file
        return False
