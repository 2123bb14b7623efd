"""Ed25519 keys and DSSE envelopes carrying in-toto statements: all of trivy-mirror's cryptography, in one place.

Formats are the standard ones, so any DSSE implementation checks what we sign and we check what it signs:

- keys are PEM files: the private key PKCS#8 (unencrypted, mode 0600), the public key SubjectPublicKeyInfo;
- a key id is the sha256 (hex) of the public key's DER SubjectPublicKeyInfo;
- an envelope is DSSE v1 (``payloadType``, standard base64 ``payload``, ``signatures: [{keyid, sig}]``), the
  signature an Ed25519 signature over ``PAE(payloadType, payload)``;
- its payload is an in-toto Statement v1 (``application/vnd.in-toto+json``).

This module sits below the features that sign (bundles now; provenance later), so none of them touch keys or
signature bytes themselves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from trivy_mirror.errors import KeyFileError, SignatureError
from trivy_mirror.jsonutil import load_object

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PUBLIC_SUFFIX = ".pub"
MAX_KEY_FILE_BYTES = 64 * 1024
MAX_SIGNATURES = 16
"""More signatures than this in one envelope is not a signed bundle but an attempt to make us work."""

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_KEYID = re.compile(r"[A-Za-z0-9:._-]{1,80}")


@contextmanager
def _key_errors(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise KeyFileError(f"cannot {action}: {err.strerror or err}") from None


def _read_key_file(path: Path, what: str) -> bytes:
    with _key_errors(f"read the {what} {path}"), path.open("rb") as handle:
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is not a PEM key file: it is over {MAX_KEY_FILE_BYTES} bytes")
    return data


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key; ``keyid`` names it in envelopes and messages."""

    key: Ed25519PublicKey

    @property
    def der(self) -> bytes:
        return self.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def pem(self) -> bytes:
        return self.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        """Read a PEM SubjectPublicKeyInfo file (what ``keygen`` writes as ``KEYFILE.pub``)."""
        data = _read_key_file(path, "public key")
        try:
            key = load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            hint = " (it is a private key: give the .pub file)" if b"PRIVATE KEY" in data else ""
            raise KeyFileError(f"{path} is not a PEM public key{hint}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key (trivy-mirror signs with Ed25519 only)")
        return cls(key)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, read from a PKCS#8 PEM file."""

    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        data = _read_key_file(path, "signing key")
        try:
            key = load_pem_private_key(data, password=None)
        except TypeError:
            raise KeyFileError(f"{path} is encrypted; trivy-mirror reads unencrypted PKCS#8 keys (protect the file "
                               f"with its permissions, as keygen does)") from None
        except (ValueError, UnsupportedAlgorithm):
            hint = " (it is a public key: give the private key file)" if b"PUBLIC KEY" in data else ""
            raise KeyFileError(f"{path} is not a PEM private key{hint}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 private key (trivy-mirror signs with Ed25519 only)")
        return cls(key)


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with exactly ``mode``; refuse (KeyFileError) when something is there already."""
    with _key_errors(f"write {path}"):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise KeyFileError(f"{path} exists; not overwriting a key (remove it first, or pick another name)") \
                from None
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def public_key_path(path: Path) -> Path:
    return path.with_name(path.name + PUBLIC_SUFFIX)


def generate_key(path: Path) -> PublicKey:
    """A new key pair: ``path`` (private, PKCS#8 PEM, 0600) and ``path.pub``; neither may exist yet."""
    public_path = public_key_path(path)
    for existing in (path, public_path):
        if existing.exists() or existing.is_symlink():
            raise KeyFileError(f"{existing} exists; not overwriting a key (remove it first, or pick another name)")
    key = Ed25519PrivateKey.generate()
    _create(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), 0o600)
    public = PublicKey(key.public_key())
    try:
        _create(public_path, public.pem(), 0o644)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return public


@dataclass(frozen=True)
class KeyPair:
    """The files :func:`keygen` wrote and the key id messages and signatures name the key by."""

    private: Path
    public: Path
    keyid: str


def keygen(path: str | Path) -> KeyPair:
    """A new Ed25519 key pair to sign bundles with: ``path`` (the private key, PKCS#8 PEM, mode 0600, for
    ``export_bundle``'s ``sign``) and ``path.pub`` (the public key, for ``import_bundle``'s ``verify_key``).
    Existing files are never overwritten: KeyFileError (a UsageError).

    Part of the public API (``trivy_mirror.keygen``), loaded from here, not from the facade, so that
    ``trivy-mirror keygen`` starts as fast as this module (no HTTP stack)."""
    private = Path(path)
    public = generate_key(private)
    return KeyPair(private, public_key_path(private), public.keyid)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _b64decode(text: str, what: str) -> bytes:
    """Standard or URL-safe base64 (DSSE accepts both), strictly: no stray characters are skipped."""
    try:
        if _B64.fullmatch(text):
            return base64.b64decode(text, validate=True)
        if _B64_URL.fullmatch(text):
            return base64.urlsafe_b64decode(text)
    except binascii.Error:
        pass
    raise SignatureError(f"signature envelope is invalid: its {what} is not base64")


def shown_keyid(keyid: str) -> str:
    """A key id from an untrusted envelope, safe to put in a one-line message."""
    return keyid if _KEYID.fullmatch(keyid) else repr(keyid[:64])


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope; :meth:`verified_payload` is the only way to its payload that a caller should trust."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def sign(cls, payload_type: str, payload: bytes, key: SigningKey) -> Envelope:
        signature = Signature(key.public.keyid, key.sign(pae(payload_type, payload)))
        return cls(payload_type, payload, (signature,))

    def to_json(self) -> dict[str, Any]:
        return {"payloadType": self.payload_type, "payload": base64.b64encode(self.payload).decode(),
                "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures]}

    def serialize(self) -> bytes:
        return json.dumps(self.to_json(), indent=2).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Envelope:
        """Parse the JSON form; SignatureError with one line on anything malformed."""
        obj = load_object(data, "signature envelope", SignatureError,
                          not_json="{what} is not valid JSON; it was damaged or altered",
                          not_object="{what} is invalid: it is not a JSON object")
        payload_type, payload, signatures = obj.get("payloadType"), obj.get("payload"), obj.get("signatures")
        if not isinstance(payload_type, str) or not isinstance(payload, str) or not isinstance(signatures, list):
            raise SignatureError("signature envelope is invalid: it needs a payloadType, a payload and signatures")
        if not signatures or len(signatures) > MAX_SIGNATURES:
            raise SignatureError(f"signature envelope is invalid: it has {len(signatures)} signatures "
                                 f"(1 to {MAX_SIGNATURES} expected)")
        parsed: list[Signature] = []
        for entry in signatures:
            keyid = entry.get("keyid", "") if isinstance(entry, dict) else None
            sig = entry.get("sig") if isinstance(entry, dict) else None
            if not isinstance(keyid, str) or not isinstance(sig, str):
                raise SignatureError("signature envelope is invalid: a signature has no valid keyid and sig")
            parsed.append(Signature(keyid, _b64decode(sig, "signature")))
        return cls(payload_type, _b64decode(payload, "payload"), tuple(parsed))

    def verified_payload(self, key: PublicKey) -> bytes:
        """The payload, once a signature by ``key`` verifies over PAE; SignatureError otherwise.

        The keyid is an unsigned hint: signatures naming another key are not tried (as securesystemslib does),
        those naming none are.
        """
        candidates = [s for s in self.signatures if s.keyid in (key.keyid, "")]
        if not candidates:
            others = ", ".join(sorted({shown_keyid(s.keyid) for s in self.signatures}))
            raise SignatureError(f"signed by another key ({others}), not by the given key {key.keyid}")
        message = pae(self.payload_type, self.payload)
        if not any(key.verifies(s.sig, message) for s in candidates):
            raise SignatureError(f"the signature by key {key.keyid} does not verify: the signed statement or the "
                                 f"signature was altered")
        return self.payload


@dataclass(frozen=True)
class Subject:
    """An in-toto resource descriptor: a name and its digests (``{"sha256": hex}``)."""

    name: str
    digest: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(self.digest)}


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1."""

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any]

    def serialize(self) -> bytes:
        return json.dumps({"_type": STATEMENT_TYPE, "subject": [s.to_json() for s in self.subjects],
                           "predicateType": self.predicate_type, "predicate": self.predicate},
                          indent=2).encode() + b"\n"

    @classmethod
    def parse(cls, payload: bytes) -> Statement:
        """Parse a (verified) payload; SignatureError when it is not an in-toto Statement v1."""
        not_statement = f"the signed payload is not an in-toto statement ({STATEMENT_TYPE})"
        obj = load_object(payload, "the signed payload", SignatureError,
                          not_json="{what} is not JSON, so not an in-toto statement", not_object=not_statement)
        if obj.get("_type") != STATEMENT_TYPE:
            raise SignatureError(not_statement)
        subjects, predicate_type, predicate = obj.get("subject"), obj.get("predicateType"), obj.get("predicate", {})
        if not isinstance(subjects, list) or not isinstance(predicate_type, str) or not isinstance(predicate, dict):
            raise SignatureError("the signed in-toto statement is invalid: it needs subject, predicateType and an "
                                 "object predicate")
        return cls(tuple(_subject(s) for s in subjects), predicate_type, predicate)


def _subject(obj: Any) -> Subject:
    if not isinstance(obj, dict):
        raise SignatureError("the signed in-toto statement is invalid: a subject is not an object")
    name, digest = obj.get("name"), obj.get("digest")
    if (not isinstance(name, str) or not isinstance(digest, dict) or not digest
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in digest.items())):
        raise SignatureError("the signed in-toto statement is invalid: a subject has no name or digest")
    return Subject(name, digest)


def sign_statement(subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any],
                   key: SigningKey) -> Envelope:
    return Envelope.sign(IN_TOTO_PAYLOAD_TYPE, Statement(tuple(subjects), predicate_type, predicate).serialize(),
                         key)


def verify_statement(envelope: Envelope, key: PublicKey) -> Statement:
    """The statement an envelope carries, after its signature by ``key`` verified."""
    payload = envelope.verified_payload(key)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise SignatureError(f"the signed payload is of type {envelope.payload_type[:100]!r}, not an in-toto "
                             f"statement ({IN_TOTO_PAYLOAD_TYPE})")
    return Statement.parse(payload)
