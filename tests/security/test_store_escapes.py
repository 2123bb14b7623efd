"""A tampered store cannot make trivy-mirror delete, truncate or serve files outside it (issue 12, item 5).

Links planted in place of ``.tmp``, ``.lock``, a layout's ``blobs/`` or a blob file, each against the real CLI:
writers and ``serve`` refuse to start with one error line and touch nothing behind the link; ``verify``
reports the links and ``--repair`` removes the links themselves, never their targets; the server does not
serve a blob whose file links out of the store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryProcess
from support.serve import ServeProcess
from support.stores import synced_store_fixtures
from support.trivy_assets import DB_REPOSITORY
from trivy_mirror.store import Store

pytestmark = pytest.mark.security


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    return MirrorCli(tmp_path / "mirror-home")


synced, store = synced_store_fixtures("db")


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory outside the store whose files must survive whatever runs on the store."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me\n")
    return victim


def sync(mirror: MirrorCli, store: Path, upstream: RegistryProcess) -> tuple[int, str]:
    result = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    return result.returncode, assert_one_error_line(result) if result.returncode else ""


def test_a_linked_tmp_dir_is_refused_and_its_target_untouched(mirror: MirrorCli, store: Path, victim: Path,
                                                              upstream: RegistryProcess) -> None:
    shutil.rmtree(store / ".tmp", ignore_errors=True)
    (store / ".tmp").symlink_to(victim)
    code, error = sync(mirror, store, upstream)
    assert code == 1
    assert ".tmp is a symbolic link" in error and "never follows links" in error
    assert (victim / "precious").read_text() == "keep me\n"


def test_a_linked_lock_file_is_refused_and_its_target_not_truncated(mirror: MirrorCli, store: Path, victim: Path,
                                                                    upstream: RegistryProcess) -> None:
    (store / ".lock").unlink(missing_ok=True)
    (store / ".lock").symlink_to(victim / "precious")
    code, error = sync(mirror, store, upstream)
    assert code == 1 and ".lock is a symbolic link" in error
    assert (victim / "precious").read_text() == "keep me\n"


def test_serve_refuses_a_store_with_linked_blobs(mirror: MirrorCli, store: Path, victim: Path) -> None:
    blobs = store / DB_REPOSITORY / "blobs"
    shutil.move(blobs, victim / "blobs")
    blobs.symlink_to(victim / "blobs")
    result = mirror.run(["serve", "--store", str(store), "--no-sync", "--listen", "127.0.0.1:0"], timeout=30)
    error = assert_one_error_line(result)
    assert f"{DB_REPOSITORY}/blobs is a symbolic link" in error
    assert any((victim / "blobs" / "sha256").iterdir())


def test_verify_reports_links_and_repair_removes_only_the_links(mirror: MirrorCli, store: Path, victim: Path,
                                                                upstream: RegistryProcess) -> None:
    blobs = store / DB_REPOSITORY / "blobs"
    shutil.copytree(blobs, victim / "blobs")
    (victim / "blobs" / "sha256" / ("0" * 64)).write_text("not a blob: a repair must not delete it\n")
    outside = sorted((victim / "blobs" / "sha256").iterdir())
    shutil.rmtree(blobs)
    blobs.symlink_to(victim / "blobs")
    shutil.rmtree(store / ".tmp", ignore_errors=True)
    (store / ".tmp").symlink_to(victim)

    checked = mirror.run(["verify", "--store", str(store), "--json"])
    assert checked.returncode == 1
    links = {problem["path"] for problem in json.loads(checked.stdout)["problems"] if problem["kind"] == "link"}
    assert links == {str(blobs), str(store / ".tmp")}

    repaired = mirror.run(["verify", "--store", str(store), "--repair"])
    assert "Traceback" not in repaired.stderr
    assert not blobs.is_symlink() and not (store / ".tmp").is_symlink()
    assert (victim / "precious").read_text() == "keep me\n"
    assert sorted((victim / "blobs" / "sha256").iterdir()) == outside, "a repair deleted through the link"
    assert sync(mirror, store, upstream) == (0, "")
    assert mirror.run(["verify", "--store", str(store)]).returncode == 0


def test_a_blob_file_linking_out_of_the_store_is_not_served(mirror: MirrorCli, store: Path, victim: Path) -> None:
    layer = Store(store).layout(DB_REPOSITORY)
    manifest = layer.read_manifest("2")
    assert manifest is not None
    config = manifest.parsed.blobs[0]  # type: ignore[union-attr]
    path = layer.blob_path(config.digest)
    path.unlink()
    path.symlink_to(victim / "precious")
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as serve:
        status, body = serve.get(f"/v2/{DB_REPOSITORY}/blobs/{config.digest}")
    assert status == 404 and b"keep me" not in body
    assert b"BLOB_UNKNOWN" in body
