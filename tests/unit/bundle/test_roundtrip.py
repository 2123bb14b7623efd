"""Export and import in process, between real stores: what the checks see and what they refuse."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from support.stores import put
from support.trivy_assets import CHECKS_REPOSITORY, DB_REPOSITORY, AssetSet, build_checks_bundle
from trivy_mirror.bundle.exporter import plan_bundle, write_bundle
from trivy_mirror.bundle.format import MANIFEST_NAME
from trivy_mirror.bundle.importer import BundleImport, ImportReport
from trivy_mirror.bundle.oci_export import OciExport
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.catalog.state import tag_record
from trivy_mirror.errors import BundleError, RefusedCandidate, StoreError
from trivy_mirror.mirror.endpoints import StoreDestination
from trivy_mirror.store import Store


async def export(store: Store, names: tuple[str, ...] = ()) -> bytes:
    specs = [spec for spec in CATALOG if not names or spec.name in names]
    out = io.BytesIO()
    write_bundle(await plan_bundle([OciExport(store, specs)]), out)
    return out.getvalue()


async def import_into(store: Store, data: bytes, *, allow_downgrade: bool = False) -> ImportReport:
    staging = Staging.in_store(store)
    try:
        importer = BundleImport(staging, [OciImport(staging.root, StoreDestination(store))])
        return await importer.run(io.BytesIO(data), allow_downgrade=allow_downgrade, expected_sha256=None)
    finally:
        staging.remove()


def rebuild(data: bytes, change: Any) -> bytes:
    """The bundle with its members passed through ``change(list of (info, content)) -> list``."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in change(members):
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


async def test_round_trip_keeps_every_digest(full_store: Store, assets: AssetSet, tmp_path: Path) -> None:
    target = Store(tmp_path / "target")
    report = await import_into(target, await export(full_store))
    assert [r.outcome for r in report.results] == ["updated"] * 4
    for repository, tag, artifact in assets.upstream_tags():
        manifest = target.layout(repository).read_manifest(tag)
        assert manifest is not None and manifest.data == artifact.manifest
    record = tag_record(target.layout(DB_REPOSITORY).read_state(), "2")
    assert record is not None and record.source == "bundle" and record.metadata is not None
    assert record.metadata.updated_at is not None
    checks = tag_record(target.layout(CHECKS_REPOSITORY).read_state(), "2")
    assert checks is not None and checks.source == "bundle"

    again = await import_into(target, await export(full_store))
    assert [r.outcome for r in again.results] == ["unchanged"] * 4


async def test_the_db_metadata_is_read_even_when_the_layer_comes_first(full_store: Store, tmp_path: Path) -> None:
    """A bundle written by hand (layer before manifest) still gets its metadata checked, in a second pass."""
    def layer_first(members: list[Any]) -> list[Any]:
        head, rest = members[:3], members[3:]
        return [*head, *sorted(rest, key=lambda m: -m[0].size)]

    data = rebuild(await export(full_store, ("db",)), layer_first)
    report = await import_into(Store(tmp_path / "target"), data)
    assert report.results[0].updated_at is not None


async def test_an_older_checks_bundle_is_a_downgrade(tmp_path: Path) -> None:
    old, new = Store(tmp_path / "old"), Store(tmp_path / "new")
    await put(old, CHECKS_REPOSITORY, "2", build_checks_bundle(version="2.0.1"))
    await put(new, CHECKS_REPOSITORY, "2", build_checks_bundle(version="2.10.0"))
    bundle = await export(old, ("checks",))
    with pytest.raises(RefusedCandidate, match=r"version 2\.0\.1, older than the served 2\.10\.0"):
        await import_into(new, bundle)
    report = await import_into(new, bundle, allow_downgrade=True)
    assert report.results[0].outcome == "updated"


async def test_a_custom_checks_bundle_is_no_downgrade(tmp_path: Path) -> None:
    custom, new = Store(tmp_path / "custom"), Store(tmp_path / "new")
    await put(custom, CHECKS_REPOSITORY, "2", build_checks_bundle(version=None))
    await put(new, CHECKS_REPOSITORY, "2", build_checks_bundle(version="2.10.0"))
    report = await import_into(new, await export(custom, ("checks",)))
    assert report.results[0].outcome == "updated"


def _edit_manifest(edit: Any) -> Any:
    def change(members: list[Any]) -> list[Any]:
        info, content = members[0]
        assert info.name == MANIFEST_NAME
        document = json.loads(content)
        edit(document)
        return [(info, json.dumps(document).encode()), *members[1:]]
    return change


@pytest.mark.parametrize(("edit", "said"), [
    (lambda d: d["assets"].append({**d["assets"][0], "kind": "vex"}), "assets of kind 'vex'"),
    (lambda d: d["files"].append({**d["files"][0], "path": "vex/x/archive.tar.gz"}), "of a kind this trivy-mirror"),
    (lambda d: d["files"].append({**d["files"][0], "path": "oci/aquasec/other/index.json"}), "not a Trivy asset"),
    (lambda d: d["files"].append({**d["files"][0], "path": "oci/aquasec/trivy-db/notes.txt"}), "not part of an OCI"),
    (lambda d: d["assets"][0].update(reference="aquasec/trivy-db:latest"), "not a Trivy asset this"),
    (lambda d: d["assets"][0].update(digest="sha256:" + "0" * 64), "does not tag :2"),
    (lambda d: d["assets"][0].update(size=1), "size 1 !="),
])
async def test_a_manifest_that_disagrees_with_the_bundle_is_refused(full_store: Store, tmp_path: Path, edit: Any,
                                                                    said: str) -> None:
    data = rebuild(await export(full_store, ("db",)), _edit_manifest(edit))
    target = Store(tmp_path / "target")
    with pytest.raises(BundleError) as raised:
        await import_into(target, data)
    assert said in str(raised.value)
    assert target.repositories() == []


async def test_export_refuses_a_store_without_the_asset(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="has no aquasec/trivy-db:2; run trivy-mirror sync"):
        await export(Store(tmp_path / "empty"), ("db",))


async def test_export_refuses_a_damaged_blob(full_store: Store, assets: AssetSet) -> None:
    layer = assets.db.manifest_json["layers"][0]["digest"]
    path = full_store.layout(DB_REPOSITORY).path / "blobs" / "sha256" / layer.split(":")[1]
    content = bytearray(path.read_bytes())
    content[50] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(StoreError, match="store is damaged"):
        await export(full_store, ("db",))


async def test_staging_needs_room(full_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trivy_mirror.bundle.stage.SPACE_MARGIN", 1 << 60)
    target = Store(tmp_path / "target")
    with pytest.raises(StoreError, match="not enough space"):
        await import_into(target, await export(full_store))
    assert target.repositories() == []
