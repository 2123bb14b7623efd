"""serve's background integrity audit: a blob that went bad on disk is never served, is reported in /readyz,
/metrics and status, and (with a sync loop) is repaired and copied again from the sources."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY

pytestmark = pytest.mark.e2e


def db_layer(store: Path) -> tuple[str, Path]:
    """The digest of the served DB's layer and its file in the store."""
    index = json.loads((store / DB_REPOSITORY / "index.json").read_text())
    [tagged] = [m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "2"]  # not the dated tag
    manifest_path = store / DB_REPOSITORY / "blobs" / "sha256" / tagged["digest"].split(":")[1]
    [layer] = json.loads(manifest_path.read_text())["layers"]
    return layer["digest"], store / DB_REPOSITORY / "blobs" / "sha256" / layer["digest"].split(":")[1]


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def metric(server: ServeProcess, line_start: str) -> float | None:
    status, body = server.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def synced_store(mirror: MirrorCli, upstream: RegistryProcess, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    result = mirror.run(["sync", "--store", str(store), "--from", f"{upstream.host}/aquasec"])
    assert result.returncode == 0, result.stderr
    return store


def test_no_sync_never_serves_a_corrupt_blob_and_reports_it(mirror: MirrorCli, synced_store: Path) -> None:
    digest, path = db_layer(synced_store)
    flip_a_byte(path)
    with ServeProcess(mirror, ["--store", str(synced_store), "--no-sync"]) as server:
        deadline = time.monotonic() + 30
        while server.get("/readyz")[0] != 503:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        status, body = server.get(f"/v2/{DB_REPOSITORY}/blobs/{digest}")
        assert status == 404 and json.loads(body)["errors"][0]["code"] == "BLOB_UNKNOWN"
        readiness = json.loads(server.get("/readyz")[1])
        lines = readiness["integrity"]
        [corrupt] = [line for line in lines if line.startswith("corrupt-blob: ")]
        assert digest.split(":")[1] in corrupt and not any(str(synced_store) in line for line in lines)
        assert {line.split(":")[0] for line in lines} == {"corrupt-blob", "incomplete-tag"}  # the DB's tag
        assert metric(server, 'trivy_mirror_store_problems{kind="corrupt-blob"}') == 1
        assert "integrity audit: corrupt-blob" in server.log()
    assert path.exists()  # without a sync loop nothing is deleted: the operator decides
    result = mirror.run(["status", "--store", str(synced_store)])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "damaged: corrupt-blob" in result.stdout
    listed = json.loads(mirror.run(["status", "--store", str(synced_store), "--json"]).stdout)["integrity"]
    assert {p["kind"] for p in listed["problems"]} == {"corrupt-blob", "incomplete-tag"}


def test_with_a_sync_loop_the_corrupt_blob_is_repaired_from_the_sources(
    mirror: MirrorCli, synced_store: Path, upstream: RegistryProcess,
) -> None:
    digest, path = db_layer(synced_store)
    good = path.read_bytes()
    flip_a_byte(path)
    args = ["--store", str(synced_store), "--from", f"{upstream.host}/aquasec", "--sync-every", "1h"]
    with ServeProcess(mirror, args) as server:
        deadline = time.monotonic() + 60
        while metric(server, 'trivy_mirror_store_problems_found_total{kind="corrupt-blob"}') != 1 \
                or server.get("/readyz")[0] != 200:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.3)
        status, body = server.get(f"/v2/{DB_REPOSITORY}/blobs/{digest}")
        assert status == 200 and hashlib.sha256(body).hexdigest() == digest.split(":")[1]
        assert metric(server, 'trivy_mirror_store_problems{kind="corrupt-blob"}') == 0
        assert "repairing it and syncing again" in server.log()
    assert path.read_bytes() == good
    assert mirror.run(["status", "--store", str(synced_store)]).returncode == 0
