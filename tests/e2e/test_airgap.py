"""Crossing the air gap end to end: sync, export, import into a store and into a registry, serve, a ready Trivy
cache; a real Trivy proves each result, a real registry and skopeo check the bytes."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airgap_support import sha256_file, store_snapshot

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, free_port, push_artifact
from support.serve import ServeProcess
from support.skopeo import skopeo_raw
from support.trivy import TrivySandbox, misconfig_ids, scan_json, vuln_ids
from support.trivy_assets import (
    CHECK_ID,
    DB_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    AssetSet,
    build_vuln_db,
)
from support.vex_repo import UpstreamVex, github_tarball, manifest, repository_files

pytestmark = pytest.mark.e2e

MANIFEST = "trivy-mirror-bundle.json"
UPSTREAM_REFERENCES = {"aquasec/trivy-db:2", "aquasec/trivy-java-db:1", "aquasec/trivy-checks:2",
                       "aquasec/trivy-checks:1"}


@dataclass(frozen=True)
class Exported:
    """The connected side's result: the synced store, the bundle and what export printed."""

    store: Path
    bundle: Path
    stdout: str
    stderr: str

    @property
    def data(self) -> bytes:
        return self.bundle.read_bytes()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess) -> Exported:
    connected = MirrorCli(tmp_path_factory.mktemp("connected-home"))
    work = tmp_path_factory.mktemp("connected")
    store, bundle = work / "store", work / "trivy-assets.tar"
    connected.json(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store)])
    result = connected.run(["export", str(bundle), "--store", str(store)])
    assert result.returncode == 0, result.stderr
    return Exported(store, bundle, result.stdout, result.stderr)


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    """The isolated side's trivy-mirror, with a home of its own."""
    return MirrorCli(tmp_path / "isolated-home")


def bundle_manifest(data: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        first = tar.next()
        assert first is not None and first.name == MANIFEST
        handle = tar.extractfile(first)
        assert handle is not None
        parsed: dict[str, Any] = json.loads(handle.read())
        return parsed


def assert_serves_upstream(prefix: str, assets: AssetSet) -> None:
    """``prefix`` is ``oci:STORE`` or ``docker://HOST/PATH``: every tag holds upstream's exact manifest."""
    for repository, tag, artifact in assets.upstream_tags():
        assert skopeo_raw(f"{prefix}/{repository}:{tag}") == artifact.manifest


def scan_all(trivy: TrivySandbox, assets: AssetSet, repository_flags: Callable[[str], list[str]]) -> None:
    """fs finds the DB's CVE, rootfs the Java DB's, config the checks bundle's check."""
    fs = trivy.scan(["fs", "--scanners", "vuln", *repository_flags("fs"), str(assets.targets.requirements_dir)])
    assert vuln_ids(fs) == {PIP_CVE}
    rootfs = trivy.scan(["rootfs", "--scanners", "vuln", *repository_flags("rootfs"), str(assets.targets.rootfs_dir)])
    assert vuln_ids(rootfs) == {MAVEN_CVE}
    config = trivy.scan(["config", *repository_flags("config"), str(assets.targets.dockerfile_dir)])
    assert CHECK_ID in misconfig_ids(config)


def test_export_writes_a_bundle_that_can_be_checked_after_transfer(exported: Exported, assets: AssetSet,
                                                                   tmp_path: Path) -> None:
    digest = sha256_file(exported.bundle)
    assert exported.stdout == f"{digest}  {exported.bundle}\n"
    (tmp_path / "SHA256SUMS").write_text(exported.stdout)
    subprocess.run(["sha256sum", "--check", "--quiet", str(tmp_path / "SHA256SUMS")], check=True, timeout=60)

    manifest = bundle_manifest(exported.data)
    assert manifest["tool_version"] and manifest["created_at"]
    entries = {entry["reference"]: entry for entry in manifest["assets"]}
    assert set(entries) == UPSTREAM_REFERENCES
    for repository, tag, artifact in assets.upstream_tags():
        entry = entries[f"{repository}:{tag}"]
        assert entry["digest"] == artifact.digest
        assert entry["size"] == sum(len(blob) for blob in artifact.blobs.values())
        assert entry["source"].endswith(f"/{repository}:{tag}")
    assert entries["aquasec/trivy-db:2"]["updated_at"] and entries["aquasec/trivy-db:2"]["next_update"]
    assert entries["aquasec/trivy-checks:2"]["version"] == "2.1.0"

    # Unpacked with tar(1), each asset is an OCI layout skopeo reads.
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(exported.bundle), "-C", str(unpacked)], check=True, timeout=60)
    assert_serves_upstream(f"oci:{unpacked}/oci", assets)


def test_import_into_a_store_then_serve_it_to_trivy_configured_by_trivy_config(
    exported: Exported, mirror: MirrorCli, upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox,
    tmp_path: Path,
) -> None:
    store = tmp_path / "isolated-store"
    digest = sha256_file(exported.bundle)
    summary = mirror.json(["import", str(exported.bundle), "--store", str(store), "--sha256", f"sha256:{digest}"])
    assert summary["sha256"] == digest
    assert {(r["reference"], r["outcome"]) for r in summary["results"]} == {
        (reference, "updated") for reference in UPSTREAM_REFERENCES}
    assert_serves_upstream(f"oci:{store}", assets)
    assert not list((store / ".tmp").iterdir())  # the staging directory is gone

    status = mirror.json(["status", "--store", str(store)])
    for row in status["assets"]:
        assert row["state"] == "fresh" and row["source"].startswith("bundle (")

    upstream_requests = len(upstream.requests_log())
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as server:
        config_dir = tmp_path / "trivy-config"
        written = mirror.run(["trivy-config", "--mirror", server.url, "--no-vex", "--out", str(config_dir)])
        assert written.returncode == 0, written.stderr
        assert sorted(p.name for p in config_dir.iterdir()) == ["repository.yaml", "trivy.yaml"]
        vex_home = trivy.home / ".local" / "share" / ".trivy" / "vex"  # XDG_DATA_HOME of the Trivy sandbox
        vex_home.mkdir(parents=True)
        (vex_home / "repository.yaml").write_bytes((config_dir / "repository.yaml").read_bytes())
        configured = ["--config", str(config_dir / "trivy.yaml")]
        fs = trivy.scan([*configured, "fs", "--scanners", "vuln", str(assets.targets.requirements_dir)])
        assert vuln_ids(fs) == {PIP_CVE}
        rootfs = trivy.scan([*configured, "rootfs", "--scanners", "vuln", str(assets.targets.rootfs_dir)])
        assert vuln_ids(rootfs) == {MAVEN_CVE}
        config = trivy.scan([*configured, "config", str(assets.targets.dockerfile_dir)])
        assert CHECK_ID in misconfig_ids(config)
    assert len(upstream.requests_log()) == upstream_requests  # the isolated side never reached upstream


def test_import_into_a_registry_with_the_sync_engine(exported: Exported, mirror: MirrorCli,
                                                     registry: RegistryFactory, assets: AssetSet,
                                                     trivy: TrivySandbox) -> None:
    destination = registry()
    args = ["import", str(exported.bundle), "--to", f"{destination.host}/isolated"]
    summary = mirror.json(args)
    assert {r["outcome"] for r in summary["results"]} == {"updated"}
    assert_serves_upstream(f"docker://{destination.host}/isolated", assets)

    base = f"{destination.host}/isolated/aquasec"
    flags = {"fs": ["--db-repository", f"{base}/trivy-db:2"],
             "rootfs": ["--skip-db-update", "--java-db-repository", f"{base}/trivy-java-db:1"],
             "config": ["--checks-bundle-repository", f"{base}/trivy-checks:2"]}
    scan_all(trivy, assets, lambda command: flags[command])

    before = len(destination.requests_log())
    again = mirror.json(args)
    assert {r["outcome"] for r in again["results"]} == {"unchanged"}
    assert [m for m, _ in destination.requests_log()[before:] if m in ("PUT", "POST", "PATCH")] == []


def test_import_into_a_registry_logs_each_layer_pushed(exported: Exported, mirror: MirrorCli,
                                                       registry: RegistryFactory, assets: AssetSet) -> None:
    """Off a terminal, each asset's layer pushed into the registry is a transfer of its own, as in sync."""
    destination = registry()
    result = mirror.run(["import", str(exported.bundle), "--to", f"{destination.host}/isolated"])
    assert result.returncode == 0, result.stderr
    layer = len(assets.db.layers[0]) / 1e6
    pushed = f"db to {destination.host}/isolated/aquasec/trivy-db"
    assert f"copying {pushed}: {layer:.1f} MB" in result.stderr
    assert f"copied {pushed}: {layer:.1f} MB in " in result.stderr


def test_reimporting_the_same_bundle_changes_nothing(exported: Exported, mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    mirror.json(["import", str(exported.bundle), "--store", str(store)])
    before = store_snapshot(store)
    again = mirror.json(["import", str(exported.bundle), "--store", str(store)])
    assert {r["outcome"] for r in again["results"]} == {"unchanged"}
    assert store_snapshot(store) == before


def test_export_and_import_off_a_terminal_log_the_transfer_as_sync_does(exported: Exported, mirror: MirrorCli,
                                                                         tmp_path: Path) -> None:
    """The bundle is one transfer on the engine's event stream: a start line with its size, ``copied`` at the end
    (and, for a long one, a line every 5 s); ``--json`` shows none."""
    size = sum(entry["size"] for entry in bundle_manifest(exported.data)["files"]) / 1e6
    name = f"bundle {exported.bundle}"
    assert f"copying {name}: {size:.1f} MB" in exported.stderr
    assert f"copied {name}: {size:.1f} MB in " in exported.stderr
    imported = mirror.run(["import", str(exported.bundle), "--store", str(tmp_path / "store")])
    assert imported.returncode == 0, imported.stderr
    assert f"copying {name}: {size:.1f} MB" in imported.stderr
    assert f"copied {name}: {size:.1f} MB in " in imported.stderr
    quiet = mirror.run(["import", str(exported.bundle), "--store", str(tmp_path / "store2"), "--json"])
    assert quiet.returncode == 0 and "copying" not in quiet.stderr, quiet.stderr


def test_export_to_stdout_piped_into_import_from_stdin(exported: Exported, mirror: MirrorCli, assets: AssetSet,
                                                       tmp_path: Path) -> None:
    store = tmp_path / "piped-store"
    export, imported = mirror.pipe(["export", "-", "--store", str(exported.store)],
                                   ["import", "-", "--store", str(store), "--json"])
    assert export.returncode == 0, export.stderr.decode()
    assert imported.returncode == 0, imported.stderr.decode()
    summary = json.loads(imported.stdout)
    assert f"bundle sha256:{summary['sha256']}".encode() in export.stderr
    assert b"copied bundle to stdout: " in export.stderr
    assert {r["outcome"] for r in summary["results"]} == {"updated"}
    assert_serves_upstream(f"oci:{store}", assets)

    # The same stream, byte for byte, as the file export wrote (apart from the creation time in the manifest).
    streamed = mirror.run_bytes(["export", "-", "--store", str(exported.store)])
    assert streamed.returncode == 0
    assert bundle_manifest(streamed.stdout)["files"] == bundle_manifest(exported.data)["files"]


# Hostile and damaged bundles: each is refused with one line and leaves the destination untouched.


def _members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        result = []
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            result.append((member, handle.read() if handle else b""))
        return result


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return out.getvalue()


def _file(name: str, content: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, b""


def _layer_path(data: bytes) -> str:
    """The DB layer's member: the largest blob of the trivy-db layout."""
    blobs = [f for f in bundle_manifest(data)["files"] if f["path"].startswith("oci/aquasec/trivy-db/blobs/")]
    path: str = max(blobs, key=lambda f: f["size"])["path"]
    return path


def _flip_layer_byte(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        offset = tar.getmember(_layer_path(data)).offset_data + 100
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def _replace(data: bytes, path: str, new: tuple[tarfile.TarInfo, bytes]) -> bytes:
    return _tar([new if info.name == path else (info, content) for info, content in _members(data)])


def _alter_manifest(data: bytes) -> bytes:
    members = _members(data)
    manifest = json.loads(members[0][1])
    for entry in manifest["assets"]:
        if entry["asset"] == "db":
            entry["updated_at"] = "2001-01-01T00:00:00Z"
    return _tar([_file(MANIFEST, json.dumps(manifest).encode()), *members[1:]])


def _grow(data: bytes, path: str) -> bytes:
    members = _members(data)
    return _tar([_file(info.name, content + b" " * 64) if info.name == path else (info, content)
                 for info, content in members])


HOSTILE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda d: d[: len(d) // 2], "truncated"),
    "flipped byte in a layer": (_flip_layer_byte, "does not match its digest"),
    "altered manifest": (_alter_manifest, "was altered"),
    "traversal": (lambda d: _tar([*_members(d), _file("oci/../../escaped.txt")]), "escapes its directory"),
    "absolute path": (lambda d: _tar([*_members(d), _file("/tmp/escaped.txt")]), "not a safe relative path"),
    "symlink": (lambda d: _replace(d, _layer_path(d), _special(_layer_path(d), tarfile.SYMTYPE, "/etc/passwd")),
                "symbolic link"),
    "hardlink": (lambda d: _replace(d, _layer_path(d), _special(_layer_path(d), tarfile.LNKTYPE, "/etc/passwd")),
                 "hard link"),
    "device": (lambda d: _tar([*_members(d), _special("oci/aquasec/trivy-db/null", tarfile.CHRTYPE)]),
               "device file"),
    "fifo": (lambda d: _tar([*_members(d), _special("oci/aquasec/trivy-db/fifo", tarfile.FIFOTYPE)]), "FIFO"),
    "duplicate member": (lambda d: _tar([*_members(d), _members(d)[3]]), "appears twice"),
    "oversize member": (lambda d: _grow(d, "oci/aquasec/trivy-db/index.json"), "the bundle manifest says"),
    "unlisted member": (lambda d: _tar([*_members(d), _file("oci/aquasec/trivy-db/extra")]), "not listed"),
    "missing member": (lambda d: _tar([m for m in _members(d) if m[0].name != _layer_path(d)]), "missing"),
    "not a bundle": (lambda d: _tar(_members(d)[1:]), "not a trivy-mirror bundle"),
    "not a tar": (lambda d: b"PK\x03\x04 this is not a tar archive" * 100, "not a tar archive"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_or_damaged_bundle_is_refused_and_the_store_untouched(
    case: str, exported: Exported, mirror: MirrorCli, tmp_path: Path
) -> None:
    make, reason = HOSTILE[case]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(make(exported.data))
    store = tmp_path / "store"
    result = mirror.run(["import", str(bad), "--store", str(store)])
    line = assert_one_error_line(result)
    assert reason in line, line
    assert store_snapshot(store) == {}
    assert not list((store / ".tmp").glob("*"))
    assert not (tmp_path / "escaped.txt").exists()


def test_damaged_bundle_pushes_nothing_to_a_registry(exported: Exported, mirror: MirrorCli,
                                                     registry: RegistryFactory, tmp_path: Path) -> None:
    destination = registry()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(_flip_layer_byte(exported.data))
    result = mirror.run(["import", str(bad), "--to", destination.host])
    assert "does not match its digest" in assert_one_error_line(result)
    assert [m for m, _ in destination.requests_log() if m in ("PUT", "POST", "PATCH")] == []


def test_wrong_expected_sha256_is_refused(exported: Exported, mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = mirror.run(["import", str(exported.bundle), "--store", str(store), "--sha256", "0" * 64])
    assert "not the expected" in assert_one_error_line(result)
    assert store_snapshot(store) == {}


def test_an_older_bundle_is_refused_unless_downgrade_is_allowed(
    exported: Exported, mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path
) -> None:
    old_db = build_vuln_db(updated_at=datetime.now(UTC) - timedelta(days=3))
    old_upstream = registry()
    push_artifact(old_upstream.host, DB_REPOSITORY, "2", old_db)
    old_store, old_bundle = tmp_path / "old-store", tmp_path / "old.tar"
    mirror.json(["sync", "--from", f"{old_upstream.host}/aquasec", "--store", str(old_store), "--assets", "db"])
    written = mirror.run(["export", str(old_bundle), "--store", str(old_store), "--assets", "db"])
    assert written.returncode == 0, written.stderr
    assert "stale" in written.stderr  # its NextUpdate has passed: said, not refused

    store = tmp_path / "store"
    mirror.json(["import", str(exported.bundle), "--store", str(store)])
    before = store_snapshot(store)
    refused = mirror.run(["import", str(old_bundle), "--store", str(store)])
    line = assert_one_error_line(refused)
    assert "refused" in line and "--allow-downgrade" in line and "aquasec/trivy-db:2" in line
    assert store_snapshot(store) == before

    allowed = mirror.json(["import", str(old_bundle), "--store", str(store), "--allow-downgrade"])
    assert [r["outcome"] for r in allowed["results"]] == ["updated"]
    assert skopeo_raw(f"oci:{store}/{DB_REPOSITORY}:2") == old_db.manifest


# trivy-cache


def test_trivy_cache_lets_trivy_scan_with_no_network(exported: Exported, mirror: MirrorCli, assets: AssetSet,
                                                     tmp_path: Path) -> None:
    cache = tmp_path / "trivy-cache"
    for _ in range(2):  # a second run replaces what the first wrote
        result = mirror.run(["trivy-cache", str(cache), "--store", str(exported.store)])
        assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout.strip())
    assert command[:2] == ["trivy", "image"] and command[command.index("--cache-dir") + 1] == str(cache)
    assert {"--skip-db-update", "--skip-java-db-update", "--skip-check-update", "--offline-scan"} <= set(command)
    assert sorted(p.name for p in cache.iterdir()) == ["db", "java-db", "policy"]

    db_meta = json.loads((cache / "db" / "metadata.json").read_text())
    downloaded = datetime.fromisoformat(db_meta["DownloadedAt"].replace("Z", "+00:00"))
    assert db_meta["Version"] == 2 and abs(datetime.now(UTC) - downloaded) < timedelta(minutes=5)
    assert (cache / "java-db" / "trivy-java.db").is_file()
    policy = json.loads((cache / "policy" / "metadata.json").read_text())
    assert policy["Digest"] == assets.checks.digest and policy["MajorVersion"] == 2
    assert (cache / "policy" / "content" / "policies" / "docker" / "policies").is_dir()

    home = tmp_path / "trivy-home"
    dead = f"127.0.0.1:{free_port()}/aquasec"  # nothing listens: any download attempt would fail
    skip = {"fs": ["--skip-db-update"], "rootfs": ["--skip-db-update", "--skip-java-db-update"],
            "config": ["--skip-check-update"]}
    # Without the skip flags, DownloadedAt/NextUpdate alone keep Trivy from reaching for the (dead) registry.
    stale_free = {"fs": ["--db-repository", f"{dead}/trivy-db:2"],
                  "rootfs": ["--db-repository", f"{dead}/trivy-db:2", "--java-db-repository",
                             f"{dead}/trivy-java-db:1"],
                  "config": ["--checks-bundle-repository", f"{dead}/trivy-checks:2"]}
    for flags in (skip, stale_free):
        fs = scan_json(["fs", "--scanners", "vuln", "--offline-scan", *flags["fs"],
                        str(assets.targets.requirements_dir)], cache, home)
        assert vuln_ids(fs) == {PIP_CVE}
        rootfs = scan_json(["rootfs", "--scanners", "vuln", "--offline-scan", *flags["rootfs"],
                            str(assets.targets.rootfs_dir)], cache, home)
        assert vuln_ids(rootfs) == {MAVEN_CVE}
        config = scan_json(["config", *flags["config"], str(assets.targets.dockerfile_dir)], cache, home)
        assert CHECK_ID in misconfig_ids(config)


def test_trivy_cache_from_an_empty_store_fails_with_one_line(mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    result = mirror.run(["trivy-cache", str(tmp_path / "cache"), "--store", str(store)])
    assert "run trivy-mirror sync first" in assert_one_error_line(result)
    assert not (tmp_path / "cache" / "db").exists()


# VEX repositories


async def sync_with_vex(mirror: MirrorCli, upstream: RegistryProcess, store: Path) -> None:
    """The connected side with a VEX repository too: ``sync --vex-from vexhub=...`` through the CLI (in a thread,
    so the local VEX upstream keeps answering), which is stopped afterwards."""
    vex_upstream = await UpstreamVex().start()
    try:
        vex_upstream.files["/gh/.well-known/vex-repository.json"] = manifest(
            f"{vex_upstream.url}/gh/archive/main.tar.gz//vexhub-main")
        vex_upstream.files["/gh/archive/main.tar.gz"] = github_tarball(repository_files())
        summary = await asyncio.to_thread(mirror.json, [
            "sync", "--from", f"{upstream.host}/aquasec", "--vex-from", f"vexhub={vex_upstream.url}/gh",
            "--store", str(store)])
    finally:
        await vex_upstream.stop()
    assert {(r["reference"], r["outcome"]) for r in summary["results"]} == {
        *((reference, "updated") for reference in UPSTREAM_REFERENCES), ("vex/vexhub", "updated")}


def suppressed(report: dict[str, Any]) -> dict[str, str]:
    """VulnerabilityID -> VEX status of every finding a VEX repository suppressed."""
    return {finding["Finding"]["VulnerabilityID"]: finding["Status"]
            for result in report.get("Results") or []
            for finding in result.get("ExperimentalModifiedFindings") or []}


async def test_vex_crosses_the_gap_and_trivy_configured_by_trivy_config_applies_it(
    mirror: MirrorCli, upstream: RegistryProcess, assets: AssetSet, trivy: TrivySandbox, tmp_path: Path
) -> None:
    connected, bundle = tmp_path / "connected-store", tmp_path / "with-vex.tar"
    await sync_with_vex(mirror, upstream, connected)
    assert mirror.run(["export", str(bundle), "--store", str(connected)]).returncode == 0
    assert {e["reference"] for e in bundle_manifest(bundle.read_bytes())["assets"]} == {*UPSTREAM_REFERENCES,
                                                                                        "vex/vexhub"}

    isolated = tmp_path / "isolated-store"
    imported = mirror.json(["import", str(bundle), "--store", str(isolated)])
    assert {r["outcome"] for r in imported["results"]} == {"updated"} and len(imported["results"]) == 5
    upstream_requests = len(upstream.requests_log())
    with ServeProcess(mirror, ["--store", str(isolated), "--no-sync"]) as server:
        config_dir = tmp_path / "trivy-config"
        written = mirror.run(["trivy-config", "--mirror", server.url, "--out", str(config_dir)])
        assert written.returncode == 0, written.stderr
        vex_home = trivy.home / ".local" / "share" / ".trivy" / "vex"  # XDG_DATA_HOME of the Trivy sandbox
        vex_home.mkdir(parents=True)
        (vex_home / "repository.yaml").write_bytes((config_dir / "repository.yaml").read_bytes())
        report = trivy.scan(["--config", str(config_dir / "trivy.yaml"), "fs", "--scanners", "vuln",
                             "--show-suppressed", str(assets.targets.requirements_dir)])
    assert PIP_CVE not in vuln_ids(report)
    assert suppressed(report) == {PIP_CVE: "not_affected"}  # the DB finding, with the VEX statement applied
    assert len(upstream.requests_log()) == upstream_requests


async def test_vex_goes_into_the_trivy_cache_and_is_skipped_by_a_registry(
    mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet, tmp_path: Path
) -> None:
    store, bundle = tmp_path / "store", tmp_path / "with-vex.tar"
    await sync_with_vex(mirror, upstream, store)

    cache = tmp_path / "trivy-cache"
    written = mirror.run(["trivy-cache", str(cache), "--store", str(store), "--assets", "db,vex"])
    assert written.returncode == 0, written.stderr
    assert "--vex repo" in written.stdout and "--skip-vex-repo-update" in written.stdout
    home = tmp_path / "trivy-home"
    vex_config = home / ".local" / "share" / ".trivy" / "vex"  # XDG_DATA_HOME of the Trivy sandbox
    vex_config.mkdir(parents=True)
    (vex_config / "repository.yaml").write_bytes((cache / "vex" / "repository.yaml").read_bytes())
    report = scan_json(["fs", "--scanners", "vuln", "--skip-db-update", "--vex", "repo", "--skip-vex-repo-update",
                        "--show-suppressed", str(assets.targets.requirements_dir)], cache, home)
    assert PIP_CVE not in vuln_ids(report)
    assert suppressed(report) == {PIP_CVE: "not_affected"}

    assert mirror.run(["export", str(bundle), "--store", str(store)]).returncode == 0
    to_registry = mirror.run(["import", str(bundle), "--to", registry().host, "--json"])
    assert to_registry.returncode == 0, to_registry.stderr
    assert {(r["reference"], r["outcome"]) for r in json.loads(to_registry.stdout)["results"]} == {
        *((reference, "updated") for reference in UPSTREAM_REFERENCES), ("vex/vexhub", "skipped")}
    assert "a registry holds no VEX repositories" in to_registry.stderr
