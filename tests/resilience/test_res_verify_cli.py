"""``trivy-mirror verify`` and the CLI under bad input: corruption found and repaired, the next sync restores it;
bad flags, unreadable files, a missing config and a full disk give one clear line and a documented exit code."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import trivy_mirror
from support.cli import MirrorCli, assert_one_error_line
from support.faultproxy import FAST
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.stores import synced_store_fixtures
from support.trivy_assets import DB_REPOSITORY, AssetSet, build_vuln_db, sha256_digest
from trivy_mirror.store import Store

pytestmark = pytest.mark.resilience


synced, store = synced_store_fixtures()


def blob(store: Path, digest: str, repository: str = DB_REPOSITORY) -> Path:
    return store / repository / "blobs" / "sha256" / digest.split(":")[1]


def test_verify_clean_store(mirror: MirrorCli, store: Path) -> None:
    result = mirror.run(["verify", "--store", str(store), "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == [] and report["tags"] >= 3 and report["blobs"] >= 6
    text = mirror.run(["verify", "--store", str(store)])
    assert text.returncode == 0 and text.stdout.startswith("ok: ")


@pytest.mark.parametrize("damage", ["flip a layer byte", "truncate a layer", "delete a layer", "delete a manifest",
                                    "garbage index.json", "stray corrupt blob"])
def test_verify_finds_repairs_and_sync_restores(damage: str, mirror: MirrorCli, store: Path,
                                                upstream: RegistryProcess, assets: AssetSet) -> None:
    layer = blob(store, sha256_digest(assets.db.layers[0]))
    if damage == "flip a layer byte":
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 1
        layer.write_bytes(bytes(data))
    elif damage == "truncate a layer":
        with layer.open("r+b") as file:
            file.truncate(layer.stat().st_size // 2)
    elif damage == "delete a layer":
        layer.unlink()
    elif damage == "delete a manifest":
        blob(store, assets.db.digest).unlink()
    elif damage == "garbage index.json":
        (store / DB_REPOSITORY / "index.json").write_text("{not json")
    else:
        blob(store, "sha256:" + "ab" * 32).write_bytes(b"junk")

    result = mirror.run(["verify", "--store", str(store)])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("trivy-mirror: error: ")
    assert len(result.stderr.splitlines()) <= 3  # one line per problem (the dated tag is incomplete too)

    repaired = mirror.run(["verify", "--store", str(store), "--repair", "--json"])
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert all(p["repaired"] for p in json.loads(repaired.stdout)["problems"])
    assert mirror.run(["verify", "--store", str(store)]).returncode == 0

    result = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store)], env=FAST)
    assert result.returncode == 0, result.stderr
    assert Store(store).layout(DB_REPOSITORY).tags()["2"].digest.hex == assets.db.digest.split(":")[1]
    assert blob(store, sha256_digest(assets.db.layers[0])).read_bytes() == assets.db.layers[0]
    assert mirror.run(["verify", "--store", str(store)]).returncode == 0


def test_verify_vex_archive_corruption(mirror: MirrorCli, store: Path) -> None:
    """A VEX archive that no longer matches its digest is reported; repair forgets it so the next sync (no
    If-None-Match without the file) downloads it again."""
    archive = b"not really a tar.gz, but verify only hashes it"
    digest = sha256_digest(archive)
    repo = store / "vex" / "hub"
    (repo / "blobs" / "sha256").mkdir(parents=True)
    (repo / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(archive[:-1] + b"X")
    state = {"name": "hub", "current": {"digest": digest, "size": len(archive), "location": "https://x/a.tar.gz",
                                        "synced_at": "2026-01-01T00:00:00Z"}}
    (repo / "repository.json").write_text(json.dumps(state))
    result = mirror.run(["verify", "--store", str(store), "--json"])
    assert result.returncode == 1
    kinds = {p["kind"] for p in json.loads(result.stdout)["problems"]}
    assert kinds == {"corrupt-blob", "bad-vex-archive"}
    assert mirror.run(["verify", "--store", str(store), "--repair"]).returncode == 0
    assert json.loads((repo / "repository.json").read_text())["current"] is None
    assert mirror.run(["verify", "--store", str(store)]).returncode == 0


def test_verify_missing_store_and_bad_flags(mirror: MirrorCli, tmp_path: Path) -> None:
    assert "no store at" in assert_one_error_line(mirror.run(["verify", "--store", str(tmp_path / "none")]))
    result = mirror.run(["verify", "--bogus"])
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ["sync", "--assets", "nope"],
    ["sync", "--lock-timeout", "soon"],
    ["serve", "--sync-every", "often"],
    ["serve", "--keep", "0"],
    ["status", "--store", "/dev/null/x", "--to", "127.0.0.1:1"],
    ["copy", "only-one-argument"],
    ["import", "/nonexistent/bundle.tar"],
    ["--config", "/nonexistent/config.yaml", "status"],
    ["trivy-config", "--mirror", "not a url"],
    ["no-such-command"],
])
def test_bad_usage_is_exit_2_with_one_line(args: list[str], mirror: MirrorCli) -> None:
    result = mirror.run(args, timeout=30)
    assert result.returncode == 2, (result.returncode, result.stderr)
    [line] = result.stderr.splitlines()  # not click's four lines (usage, hint, blank, error)
    assert line.startswith("trivy-mirror: error: "), line


def test_bad_config_file_is_exit_2(mirror: MirrorCli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("store: [unclosed\n")
    result = mirror.run(["--config", str(config), "status"])
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unreadable_bundle(mirror: MirrorCli, tmp_path: Path) -> None:
    """A bundle path that cannot be read as a file (root reads any mode, so a directory stands in)."""
    bundle = tmp_path / "b.tar"
    bundle.mkdir()
    result = mirror.run(["import", str(bundle), "--store", str(tmp_path / "s")])
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert "trivy-mirror: error:" in result.stderr or "Error:" in result.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("index.json"))


def test_unwritable_store_is_one_line(mirror: MirrorCli, tmp_path: Path, upstream: RegistryProcess) -> None:
    """A store path under a regular file cannot be created: one line, exit 1."""
    (tmp_path / "file").write_text("x")
    result = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(tmp_path / "file" / "store")])
    assert "Traceback" not in result.stderr and result.returncode in (1, 2), result.stderr
    assert "trivy-mirror: error:" in result.stderr


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root, as CI has)."""
    mountpoint = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_sync_is_one_line_and_leaves_nothing_partial(
    mirror: MirrorCli, small_disk: Path, registry: RegistryFactory
) -> None:
    source = registry()
    db = build_vuln_db(filler_bytes=2_500_000)
    push_artifact(source.host, DB_REPOSITORY, "2", db)
    store = small_disk / "store"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (2 * 1024 * 1024))  # leaves less room than the DB layer needs
    args = ["sync", "--from", f"{source.host}/aquasec", "--store", str(store), "--assets", "db"]
    result = mirror.run(args, env=FAST)
    line = assert_one_error_line(result)
    assert "No space left on device" in line, line
    if store.exists():
        assert trivy_mirror.verify(store=store).ok
        assert not list((store / ".tmp").glob("*")), "temp file left on a full disk"
        assert "2" not in Store(store).layout(DB_REPOSITORY).tags()
    filler.unlink()
    result = mirror.run(args, env=FAST)
    assert result.returncode == 0, result.stderr
    assert mirror.run(["verify", "--store", str(store)]).returncode == 0
