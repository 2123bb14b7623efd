"""DSSE envelopes checked by an independent implementation (securesystemslib), not by trivy-mirror's own code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from trivy_mirror.signing import PublicKey


def verified_statement(document: bytes, public_key_file: Path) -> dict[str, Any]:
    """The in-toto statement of the DSSE envelope ``document``, after securesystemslib verified its signature
    with the Ed25519 public key in ``public_key_file`` (PEM, from ``trivy-mirror keygen``); raises otherwise."""
    envelope = Envelope.from_dict(json.loads(document))
    keyid = PublicKey.load(public_key_file).keyid
    public = load_pem_public_key(public_key_file.read_bytes())
    assert list(envelope.verify([SSlibKey.from_crypto(public, keyid=keyid)], 1)) == [keyid]
    statement = json.loads(base64.b64decode(json.loads(document)["payload"]))
    assert isinstance(statement, dict)
    return statement
