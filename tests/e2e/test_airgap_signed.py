"""Signed bundles across the air gap, end to end: keygen, export --sign, import --verify-key, all as processes;
a real registry upstream, skopeo for the imported bytes, securesystemslib for the envelope."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from airgap_support import store_snapshot
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess
from support.skopeo import skopeo_raw
from support.trivy_assets import AssetSet

pytestmark = pytest.mark.e2e

MANIFEST = "trivy-mirror-bundle.json"
ENVELOPE = "trivy-mirror-bundle.dsse.json"


@dataclass(frozen=True)
class Signed:
    """The connected side: a key pair, the synced store, a signed and an unsigned bundle of it."""

    key: Path
    keyid: str
    store: Path
    bundle: Path
    unsigned: Path

    @property
    def public(self) -> Path:
        return self.key.with_name(f"{self.key.name}.pub")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess) -> Signed:
    connected = MirrorCli(tmp_path_factory.mktemp("connected-home"))
    work = tmp_path_factory.mktemp("connected")
    key, store = work / "keys" / "bundle.key", work / "store"
    key.parent.mkdir()
    generated = connected.run(["keygen", str(key)])
    assert generated.returncode == 0, generated.stderr
    connected.json(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store)])
    bundle, unsigned = work / "signed.tar", work / "unsigned.tar"
    summary = connected.json(["export", str(bundle), "--store", str(store), "--sign", str(key)])
    assert connected.run(["export", str(unsigned), "--store", str(store)]).returncode == 0
    keyid = generated.stdout.strip()
    assert summary["signed_by"] == keyid
    return Signed(key, keyid, store, bundle, unsigned)


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    """The isolated side's trivy-mirror, with a home of its own."""
    return MirrorCli(tmp_path / "isolated-home")


def member(data: bytes, name: str) -> tuple[int, bytes]:
    """(offset of the data in the tar, content) of one member."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        info = tar.getmember(name)
        handle = tar.extractfile(info)
        assert handle is not None
        return info.offset_data, handle.read()


def assert_serves_upstream(store: Path, assets: AssetSet) -> None:
    for repository, tag, artifact in assets.upstream_tags():
        assert skopeo_raw(f"oci:{store}/{repository}:{tag}") == artifact.manifest


def test_keygen_writes_a_key_pair_and_prints_its_id(signed: Signed, mirror: MirrorCli) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", signed.keyid)
    der = load_pem_public_key(signed.public.read_bytes()).public_bytes(Encoding.DER,
                                                                        PublicFormat.SubjectPublicKeyInfo)
    assert signed.keyid == hashlib.sha256(der).hexdigest()
    assert stat.S_IMODE(signed.key.stat().st_mode) == 0o600
    assert signed.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")

    before = signed.key.read_bytes()
    again = mirror.run(["keygen", str(signed.key)])
    assert "exists; not overwriting" in assert_one_error_line(again, code=2)
    assert again.stdout == "" and signed.key.read_bytes() == before


def test_a_signed_bundle_imports_with_the_right_key(signed: Signed, mirror: MirrorCli, assets: AssetSet,
                                                    tmp_path: Path) -> None:
    store = tmp_path / "isolated-store"
    result = mirror.run(["import", str(signed.bundle), "--store", str(store), "--verify-key", str(signed.public),
                         "--json"])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["verified_key"] == signed.keyid
    assert {r["outcome"] for r in summary["results"]} == {"updated"} and len(summary["results"]) == 4
    assert f"bundle signature verified: key {signed.keyid}" in result.stderr
    assert_serves_upstream(store, assets)

    # Streamed through a pipe, signed on the way out and checked on the way in.
    piped = tmp_path / "piped-store"
    export, imported = mirror.pipe(["export", "-", "--store", str(signed.store), "--sign", str(signed.key)],
                                   ["import", "-", "--store", str(piped), "--verify-key", str(signed.public)])
    assert export.returncode == 0, export.stderr.decode()
    assert imported.returncode == 0, imported.stderr.decode()
    assert_serves_upstream(piped, assets)


def test_without_verify_key_a_signed_bundle_imports_as_before_and_says_so(signed: Signed, mirror: MirrorCli,
                                                                          tmp_path: Path) -> None:
    result = mirror.run(["import", str(signed.bundle), "--store", str(tmp_path / "store"), "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified_key"] is None
    lines = [line for line in result.stderr.splitlines() if "bundle is signed" in line]
    assert len(lines) == 1 and "INFO" in lines[0] and signed.keyid in lines[0], result.stderr


def test_an_independent_dsse_implementation_verifies_the_envelope(signed: Signed, tmp_path: Path) -> None:
    """securesystemslib reads the envelope tar(1) unpacks, with the .pub keygen wrote: no trivy-mirror code."""
    subprocess.run(["tar", "-xf", str(signed.bundle), "-C", str(tmp_path), ENVELOPE, MANIFEST], check=True, timeout=60)
    key = SSlibKey.from_crypto(load_pem_public_key(signed.public.read_bytes()), keyid=signed.keyid)
    envelope = SslibEnvelope.from_dict(json.loads((tmp_path / ENVELOPE).read_bytes()))
    assert list(envelope.verify([key], 1)) == [signed.keyid]
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    manifest = json.loads((tmp_path / MANIFEST).read_bytes())
    subjects = {s["name"]: f"sha256:{s['digest']['sha256']}" for s in statement["subject"]}
    assert subjects == {MANIFEST: "sha256:" + hashlib.sha256((tmp_path / MANIFEST).read_bytes()).hexdigest(),
                        **{a["reference"]: a["digest"] for a in manifest["assets"]}}


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def _flip_in_layer(data: bytes) -> bytes:
    manifest = json.loads(member(data, MANIFEST)[1])
    layer = max((f for f in manifest["files"] if f["path"].startswith("oci/aquasec/trivy-db/blobs/")),
                key=lambda f: f["size"])
    return _flip(data, member(data, layer["path"])[0] + 100)


def _base64_char_in_envelope(field: str) -> Callable[[bytes], bytes]:
    """One byte of the envelope's ``field`` value changed to another base64 letter: still well-formed."""
    def change(data: bytes) -> bytes:
        offset, content = member(data, ENVELOPE)
        position = content.index(f'"{field}": "'.encode()) + len(field) + 5 + 20
        replacement = b"B" if content[position:position + 1] != b"B" else b"C"
        return data[:offset + position] + replacement + data[offset + position + 1:]
    return change


def _flip_in_envelope_json(data: bytes) -> bytes:
    offset, content = member(data, ENVELOPE)
    return _flip(data, offset + content.index(b'"signatures"') + 3)


@pytest.mark.parametrize(("case", "said"), [
    ("another key", "signed by another key"),
    ("no signature", "it is not signed"),
    ("flipped byte in the DB layer", "does not match its digest"),
    ("flipped byte in the envelope's payload", "does not verify"),
    ("flipped byte in the envelope's signature", "does not verify"),
    ("flipped byte in the envelope's JSON", "signature envelope is invalid"),
])
def test_refused_with_one_line_and_the_store_unchanged(case: str, said: str, signed: Signed, mirror: MirrorCli,
                                                       tmp_path: Path) -> None:
    public = signed.public
    bundle = tmp_path / "bundle.tar"
    data = signed.bundle.read_bytes()
    if case == "another key":
        assert mirror.run(["keygen", str(tmp_path / "other.key")]).returncode == 0
        public = tmp_path / "other.key.pub"
    elif case == "no signature":
        data = signed.unsigned.read_bytes()
    elif case == "flipped byte in the DB layer":
        data = _flip_in_layer(data)
    elif case == "flipped byte in the envelope's payload":
        data = _base64_char_in_envelope("payload")(data)
    elif case == "flipped byte in the envelope's signature":
        data = _base64_char_in_envelope("sig")(data)
    else:
        data = _flip_in_envelope_json(data)
    assert len(data) == signed.bundle.stat().st_size or case == "no signature"
    bundle.write_bytes(data)
    store = tmp_path / "store"
    result = mirror.run(["import", str(bundle), "--store", str(store), "--verify-key", str(public)])
    line = assert_one_error_line(result)
    assert said in line, line
    assert store_snapshot(store) == {}
    assert not list((store / ".tmp").glob("*"))


def test_an_unsigned_bundle_pushes_nothing_to_a_registry(signed: Signed, mirror: MirrorCli,
                                                         registry: RegistryFactory) -> None:
    destination = registry()
    result = mirror.run(["import", str(signed.unsigned), "--to", f"{destination.host}/isolated", "--verify-key",
                         str(signed.public)])
    assert "it is not signed" in assert_one_error_line(result)
    assert [m for m, _ in destination.requests_log() if m in ("PUT", "POST", "PATCH", "DELETE")] == []


def test_key_file_mistakes_are_usage_errors_and_write_nothing(signed: Signed, mirror: MirrorCli,
                                                              tmp_path: Path) -> None:
    output = tmp_path / "never.tar"
    exported = mirror.run(["export", str(output), "--store", str(signed.store), "--sign", str(signed.public)])
    assert "it is a public key" in assert_one_error_line(exported, code=2)
    assert not output.exists() and not list(tmp_path.glob(".never.tar.*"))

    store = tmp_path / "store"
    imported = mirror.run(["import", str(signed.bundle), "--store", str(store), "--verify-key",
                           str(tmp_path / "absent.pub")])
    assert "cannot read the public key" in assert_one_error_line(imported, code=2)
    assert store_snapshot(store) == {}


def test_a_consistently_altered_bundle_passes_every_check_but_the_key(signed: Signed, mirror: MirrorCli,
                                                                      tmp_path: Path) -> None:
    """The manifest rewritten (its members still agree with it) and the old signature kept: only the key sees it."""
    content = member(signed.bundle.read_bytes(), MANIFEST)[1]
    manifest = json.loads(content)
    manifest["assets"][0]["source"] = "attacker.example/aquasec/trivy-db:2"
    forged_manifest = json.dumps(manifest, indent=2).encode() + b"\n"
    with tarfile.open(signed.bundle) as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            data = forged_manifest if info.name == MANIFEST else data
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    forged = tmp_path / "forged.tar"
    forged.write_bytes(out.getvalue())
    store = tmp_path / "store"
    unchecked = mirror.run(["import", str(forged), "--store", str(tmp_path / "unchecked")])
    assert unchecked.returncode == 0, unchecked.stderr  # nothing but the signature tells it apart
    result = mirror.run(["import", str(forged), "--store", str(store), "--verify-key", str(signed.public)])
    assert "is not the one the key signed" in assert_one_error_line(result)
    assert store_snapshot(store) == {}
