"""Syncs of a changing upstream, back to back, into a server under manifest and blob load (issue 18).

``serve --sync-every 1s`` syncs a new DB version every few seconds, prunes to two versions and collects garbage,
while clients GET the tag and download the layer it names. Every answer for the tag must be a 200 (a snapshot
is one consistent read of the index), the server must never log a manifest as missing or damaged, and every
layer a client resolved must still download afterwards: the GC grace period counts from the moment a blob left
the index, not from its file's age (the store's first version is made to look a day old).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, push_artifact
from support.serve import ServeProcess
from support.sync_load import SyncLoad, age_store
from support.trivy_assets import DB_REPOSITORY, build_vuln_db

pytestmark = pytest.mark.resilience

VERSIONS = 5
"""New upstream versions published during the run: with --keep 2 the first ones are pruned and collected."""


def test_syncs_under_load_serve_every_request_and_keep_resolved_blobs(tmp_path: Path,
                                                                    registry: RegistryFactory) -> None:
    upstream = registry()
    push_artifact(upstream.host, DB_REPOSITORY, "2", build_vuln_db(updated_at=datetime.now(UTC)))
    cli = MirrorCli(tmp_path / "home")
    store = tmp_path / "store"
    result = cli.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    assert result.returncode == 0, result.stderr
    age_store(store, 86400)

    serve = ServeProcess(cli, ["--store", str(store), "--from", f"{upstream.host}/aquasec", "--assets", "db",
                               "--sync-every", "1s", "--keep", "2"])
    with serve:
        load = SyncLoad(serve.host, upstream, manifest_clients=3, blob_clients=2, publish_every=2.5).start()
        deadline = time.monotonic() + 90
        while load.figures.published < VERSIONS and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(4)  # the last version is synced, pruned and collected under load too
        figures = load.stop()
        late = {digest: load.blob_status(digest) for digest in figures.resolved}
        log = serve.log()

    assert figures.published >= VERSIONS, figures.errors
    assert figures.errors == [], figures.errors
    assert set(figures.statuses) == {200}, figures.statuses
    assert len(figures.resolved) >= 3, f"the clients saw too few versions: {figures.resolved}"
    assert figures.blob_downloads > 0 and figures.manifest_requests > 100
    assert late == dict.fromkeys(figures.resolved, 200), "a resolved layer vanished within the grace period"
    assert "missing or damaged" not in log
