"""The Trivy cache writer: Trivy's own layout and metadata, and a safe unpacking of the layers."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.stores import put
from support.trivy_assets import CHECKS_REPOSITORY, AssetSet, build_checks_bundle
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.errors import StoreError, UnsafeMember
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store
from trivy_mirror.timefmt import go_time
from trivy_mirror.trivycache import TrivyCacheWriter, extract_layer, trivy_command

NOW = datetime(2026, 5, 6, 7, 8, 9, 120000, tzinfo=UTC)


@pytest.mark.parametrize(("moment", "text"), [
    (NOW, "2026-05-06T07:08:09.12Z"), (NOW.replace(microsecond=0), "2026-05-06T07:08:09Z"),
])
def test_go_time(moment: datetime, text: str) -> None:
    assert go_time(moment) == text


def test_writes_trivys_layout(full_store: Store, assets: AssetSet, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "fanal").mkdir(parents=True)  # Trivy's scan cache: left alone
    (cache / "db").mkdir()
    (cache / "db" / "stale.txt").write_text("replaced whole")
    components = TrivyCacheWriter(full_store, cache, NOW).write(list(CATALOG))
    assert sorted(p.name for p in cache.iterdir()) == ["db", "fanal", "java-db", "policy"]
    assert sorted(p.name for p in (cache / "db").iterdir()) == ["metadata.json", "trivy.db"]
    db_meta = json.loads((cache / "db" / "metadata.json").read_text())
    assert list(db_meta) == ["Version", "NextUpdate", "UpdatedAt", "DownloadedAt"]
    assert db_meta["DownloadedAt"] == "2026-05-06T07:08:09.12Z" and db_meta["Version"] == 2
    assert sorted(p.name for p in (cache / "java-db").iterdir()) == ["metadata.json", "trivy-java.db"]
    assert json.loads((cache / "policy" / "metadata.json").read_text()) == {
        "Digest": assets.checks.digest, "DownloadedAt": "2026-05-06T07:08:09.12Z", "MajorVersion": 2}
    assert [c.asset for c in components] == ["db", "java-db", "checks"]
    command = trivy_command(cache, components)
    assert command.startswith(f"trivy image --cache-dir {cache} --skip-db-update --skip-java-db-update "
                              f"--skip-check-update --offline-scan")


async def test_a_checks_bundle_without_version_is_a_custom_build(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    artifact = build_checks_bundle(version=None)
    await put(store, CHECKS_REPOSITORY, "2", artifact)
    checks = [spec for spec in CATALOG if spec.name == "checks"]
    TrivyCacheWriter(store, tmp_path / "cache", NOW).write(checks)
    assert json.loads((tmp_path / "cache" / "policy" / "metadata.json").read_text()) == {
        "Digest": artifact.digest, "DownloadedAt": "2026-05-06T07:08:09.12Z", "MajorVersion": 0,
        "CustomBuild": True}


def test_a_missing_asset_fails_before_anything_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(StoreError, match="has no aquasec/trivy-db:2"):
        TrivyCacheWriter(Store(tmp_path / "empty"), cache).write(list(CATALOG))
    assert list(cache.iterdir()) == []


def _layer(*members: tarfile.TarInfo, content: bytes = b"data") -> tuple[Descriptor, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member in members:
            if member.isreg():
                member.size = len(content)
                tar.addfile(member, io.BytesIO(content))
            else:
                tar.addfile(member)
    data = gzip.compress(raw.getvalue())
    return Descriptor("application/gzip", Digest.of(data), len(data)), data


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(("members", "said"), [
    ((_info("../evil"),), "escapes"),
    ((_info("/etc/evil"),), "not a safe relative path"),
    ((_info("link", tarfile.SYMTYPE, "/etc"),), "symbolic link"),
    ((_info("link", tarfile.LNKTYPE, "trivy.db"),), "hard link"),
    ((_info("dev", tarfile.CHRTYPE),), "device file"),
    ((_info("trivy.db"), _info("trivy.db")), "twice"),
])
def test_hostile_layers_are_refused(tmp_path: Path, members: tuple[tarfile.TarInfo, ...], said: str) -> None:
    descriptor, data = _layer(*members)
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    with pytest.raises(UnsafeMember, match=said):
        extract_layer(blob, descriptor, tmp_path / "out", "db")
    assert not (tmp_path / "evil").exists()


def test_a_damaged_layer_is_reported(tmp_path: Path) -> None:
    descriptor, data = _layer(_info("trivy.db"))
    blob = tmp_path / "blob"
    blob.write_bytes(data + b"trailing")
    with pytest.raises(StoreError, match="store is damaged"):
        extract_layer(blob, descriptor, tmp_path / "out", "db")
    blob.write_bytes(b"not gzip at all")
    with pytest.raises(StoreError, match=r"not a readable tar\.gz"):
        extract_layer(blob, descriptor, tmp_path / "out2", "db")
