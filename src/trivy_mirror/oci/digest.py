"""Content digests (``sha256:...``, ``sha512:...``) and streaming verification."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from trivy_mirror.errors import InvalidDigest, VerificationError

HEX_LENGTH = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, order=True)
class Digest:
    """A validated digest; ``str()`` gives the canonical ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, value = text.partition(":")
        if not sep or algorithm not in HEX_LENGTH:
            raise InvalidDigest(f"invalid digest {text[:80]!r}: expected sha256:<64 hex> or sha512:<128 hex>")
        if len(value) != HEX_LENGTH[algorithm] or not _HEX.fullmatch(value):
            raise InvalidDigest(f"invalid digest {text[:80]!r}: expected {HEX_LENGTH[algorithm]} lower-case hex digits")
        return cls(algorithm, value)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return f"{self.algorithm}:{self.hex[:12]}"


class DigestVerifier:
    """Hashes content as it passes and checks it against an expected digest and size."""

    def __init__(self, expected: Digest, size: int | None) -> None:
        self.expected = expected
        self.size = size
        self.received = 0
        self._hash = expected.hasher()

    def update(self, chunk: bytes | memoryview) -> None:
        self.received += len(chunk)
        if self.size is not None and self.received > self.size:
            raise VerificationError(
                f"content for {self.expected.short} is longer than the expected {self.size} bytes"
            )
        self._hash.update(chunk)

    def verify(self) -> None:
        if self.size is not None and self.received != self.size:
            raise VerificationError(
                f"content for {self.expected.short} has {self.received} bytes, expected {self.size}"
            )
        actual = self._hash.hexdigest()
        if actual != self.expected.hex:
            raise VerificationError(
                f"content does not match its digest: expected {self.expected.short}, "
                f"got {self.expected.algorithm}:{actual[:12]}"
            )


async def verified(chunks: AsyncIterable[bytes], expected: Digest, size: int | None) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, raising :class:`VerificationError` before the stream ends if they do not match.

    A consumer that commits only after the iterator is exhausted therefore never commits bad content.
    """
    verifier = DigestVerifier(expected, size)
    async for chunk in chunks:
        verifier.update(chunk)
        yield chunk
    verifier.verify()
