"""Bounded disk: ten syncs of a changing upstream, through ``sync --store`` and through ``import``, leave at most
``--keep`` versions and a store no larger than ``keep`` times the asset once the GC grace has passed (``keep + 1``
right after a write: the version just pruned waits out its grace), even when another asset (an unreachable VEX
repository) fails every time."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, Artifact, build_vuln_db
from trivy_mirror.store import Store
from trivy_mirror.store.paths import GC_FILE

pytestmark = pytest.mark.e2e

ROUNDS = 10
GC_GRACE = 600


def artifact_size(artifact: Artifact) -> int:
    return len(artifact.manifest) + sum(len(blob) for blob in artifact.blobs.values())


def blobs_size(store: Path) -> int:
    return sum(path.stat().st_size for path in (store / DB_REPOSITORY / "blobs").rglob("*") if path.is_file())


def age_blobs(store: Path) -> None:
    """What the hours between two scheduled syncs do: every blob was written, and every unreferenced one was
    found unreferenced (the layout's GC record), longer ago than the grace period."""
    then = time.time() - GC_GRACE - 60
    for path in (store / DB_REPOSITORY / "blobs").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))
    record = store / DB_REPOSITORY / GC_FILE
    if record.exists():
        document = json.loads(record.read_text())
        document["unreferenced"] = {digest: min(moment, then) for digest, moment in document["unreferenced"].items()}
        record.write_text(json.dumps(document))


def test_ten_syncs_and_imports_keep_the_store_bounded(
    mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path,
) -> None:
    keep = 2
    upstream = registry()
    synced, imported, bundle = tmp_path / "synced", tmp_path / "imported", tmp_path / "bundle.tar"
    dead_vex = f"dead=http://{upstream.host}/no-vex-here"  # a 404: fails at once, every round
    start = datetime.now(UTC)
    versions: list[Artifact] = []

    def write_both() -> None:
        for store in (synced, imported):
            if store.exists():
                age_blobs(store)
        result = mirror.run(["sync", "--store", str(synced), "--from", f"{upstream.host}/aquasec",
                             "--assets", "db,vex", "--vex-from", dead_vex, "--keep", str(keep)])
        assert result.returncode == 1 and "vex/dead" in result.stderr, result.stderr  # VEX fails every time
        exported = mirror.run(["export", str(bundle), "--store", str(synced), "--assets", "db"])
        assert exported.returncode == 0, exported.stderr
        result = mirror.run(["import", str(bundle), "--store", str(imported), "--keep", str(keep)])
        assert result.returncode == 0, result.stderr

    def check(stage: str, versions_on_disk: int) -> None:
        for store in (synced, imported):
            layout = Store(store).layout(DB_REPOSITORY)
            assert str(layout.tags()["2"].digest) == versions[-1].digest
            kept = list(dict.fromkeys(str(entry.digest) for entry in layout.manifests()))  # + dated tags' entries
            assert kept == [v.digest for v in versions[-keep:]], f"{stage}: {store.name} keeps {kept}"
            dated = {str(entry.digest) for tag, entry in layout.tags().items() if tag != "2"}
            assert dated <= set(kept), f"{stage}: a dated tag outlived its version"
            bound = sum(artifact_size(v) for v in versions[-versions_on_disk:])
            assert blobs_size(store) <= bound, f"{stage}: {store.name} holds {blobs_size(store)} > {bound}"

    for round_ in range(ROUNDS):
        versions.append(build_vuln_db(updated_at=start + timedelta(minutes=round_)))
        push_artifact(upstream.host, DB_REPOSITORY, "2", versions[-1])
        write_both()
        # The version pruned just now waits out its grace (a client may have resolved it a moment ago).
        check(f"round {round_}", keep + 1)
    write_both()  # nothing new upstream: the next run after the grace collects the last pruned version
    check("after the grace", keep)


def test_serve_keeps_the_store_bounded_while_another_asset_fails(
    mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path,
) -> None:
    """Every scheduled sync fails (its VEX source is a 404), yet the DB's old versions go after each one."""
    upstream = registry()
    store = tmp_path / "store"
    start = datetime.now(UTC)
    args = ["--store", str(store), "--from", f"{upstream.host}/aquasec", "--assets", "db,vex", "--keep", "1",
            "--vex-from", f"dead=http://{upstream.host}/no-vex-here", "--sync-every", "1s"]
    with ServeProcess(mirror, args) as server:
        for round_ in range(4):
            version = build_vuln_db(updated_at=start + timedelta(minutes=round_))
            push_artifact(upstream.host, DB_REPOSITORY, "2", version)
            deadline = time.monotonic() + 60
            while True:
                if store.exists():
                    age_blobs(store)
                    layout = Store(store).layout(DB_REPOSITORY)
                    kept = list(dict.fromkeys(str(entry.digest) for entry in layout.manifests()))
                    if kept == [version.digest] and blobs_size(store) <= artifact_size(version):
                        break
                assert time.monotonic() < deadline, f"round {round_}: {kept}\n{server.log()}"
                time.sleep(0.3)
        assert "vex/dead" in server.log()
