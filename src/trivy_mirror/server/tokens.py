"""Bearer tokens: the ones ``/token`` issues (HMAC-signed with a per-process key, so a restart revokes them)
and static ones from a token file (what Trivy's ``--registry-token`` sends).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "tm1."


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request acts as; ``user`` is None for an anonymous token. Never holds a secret."""

    user: str | None
    push: bool


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime


class TokenSigner:
    """Issues and checks ``tm1.<claims>.<signature>`` tokens."""

    def __init__(self, ttl: int, key: bytes) -> None:
        self._key = key
        self.ttl = ttl

    def issue(self, identity: Identity) -> IssuedToken:
        now = datetime.now(UTC)
        claims = {"sub": identity.user, "push": identity.push, "exp": int(now.timestamp()) + self.ttl}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return IssuedToken(f"{PREFIX}{payload}.{self._sign(payload)}", self.ttl, now)

    def verify(self, token: str) -> Identity | None:
        if not token.startswith(PREFIX):
            return None
        payload, _, signature = token[len(PREFIX) :].partition(".")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode(errors="surrogatepass")):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return None
        user = claims.get("sub")
        return Identity(user if isinstance(user, str) else None, claims.get("push") is True)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(errors="surrogatepass"), hashlib.sha256).digest())


PUSH_MARKER = "push"


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A token file entry: a label for logs (``token:<line>``, never the token) and whether it may push."""

    label: str
    push: bool


def parse_token_file(text: str) -> dict[bytes, StaticToken]:
    """One token a line, optionally followed by the word ``push`` (blank lines and ``#`` comments skipped).

    A token without the marker only pulls, so the tokens handed to scanners cannot replace what they scan.
    Tokens are kept only as SHA-256 hashes: looking a presented token up by its hash does not leak the stored
    tokens through timing. Raises ValueError naming the line (never its content) for anything else.
    """
    tokens: dict[bytes, StaticToken] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) > 2 or (len(fields) == 2 and fields[1] != PUSH_MARKER):
            raise ValueError(f"token file line {number}: expected TOKEN or 'TOKEN {PUSH_MARKER}'")
        tokens[hash_token(fields[0])] = StaticToken(f"token:{number}", len(fields) == 2)
    return tokens


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode(errors="surrogatepass")).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
