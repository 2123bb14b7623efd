"""Signed bundles in process, between real stores: the statement, and every way a signature check refuses a bundle."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import Signer, SSlibKey

from support.vex_repo import UpstreamVex
from trivy_mirror import __version__
from trivy_mirror.bundle.attestation import ENVELOPE_NAME, PREDICATE_TYPE, predicate, subjects
from trivy_mirror.bundle.exporter import plan_bundle, write_bundle
from trivy_mirror.bundle.format import MANIFEST_NAME, parse_manifest
from trivy_mirror.bundle.importer import BundleImport, ImportReport
from trivy_mirror.bundle.oci_export import OciExport
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.bundle.vex_export import VexExport
from trivy_mirror.bundle.vex_import import VexImport
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.errors import BundleError, SignatureError
from trivy_mirror.mirror.endpoints import StoreDestination
from trivy_mirror.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    PublicKey,
    SigningKey,
    Subject,
    generate_key,
    sign_statement,
)
from trivy_mirror.store import Store

from .conftest import sync


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    generate_key(tmp_path / "signing.key")
    return SigningKey.load(tmp_path / "signing.key")


async def export(store: Store, key: SigningKey | None, *, vex: bool = False, only: str | None = None) -> bytes:
    sections: list[Any] = [OciExport(store, [spec for spec in CATALOG if only in (None, spec.name)])]
    if vex:
        sections.append(VexExport(store, required=True))
    out = io.BytesIO()
    write_bundle(await plan_bundle(sections, key), out)
    return out.getvalue()


async def import_into(store: Store, data: bytes, verify_key: PublicKey | None) -> ImportReport:
    staging = Staging.in_store(store)
    try:
        sections = [OciImport(staging.root, StoreDestination(store)), VexImport(staging.root, store)]
        return await BundleImport(staging, sections).run(io.BytesIO(data), allow_downgrade=False,
                                                                       expected_sha256=None, verify_key=verify_key)
    finally:
        staging.remove()


def members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def tar(contents: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as writer:
        for info, content in contents:
            info.size = len(content)
            writer.addfile(info, io.BytesIO(content))
    return out.getvalue()


def with_envelope(data: bytes, envelope: bytes | None) -> bytes:
    """The bundle with its envelope replaced (None: removed, as if never signed)."""
    rest = [(info, content) for info, content in members(data) if info.name != ENVELOPE_NAME]
    head = [(tarfile.TarInfo(ENVELOPE_NAME), envelope)] if envelope is not None else []
    return tar([rest[0], *head, *rest[1:]])


def statement_of(data: bytes) -> dict[str, Any]:
    envelope = json.loads(dict((i.name, c) for i, c in members(data))[ENVELOPE_NAME])
    parsed: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return parsed


async def test_a_signed_bundle_names_every_asset_and_its_manifest(full_store: Store, vex_upstream: UpstreamVex,
                                                                  key: SigningKey, tmp_path: Path) -> None:
    await sync(full_store, vex_upstream)
    data = await export(full_store, key, vex=True)
    names = [info.name for info, _ in members(data)]
    assert names[:2] == [MANIFEST_NAME, ENVELOPE_NAME]  # before any asset member: checked before they are read

    manifest_data = members(data)[0][1]
    manifest = parse_manifest(manifest_data)
    statement = statement_of(data)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    expected = {MANIFEST_NAME: hashlib.sha256(manifest_data).hexdigest(),
                **{entry.reference: entry.digest.removeprefix("sha256:") for entry in manifest.assets}}
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == expected
    assert {"aquasec/trivy-db:2", "aquasec/trivy-java-db:1", "aquasec/trivy-checks:2", "aquasec/trivy-checks:1",
            "vex/vexhub"} < set(expected)
    vex_archive = next(e for e in manifest.assets if e.reference == "vex/vexhub")
    assert vex_archive.digest == next(str(f.digest) for f in manifest.files if f.path.endswith("archive.tar.gz"))
    assert statement["predicate"]["tool_version"] == __version__
    assert statement["predicate"]["created_at"] == manifest.to_json()["created_at"]
    assert statement["predicate"]["sources"]["vex/vexhub"] == vex_archive.source

    target = Store(tmp_path / "target")
    report = await import_into(target, data, key.public)
    assert report.verified_key == key.public.keyid
    assert {r.outcome for r in report.results} == {"updated"} and len(report.results) == 5


async def test_securesystemslib_verifies_the_envelope_of_a_real_bundle(full_store: Store, key: SigningKey,
                                                                       tmp_path: Path) -> None:
    data = await export(full_store, key)
    envelope = dict((i.name, c) for i, c in members(data))[ENVELOPE_NAME]
    public = load_pem_public_key((tmp_path / "signing.key.pub").read_bytes())
    their_key = SSlibKey.from_crypto(public, keyid=key.public.keyid)
    their_envelope = SslibEnvelope.from_dict(json.loads(envelope))
    assert list(their_envelope.verify([their_key], 1)) == [key.public.keyid]
    assert their_envelope.payload_type == IN_TOTO_PAYLOAD_TYPE


async def test_an_envelope_securesystemslib_signed_is_accepted(full_store: Store, key: SigningKey,
                                                               tmp_path: Path) -> None:
    """Our verification against a DSSE implementation that is not ours: it signs the statement we expect."""
    unsigned = await export(full_store, None)
    manifest_data = members(unsigned)[0][1]
    manifest = parse_manifest(manifest_data)
    statement = {"_type": STATEMENT_TYPE, "subject": [s.to_json() for s in subjects(manifest, manifest_data)],
                 "predicateType": PREDICATE_TYPE, "predicate": predicate(manifest)}
    their_key = SSlibKey.from_crypto(load_pem_public_key((tmp_path / "signing.key.pub").read_bytes()),
                                     keyid=key.public.keyid)
    signer = Signer.from_priv_key_uri(f"file2:{tmp_path / 'signing.key'}", their_key)
    theirs = SslibEnvelope(json.dumps(statement).encode(), IN_TOTO_PAYLOAD_TYPE, {})
    theirs.sign(signer)
    signed = with_envelope(unsigned, json.dumps(theirs.to_dict()).encode())
    report = await import_into(Store(tmp_path / "target"), signed, key.public)
    assert report.verified_key == key.public.keyid and len(report.results) == 4


async def test_without_a_key_a_signed_bundle_imports_and_says_so(full_store: Store, key: SigningKey, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    report = await import_into(Store(tmp_path / "target"), await export(full_store, key), None)
    assert report.verified_key is None and {r.outcome for r in report.results} == {"updated"}
    [line] = [r.getMessage() for r in caplog.records if "is signed" in r.getMessage()]
    assert key.public.keyid in line and "not checked" in line


def _resign(data: bytes, key: SigningKey, edit: Any, predicate_type: str = PREDICATE_TYPE) -> bytes:
    """The bundle with a statement of our own making, signed by ``key``: ``edit`` changes its subjects."""
    manifest_data = members(data)[0][1]
    manifest = parse_manifest(manifest_data)
    changed = edit(list(subjects(manifest, manifest_data)))
    envelope = sign_statement(changed, predicate_type, predicate(manifest), key).serialize()
    return with_envelope(data, envelope)


def _drop(name: str) -> Any:
    return lambda items: [s for s in items if s.name != name]


def _other_digest(name: str) -> Any:
    return lambda items: [Subject(s.name, {"sha256": "0" * 64}) if s.name == name else s for s in items]


def _extra(items: list[Subject]) -> list[Subject]:
    return [*items, Subject("aquasec/trivy-db:1", {"sha256": "1" * 64})]


@pytest.mark.parametrize(("case", "said"), [
    ("unsigned", "it is not signed"),
    ("another key", "signed by another key"),
    ("signature altered", "does not verify"),
    ("payload altered", "does not verify"),
    ("not json", "not valid JSON"),
    ("asset not signed", "aquasec/trivy-db:2 sha256:"),
    ("asset signed with another digest", "(the key signed sha256:0000000000000000)"),
    ("signed asset missing", "'aquasec/trivy-db:1' (sha256:1111111111111111), which the bundle does not carry"),
    ("manifest not signed", "its manifest trivy-mirror-bundle.json is not the one the key signed"),
    ("manifest altered", "its manifest trivy-mirror-bundle.json is not the one the key signed"),
    ("another predicate", "not a trivy-mirror bundle"),
    ("envelope of another bundle", "its manifest trivy-mirror-bundle.json is not the one the key signed"),
])
async def test_refused_bundles_leave_the_store_empty(full_store: Store, key: SigningKey, tmp_path: Path,
                                                     case: str, said: str) -> None:
    data = await export(full_store, key)
    envelope = dict((i.name, c) for i, c in members(data))[ENVELOPE_NAME]
    document = json.loads(envelope)
    if case == "unsigned":
        data = with_envelope(data, None)
    elif case == "another key":
        generate_key(tmp_path / "other.key")
        data = _resign(data, SigningKey.load(tmp_path / "other.key"), lambda items: items)
    elif case == "signature altered":
        sig = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
        sig[10] ^= 1
        document["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        data = with_envelope(data, json.dumps(document).encode())
    elif case == "payload altered":
        payload = base64.b64decode(document["payload"]).replace(b"trivy-mirror", b"trivy-mirrer", 1)
        document["payload"] = base64.b64encode(payload).decode()
        data = with_envelope(data, json.dumps(document).encode())
    elif case == "not json":
        data = with_envelope(data, envelope[:-10])
    elif case == "asset not signed":
        data = _resign(data, key, _drop("aquasec/trivy-db:2"))
    elif case == "asset signed with another digest":
        data = _resign(data, key, _other_digest("aquasec/trivy-db:2"))
    elif case == "signed asset missing":
        data = _resign(data, key, _extra)
    elif case == "manifest not signed":
        data = _resign(data, key, _drop(MANIFEST_NAME))
    elif case == "manifest altered":
        rest = members(data)
        altered = json.loads(rest[0][1])
        altered["assets"][0]["source"] = "somewhere.else/aquasec/trivy-db:2"
        data = tar([(rest[0][0], json.dumps(altered).encode()), *rest[1:]])
    elif case == "another predicate":
        data = _resign(data, key, lambda items: items, "urn:example:other:v1")
    elif case == "envelope of another bundle":
        data = with_envelope(await export(full_store, None, only="db"), envelope)
    target = Store(tmp_path / "target")
    with pytest.raises((SignatureError, BundleError)) as raised:
        await import_into(target, data, key.public)
    assert said in str(raised.value), str(raised.value)
    assert str(raised.value).startswith("bundle refused, nothing imported: ")
    assert target.repositories() == []
    assert not (target.root / ".tmp").exists() or not any((target.root / ".tmp").iterdir())


async def test_an_envelope_anywhere_but_after_the_manifest_is_refused(full_store: Store, key: SigningKey,
                                                                      tmp_path: Path) -> None:
    contents = members(await export(full_store, key))
    moved = tar([contents[0], *contents[2:], contents[1]])
    target = Store(tmp_path / "target")
    with pytest.raises(BundleError, match=r"'trivy-mirror-bundle\.dsse\.json' is out of place"):
        await import_into(target, moved, None)
    assert target.repositories() == []
