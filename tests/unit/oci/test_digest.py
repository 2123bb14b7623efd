import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import InvalidDigest, VerificationError
from trivy_mirror.oci.digest import Digest, DigestVerifier, verified


@given(st.binary(max_size=4096), st.sampled_from(["sha256", "sha512"]))
def test_verifier_accepts_matching_content(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    verifier = DigestVerifier(digest, len(data))
    for i in range(0, len(data), 100):
        verifier.update(data[i : i + 100])
    verifier.verify()


@given(st.binary(min_size=1, max_size=512), st.integers(min_value=0))
def test_verifier_rejects_flipped_byte(data: bytes, position: int) -> None:
    digest = Digest.of(data)
    flipped = bytearray(data)
    flipped[position % len(data)] ^= 0x01
    verifier = DigestVerifier(digest, len(data))
    verifier.update(bytes(flipped))
    with pytest.raises(VerificationError):
        verifier.verify()


def test_verifier_rejects_long_and_short_content() -> None:
    digest = Digest.of(b"abc")
    too_long = DigestVerifier(digest, 3)
    with pytest.raises(VerificationError):
        too_long.update(b"abcd")
    short = DigestVerifier(digest, 3)
    short.update(b"ab")
    with pytest.raises(VerificationError):
        short.verify()


@given(st.text(max_size=200))
def test_parse_rejects_garbage(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except InvalidDigest:
        return
    assert str(digest) == text


def test_parse_sha512() -> None:
    hexdigest = hashlib.sha512(b"x").hexdigest()
    assert Digest.parse(f"sha512:{hexdigest}").hex == hexdigest
    with pytest.raises(InvalidDigest):
        Digest.parse("sha256:" + "A" * 64)


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


async def test_verified_stream_raises_before_end() -> None:
    received = [c async for c in verified(_chunks(b"ab", b"c"), Digest.of(b"abc"), 3)]
    assert received == [b"ab", b"c"]
    with pytest.raises(VerificationError):
        [c async for c in verified(_chunks(b"ab", b"d"), Digest.of(b"abc"), 3)]
