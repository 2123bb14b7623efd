"""VEX repositories in bundles and Trivy caches: synced from a local upstream, carried, re-checked, laid out."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.vex_repo import UpstreamVex, github_tarball, repository_files
from trivy_mirror.bundle.exporter import plan_bundle, write_bundle
from trivy_mirror.bundle.format import MANIFEST_NAME
from trivy_mirror.bundle.importer import BundleImport, ImportReport
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.bundle.vex_export import VexExport
from trivy_mirror.bundle.vex_import import VexImport
from trivy_mirror.errors import BundleError, RefusedCandidate
from trivy_mirror.mirror.endpoints import StoreDestination
from trivy_mirror.oci.digest import Digest
from trivy_mirror.store import Store
from trivy_mirror.trivycache import TrivyCacheWriter, trivy_command
from trivy_mirror.vex.storage import VexRepository

from .conftest import ARCHIVE, sync


async def export(store: Store, *, required: bool = False) -> bytes:
    out = io.BytesIO()
    write_bundle(await plan_bundle([VexExport(store, required)]), out)
    return out.getvalue()


async def import_into(store: Store | None, data: bytes, tmp_path: Path, *,
                      allow_downgrade: bool = False) -> ImportReport:
    """Into ``store``, or (None) into a registry destination, which skips VEX repositories."""
    staging = Staging.in_store(store) if store is not None else Staging(tmp_path / "staging")
    destination = StoreDestination(store if store is not None else Store(tmp_path / "unused"))
    try:
        sections = [OciImport(staging.root, destination), VexImport(staging.root, store)]
        return await BundleImport(staging, sections).run(io.BytesIO(data),
                                                                       allow_downgrade=allow_downgrade,
                                                                       expected_sha256=None)
    finally:
        staging.remove()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def rebuild(data: bytes, replaced: dict[str, bytes]) -> bytes:
    """The bundle with members replaced, and the manifest's file list updated to match (a consistent forgery)."""
    contents = {**members(data), **replaced}
    document = json.loads(contents[MANIFEST_NAME])
    for entry in document["files"]:
        if entry["path"] in replaced:
            entry["digest"], entry["size"] = str(Digest.of(replaced[entry["path"]])), len(replaced[entry["path"]])
            for asset in document["assets"]:
                if entry["path"].endswith("archive.tar.gz"):
                    asset["digest"], asset["size"] = entry["digest"], entry["size"]
    contents[MANIFEST_NAME] = json.dumps(document).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


async def test_a_vex_repository_crosses_whole(vex_store: Store, tmp_path: Path) -> None:
    data = await export(vex_store, required=True)
    assert sorted(members(data)) == [MANIFEST_NAME, "vex/vexhub/archive.tar.gz", "vex/vexhub/repository.json"]
    [entry] = json.loads(members(data)[MANIFEST_NAME])["assets"]
    assert entry["reference"] == "vex/vexhub" and entry["updated_at"] == "2026-01-02T03:04:05Z"

    target = Store(tmp_path / "target")
    report = await import_into(target, data, tmp_path)
    assert [(r.entry.reference, r.outcome) for r in report.results] == [("vex/vexhub", "updated")]
    source_state, state = VexRepository(vex_store.root, "vexhub").load(), VexRepository(target.root, "vexhub").load()
    assert state.current == source_state.current and state.manifest == source_state.manifest
    assert VexRepository(target.root, "vexhub").has_blob(source_state.current.digest)  # type: ignore[union-attr]
    assert state.attempt.result == "imported" and "bundle" in state.attempt.message

    again = await import_into(target, data, tmp_path)
    assert [r.outcome for r in again.results] == ["unchanged"]


async def test_a_registry_destination_skips_vex(vex_store: Store, tmp_path: Path) -> None:
    report = await import_into(None, await export(vex_store), tmp_path)
    assert [r.outcome for r in report.results] == ["skipped"]


async def test_an_empty_store_has_nothing_to_export_unless_required(tmp_path: Path) -> None:
    assert json.loads(members(await export(Store(tmp_path / "empty")))[MANIFEST_NAME])["assets"] == []
    with pytest.raises(BundleError, match="no VEX repository to export"):
        await export(Store(tmp_path / "empty"), required=True)


async def test_an_older_index_is_a_downgrade(vex_store: Store, vex_upstream: UpstreamVex, tmp_path: Path) -> None:
    old_bundle = await export(vex_store)
    newer = Store(tmp_path / "newer")
    vex_upstream.files[ARCHIVE] = github_tarball(repository_files(updated_at=datetime(2026, 6, 1, tzinfo=UTC)))
    await sync(newer, vex_upstream)
    with pytest.raises(RefusedCandidate, match="vex/vexhub in the bundle was updated 2026-01-02T03:04:05Z, before"):
        await import_into(newer, old_bundle, tmp_path)
    report = await import_into(newer, old_bundle, tmp_path, allow_downgrade=True)
    assert [r.outcome for r in report.results] == ["updated"]
    assert VexRepository(newer.root, "vexhub").load().previous is not None


def _archive(files: dict[str, bytes], hostile: tarfile.TarInfo | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        if hostile is not None:
            tar.addfile(hostile)
    return gzip.compress(raw.getvalue())


def _symlink() -> tarfile.TarInfo:
    info = tarfile.TarInfo("pkg/escape")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


@pytest.mark.parametrize(("archive", "said"), [
    (_archive(repository_files(), _symlink()), "link"),
    (_archive({"README.md": b"no index"}), "index.json"),
    (b"not a tar.gz", "damaged"),
])
async def test_a_forged_archive_is_checked_as_sync_checks_a_download(vex_store: Store, tmp_path: Path,
                                                                     archive: bytes, said: str) -> None:
    data = rebuild(await export(vex_store), {"vex/vexhub/archive.tar.gz": archive})
    target = Store(tmp_path / "target")
    state = json.loads(members(data)["vex/vexhub/repository.json"])
    state["current"].update(digest=str(Digest.of(archive)), size=len(archive))
    data = rebuild(data, {"vex/vexhub/repository.json": json.dumps(state).encode()})
    with pytest.raises((RefusedCandidate, BundleError)) as raised:
        await import_into(target, data, tmp_path)
    assert said in str(raised.value)
    assert not (target.root / "vex").exists()


async def test_the_trivy_cache_holds_each_repository_as_trivy_leaves_it(vex_store: Store, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    components = TrivyCacheWriter(vex_store, cache).write([], vex=True)
    repository = cache / "vex" / "repositories" / "vexhub"
    assert sorted(p.name for p in repository.iterdir()) == ["0.1", "cache.json", "vex-repository.json"]
    assert (repository / "0.1" / "index.json").is_file()
    cached: dict[str, Any] = json.loads((repository / "cache.json").read_text())
    assert set(cached) == {"UpdatedAt", "ETags"}
    served = json.loads((repository / "vex-repository.json").read_text())
    assert served["versions"][0]["spec_version"] == "0.1"
    assert served["versions"][0]["locations"][0]["url"].endswith("//vexhub-main")
    config = yaml.safe_load((cache / "vex" / "repository.yaml").read_text())["repositories"]
    assert [(r["name"], r["enabled"]) for r in config] == [("vexhub", True), ("default", False)]
    command = trivy_command(cache, components)
    assert "--vex repo" in command and "--skip-vex-repo-update" in command


async def test_the_trivy_cache_can_name_the_mirror_instead_of_the_upstream(vex_store: Store, tmp_path: Path) -> None:
    """After update_interval Trivy fetches from repository.yaml's URL: with --mirror that is the mirror."""
    cache = tmp_path / "cache"
    [component] = TrivyCacheWriter(vex_store, cache, mirror="https://mirror.example:5000/").write([], vex=True)
    repository = cache / "vex" / "repositories" / "vexhub"
    archive = "https://mirror.example:5000/vex/vexhub/archive.tar.gz"
    served = json.loads((repository / "vex-repository.json").read_text())
    assert served["versions"][0]["locations"] == [{"url": archive}]
    assert json.loads((repository / "cache.json").read_text())["ETags"] == {archive: f'"{component.digest}"'}
    config = yaml.safe_load((cache / "vex" / "repository.yaml").read_text())["repositories"]
    assert config[0] == {"name": "vexhub", "url": "https://mirror.example:5000/vex/vexhub", "enabled": True}
