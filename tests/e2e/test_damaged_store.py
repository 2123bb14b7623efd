"""A damaged store: one unreadable ``index.json`` shows as its own broken row; ``status`` and ``/readyz`` still
report every other asset, with one line and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess
from support.serve import ServeProcess
from support.trivy_assets import JAVA_DB_REPOSITORY

pytestmark = pytest.mark.e2e


def test_one_bad_index_does_not_hide_the_other_assets(
    mirror: MirrorCli, upstream: RegistryProcess, tmp_path: Path,
) -> None:
    store = ["--store", str(tmp_path / "store")]
    assert mirror.run(["sync", *store, "--from", f"{upstream.host}/aquasec"]).returncode == 0
    (tmp_path / "store" / JAVA_DB_REPOSITORY / "index.json").write_text("{not json")

    result = mirror.run(["status", *store, "--json"])
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    rows = {row["asset"]: row for row in json.loads(result.stdout)["assets"]}
    assert set(rows) == {"db", "java-db", "checks"}
    assert rows["java-db"]["state"] == "missing" and "index.json" in rows["java-db"]["error"]
    assert rows["db"]["state"] == rows["checks"]["state"] == "fresh" and rows["db"]["error"] is None

    table = mirror.run(["status", *store])
    assert table.returncode == 3 and "Traceback" not in table.stderr
    assert "damaged" in table.stdout and "trivy-db" in table.stdout and "trivy-checks" in table.stdout
    assert "java-db: aquasec/trivy-java-db:1: " in table.stdout and "not a valid OCI image index" in table.stdout

    with ServeProcess(mirror, [*store, "--no-sync"]) as server:
        for _ in range(3):
            status, body = server.get("/readyz")
            readiness = json.loads(body)
            assert status == 503 and len(readiness["assets"]) == 4
            [reason] = readiness["reasons"]
            assert reason.startswith("java-db: aquasec/trivy-java-db:1: ") and "index.json" in reason
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("case", ["missing", "empty"])
def test_no_sync_on_a_store_that_holds_nothing_says_so(case: str, mirror: MirrorCli, tmp_path: Path) -> None:
    store = tmp_path / "stroe"  # the typo
    if case == "empty":
        store.mkdir()
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as server:
        status, body = server.get("/readyz")
        readiness = json.loads(body)
        assert status == 503 and len(readiness["reasons"]) == 3
        assert all(str(store) in reason and "--no-sync" in reason for reason in readiness["reasons"])
        if case == "missing":
            assert "does not exist" in readiness["reasons"][0]
        warnings = [line for line in server.log().splitlines() if "WARNING" in line]
        assert len(warnings) == 1 and str(store) in warnings[0] and "404" in warnings[0], server.log()
    assert store.exists() == (case == "empty")
