"""A bundle's signature: a DSSE envelope whose in-toto statement names, by digest, everything the bundle carries.

The envelope is the member ``trivy-mirror-bundle.dsse.json``, written right after the bundle manifest and not
listed in it (it cannot list its own signature), so an import checks it before reading any other member. Its
statement (``predicateType`` :data:`PREDICATE_TYPE`, a URN of ours: no document lives at it) has as subjects:

- every asset, named by its reference in the bundle (``aquasec/trivy-db:2``, ``vex/vexhub``) with its digest: the
  OCI manifest digest of an OCI asset, the archive digest of a VEX repository;
- the bundle manifest ``trivy-mirror-bundle.json`` with the sha256 of its bytes. The manifest lists every member
  with its digest and the import checks each member against it, so the signature covers every byte imported
  (VEX ``repository.json``, the layouts' ``index.json`` too), not only the assets.

The predicate records the tool version, the creation time and each asset's source. The subjects of the statement
and the bundle must match exactly: an asset the key did not sign, or a signed asset the bundle lacks, refuses it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from trivy_mirror.bundle.format import FORMAT_VERSION, MANIFEST_NAME, BundleManifest
from trivy_mirror.errors import BundleError, InvalidDigest, SignatureError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.signing import (
    Envelope,
    PublicKey,
    SigningKey,
    Statement,
    Subject,
    shown_keyid,
    sign_statement,
    verify_statement,
)
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

ENVELOPE_NAME = "trivy-mirror-bundle.dsse.json"
PREDICATE_TYPE = "urn:trivy-mirror:bundle:v1"
MAX_ENVELOPE_BYTES = 1024 * 1024
REFUSED = "bundle refused, nothing imported"


def subjects(manifest: BundleManifest, manifest_data: bytes) -> tuple[Subject, ...]:
    """What a bundle with this manifest (of these exact bytes) must be signed for."""
    result = [Subject(MANIFEST_NAME, {"sha256": hashlib.sha256(manifest_data).hexdigest()})]
    for entry in manifest.assets:
        try:
            digest = Digest.parse(entry.digest)
        except InvalidDigest as err:
            raise BundleError(f"bundle manifest is invalid: {entry.reference}: {err}") from None
        result.append(Subject(entry.reference, {digest.algorithm: digest.hex}))
    return tuple(result)


def predicate(manifest: BundleManifest) -> dict[str, Any]:
    return {"tool": "trivy-mirror", "tool_version": manifest.tool_version, "created_at": iso(manifest.created_at),
            "bundle_format_version": FORMAT_VERSION,
            "sources": {entry.reference: entry.source for entry in manifest.assets}}


def sign_bundle(manifest: BundleManifest, manifest_data: bytes, key: SigningKey) -> bytes:
    """The envelope member for a bundle whose manifest is ``manifest_data``."""
    return sign_statement(subjects(manifest, manifest_data), PREDICATE_TYPE, predicate(manifest), key).serialize()


def _digest(subject: Subject) -> str:
    return ", ".join(f"{algorithm}:{value[:16]}" for algorithm, value in sorted(subject.digest.items()))


def _check_subjects(statement: Statement, expected: tuple[Subject, ...]) -> None:
    signed: dict[str, Subject] = {}
    for subject in statement.subjects:
        if subject.name in signed:
            raise SignatureError(f"{REFUSED}: the signed statement names {subject.name[:200]!r} twice")
        signed[subject.name] = subject
    for subject in expected:
        ((algorithm, value),) = subject.digest.items()
        match = signed.get(subject.name)
        if match is not None and match.digest.get(algorithm) == value:
            continue
        if subject.name == MANIFEST_NAME:
            raise SignatureError(f"{REFUSED}: its manifest {MANIFEST_NAME} is not the one the key signed; the "
                                 f"bundle was altered after it was signed")
        signed_as = f" (the key signed {_digest(match)})" if match is not None else ""
        raise SignatureError(f"{REFUSED}: {subject.name} {algorithm}:{value[:16]} is not in the signed "
                             f"statement{signed_as}; the bundle's contents are not what the key signed")
    names = {subject.name for subject in expected}
    extra = [subject for subject in statement.subjects if subject.name not in names]
    if extra:
        raise SignatureError(f"{REFUSED}: the signed statement names {extra[0].name[:200]!r} "
                             f"({_digest(extra[0])}), which the bundle does not carry")


def verify_bundle(envelope_data: bytes | None, manifest: BundleManifest, manifest_data: bytes,
                  key: PublicKey) -> None:
    """Refuse (SignatureError, one line) unless ``key`` signed a statement naming exactly this bundle's contents."""
    if envelope_data is None:
        raise SignatureError(f"{REFUSED}: it is not signed (no {ENVELOPE_NAME} after {MANIFEST_NAME}) and "
                             f"--verify-key accepts signed bundles only")
    try:
        statement = verify_statement(Envelope.parse(envelope_data), key)
    except SignatureError as err:
        raise SignatureError(f"{REFUSED}: {err}") from None
    if statement.predicate_type != PREDICATE_TYPE:
        raise SignatureError(f"{REFUSED}: the key signed a {statement.predicate_type[:100]!r} statement, not a "
                             f"trivy-mirror bundle ({PREDICATE_TYPE})")
    _check_subjects(statement, subjects(manifest, manifest_data))


def signer_hint(envelope_data: bytes) -> str:
    """The key ids an envelope claims, for a message; its signature is not checked."""
    try:
        keyids = [s.keyid for s in Envelope.parse(envelope_data).signatures]
    except SignatureError:
        return "an envelope that does not parse"
    return "key " + ", ".join(shown_keyid(keyid) for keyid in keyids)
