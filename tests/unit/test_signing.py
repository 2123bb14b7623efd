"""Keys, PAE, DSSE envelopes and in-toto statements; securesystemslib checks what we sign and signs what we check."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError as SslibVerificationError
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey

from trivy_mirror.errors import KeyFileError, SignatureError
from trivy_mirror.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    Envelope,
    PublicKey,
    Signature,
    SigningKey,
    Statement,
    Subject,
    generate_key,
    pae,
    sign_statement,
    verify_statement,
)

PREDICATE = "urn:test:predicate:v1"


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "signing.key"
    generate_key(path)
    return path


def sslib_key(keyfile: Path) -> SSlibKey:
    """Our public key as securesystemslib sees it, read from the .pub file keygen wrote."""
    public = load_pem_public_key((keyfile.parent / f"{keyfile.name}.pub").read_bytes())
    return SSlibKey.from_crypto(public, keyid=PublicKey.load(keyfile.parent / f"{keyfile.name}.pub").keyid)


def test_pae_is_the_dsse_v1_encoding() -> None:
    # The example of the DSSE protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"  # lengths in bytes, not characters


def test_keygen_writes_a_private_key_only_its_owner_reads_and_a_public_key(keyfile: Path) -> None:
    private, public = keyfile, keyfile.parent / "signing.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo
    key = SigningKey.load(private)
    assert key.public == PublicKey.load(public)
    der = load_pem_public_key(public.read_bytes()).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert key.public.keyid == hashlib.sha256(der).hexdigest()


def test_keygen_never_overwrites(keyfile: Path, tmp_path: Path) -> None:
    before = keyfile.read_bytes()
    with pytest.raises(KeyFileError, match="exists"):
        generate_key(keyfile)
    assert keyfile.read_bytes() == before
    (tmp_path / "other.key.pub").write_text("mine")
    with pytest.raises(KeyFileError, match=r"other\.key\.pub exists"):
        generate_key(tmp_path / "other.key")
    assert not (tmp_path / "other.key").exists()


def test_key_files_of_the_wrong_kind_are_refused_with_the_reason(tmp_path: Path, keyfile: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        PublicKey.load(garbage)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        SigningKey.load(garbage)
    with pytest.raises(KeyFileError, match=r"it is a private key: give the \.pub file"):
        PublicKey.load(keyfile)
    with pytest.raises(KeyFileError, match="it is a public key: give the private key file"):
        SigningKey.load(Path(f"{keyfile}.pub"))
    ecdsa = tmp_path / "ecdsa.key"
    ecdsa.write_bytes(generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                                      NoEncryption()))
    with pytest.raises(KeyFileError, match="not an Ed25519 private key"):
        SigningKey.load(ecdsa)


def test_an_encrypted_private_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1())
    path = tmp_path / "encrypted.key"
    path.write_bytes(ec.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret")))
    with pytest.raises(KeyFileError, match="is encrypted"):
        SigningKey.load(path)


def test_a_missing_key_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"cannot read the public key .*absent\.pub: No such file"):
        PublicKey.load(tmp_path / "absent.pub")


def statement_envelope(keyfile: Path) -> Envelope:
    subjects = [Subject("aquasec/trivy-db:2", {"sha256": "ab" * 32})]
    return sign_statement(subjects, PREDICATE, {"tool_version": "1"}, SigningKey.load(keyfile))


def test_envelope_round_trip(keyfile: Path) -> None:
    envelope = statement_envelope(keyfile)
    document = json.loads(envelope.serialize())
    assert document["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert [s["keyid"] for s in document["signatures"]] == [PublicKey.load(Path(f"{keyfile}.pub")).keyid]
    statement = json.loads(base64.b64decode(document["payload"]))
    assert statement == {"_type": STATEMENT_TYPE, "predicateType": PREDICATE, "predicate": {"tool_version": "1"},
                         "subject": [{"name": "aquasec/trivy-db:2", "digest": {"sha256": "ab" * 32}}]}
    parsed = verify_statement(Envelope.parse(envelope.serialize()), PublicKey.load(Path(f"{keyfile}.pub")))
    assert parsed == Statement((Subject("aquasec/trivy-db:2", {"sha256": "ab" * 32}),), PREDICATE,
                               {"tool_version": "1"})


def test_securesystemslib_verifies_our_envelope(keyfile: Path) -> None:
    ours = statement_envelope(keyfile).serialize()
    theirs = SslibEnvelope.from_dict(json.loads(ours))
    accepted = theirs.verify([sslib_key(keyfile)], 1)
    assert list(accepted) == [PublicKey.load(Path(f"{keyfile}.pub")).keyid]
    assert json.loads(theirs.payload)["_type"] == STATEMENT_TYPE

    # ... and refuses it once altered, so the check above can fail.
    document = json.loads(ours)
    document["payload"] = base64.b64encode(base64.b64decode(document["payload"]).replace(b"ab", b"cd")).decode()
    with pytest.raises(SslibVerificationError):
        SslibEnvelope.from_dict(document).verify([sslib_key(keyfile)], 1)


def test_we_verify_an_envelope_securesystemslib_signed_with_our_key_file(keyfile: Path) -> None:
    public = sslib_key(keyfile)
    signer = Signer.from_priv_key_uri(f"file2:{keyfile}", public)  # reads our PKCS#8 file itself
    assert isinstance(signer, CryptoSigner)
    statement = Statement((Subject("x", {"sha256": "00" * 32}),), PREDICATE, {}).serialize()
    theirs = SslibEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, {})
    theirs.sign(signer)
    data = json.dumps(theirs.to_dict()).encode()
    parsed = verify_statement(Envelope.parse(data), PublicKey.load(Path(f"{keyfile}.pub")))
    assert parsed.subjects == (Subject("x", {"sha256": "00" * 32}),)


def test_another_key_is_named_and_refused(keyfile: Path, tmp_path: Path) -> None:
    other = generate_key(tmp_path / "other.key")
    envelope = statement_envelope(keyfile)
    with pytest.raises(SignatureError, match=f"signed by another key .*not by the given key {other.keyid}"):
        envelope.verified_payload(other)


def test_a_signature_with_our_keyid_but_from_another_key_does_not_verify(keyfile: Path, tmp_path: Path) -> None:
    ours = PublicKey.load(Path(f"{keyfile}.pub"))
    generate_key(tmp_path / "other.key")
    forged = Envelope.sign(IN_TOTO_PAYLOAD_TYPE, b"{}", SigningKey.load(tmp_path / "other.key"))
    forged = Envelope(forged.payload_type, forged.payload, (Signature(ours.keyid, forged.signatures[0].sig),))
    with pytest.raises(SignatureError, match="does not verify"):
        forged.verified_payload(ours)


def test_every_signed_byte_matters(keyfile: Path) -> None:
    key = PublicKey.load(Path(f"{keyfile}.pub"))
    envelope = statement_envelope(keyfile)
    altered = [
        Envelope(envelope.payload_type, envelope.payload.replace(b"ab", b"ac", 1), envelope.signatures),
        Envelope("application/json", envelope.payload, envelope.signatures),  # the type is signed too
        Envelope(envelope.payload_type, envelope.payload, (Signature(key.keyid, bytes(64)),)),
    ]
    for candidate in altered:
        with pytest.raises(SignatureError, match="does not verify"):
            candidate.verified_payload(key)


@pytest.mark.parametrize(("document", "message"), [
    (b"{", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b'{"payloadType": "t", "payload": "", "signatures": []}', "0 signatures"),
    (b'{"payloadType": "t", "payload": "*!", "signatures": [{"keyid": "", "sig": ""}]}', "payload is not base64"),
    (b'{"payloadType": "t", "payload": "", "signatures": [{"keyid": "k", "sig": "a b"}]}', "signature is not base64"),
    (b'{"payloadType": "t", "payload": "", "signatures": [{"keyid": 1, "sig": ""}]}', "no valid keyid"),
])
def test_malformed_envelopes_are_one_line(document: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        Envelope.parse(document)


def test_url_safe_base64_is_accepted_as_dsse_allows(keyfile: Path) -> None:
    envelope = statement_envelope(keyfile)
    document = envelope.to_json()
    document["payload"] = base64.urlsafe_b64encode(envelope.payload).decode()
    document["signatures"][0]["sig"] = base64.urlsafe_b64encode(envelope.signatures[0].sig).decode()
    assert Envelope.parse(json.dumps(document).encode()) == envelope


@pytest.mark.parametrize(("payload", "message"), [
    (b"nope", "not JSON"),
    (json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}).encode(), "not an in-toto statement"),
    (json.dumps({"_type": STATEMENT_TYPE, "subject": [{"name": "x"}], "predicateType": "p"}).encode(),
     "has no name or digest"),
    (json.dumps({"_type": STATEMENT_TYPE, "subject": {}, "predicateType": "p"}).encode(), "needs subject"),
])
def test_statements_that_are_not_in_toto_v1_are_refused(payload: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        Statement.parse(payload)


def test_a_signed_payload_of_another_type_is_refused(keyfile: Path) -> None:
    envelope = Envelope.sign("application/json", b"{}", SigningKey.load(keyfile))
    with pytest.raises(SignatureError, match="not an in-toto statement"):
        verify_statement(envelope, PublicKey.load(Path(f"{keyfile}.pub")))
