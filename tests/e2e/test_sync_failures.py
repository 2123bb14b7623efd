"""A failed sync is visible: ``status`` (exit 4), ``/readyz`` (200 but saying so) and ``/metrics`` all report it,
for a dead source and for a destination that refuses the credentials, and the next good sync clears it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, RegistryProcess, free_port, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import AssetSet

pytestmark = pytest.mark.e2e

EXIT_LAST_SYNC_FAILED = 4


def db_row(mirror: MirrorCli, destination: list[str], expect: int) -> dict[str, object]:
    result = mirror.run(["status", *destination, "--assets", "db", "--json"])
    assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    [row] = json.loads(result.stdout)["assets"]
    assert isinstance(row, dict)
    return row


def test_sync_from_a_dead_source_shows_in_status_readyz_and_metrics(
    mirror: MirrorCli, upstream: RegistryProcess, tmp_path: Path,
) -> None:
    store = ["--store", str(tmp_path / "store")]
    good = ["--from", f"{upstream.host}/aquasec"]
    assert mirror.run(["sync", *store, *good, "--assets", "db"]).returncode == 0
    assert db_row(mirror, store, 0)["last_result"] == "ok"

    dead = mirror.run(["sync", *store, "--from", f"127.0.0.1:{free_port()}/aquasec", "--assets", "db"])
    assert dead.returncode == 1
    row = db_row(mirror, store, EXIT_LAST_SYNC_FAILED)
    assert (row["state"], row["last_result"]) == ("fresh", "failed")
    assert "cannot reach 127.0.0.1" in str(row["last_message"])
    table = mirror.run(["status", *store, "--assets", "db"])
    assert table.returncode == EXIT_LAST_SYNC_FAILED and "failed" in table.stdout

    with ServeProcess(mirror, [*store, "--no-sync", "--assets", "db"]) as server:
        status, body = server.get("/readyz")
        readiness = json.loads(body)
        assert status == 200 and readiness["ready"] is True  # what is served is still fresh
        [failure] = readiness["failures"]
        assert failure.startswith("db: last sync of aquasec/trivy-db:2 failed at ")
        metrics = server.get("/metrics")[1].decode()
        assert re.search(r'trivy_mirror_asset_last_attempt_failed\{asset="db",reference="aquasec/trivy-db:2"\} 1\.0',
                         metrics), metrics

    assert mirror.run(["sync", *store, *good, "--assets", "db"]).returncode == 0
    assert db_row(mirror, store, 0)["last_result"] == "ok"


def test_destination_refusing_the_credentials_shows_in_status(
    mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory,
) -> None:
    destination = registry(auth=("robot", "secret"))
    source = ["--from", f"{upstream.host}/aquasec", "--assets", "db"]
    to = ["--to", destination.host, "--dest-creds", "robot:secret"]
    assert mirror.run(["sync", *to, *source]).returncode == 0

    refused = mirror.run(["sync", "--to", destination.host, "--dest-creds", "robot:wrong", *source])
    assert refused.returncode == 1
    row = db_row(mirror, to, EXIT_LAST_SYNC_FAILED)
    assert (row["state"], row["last_result"]) == ("fresh", "failed")
    assert "401" in str(row["last_message"]) or "auth" in str(row["last_message"]).lower(), row


def test_a_destination_refusing_the_credentials_is_blamed_once_not_per_source(
    mirror: MirrorCli, upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet,
) -> None:
    """A 401 from ``--to`` says ``cannot write to DEST``; the next ``--from`` source is not tried for it."""
    destination = registry(auth=("robot", "secret"))
    second = registry()
    push_artifact(second.host, "aquasec/trivy-db", "2", assets.db)
    result = mirror.run(["sync", "--to", destination.host, "--dest-creds", "robot:wrong", "--from",
                         f"{upstream.host}/aquasec", "--from", f"{second.host}/aquasec", "--assets", "db", "--json"])
    assert result.returncode == 1, result.stderr
    [row] = json.loads(result.stdout)["results"]
    assert row["outcome"] == "failed"
    assert row["message"].startswith(f"cannot write to {destination.host}/aquasec/trivy-db: "), row["message"]
    assert "401" in row["message"] or "auth" in row["message"].lower(), row["message"]
    assert "no source could be used" not in result.stdout + result.stderr
    assert ("GET", "/v2/aquasec/trivy-db/manifests/2") not in second.requests_log()
