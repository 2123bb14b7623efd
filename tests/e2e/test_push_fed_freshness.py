"""A push-fed mirror (no sync state for what it serves): ``/readyz``, ``/metrics`` and ``status`` agree on
freshness (issue 12, item 6). A DB whose NextUpdate was in 2020 is stale everywhere; a current one fresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, Artifact, build_vuln_db, sha256_digest
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store

pytestmark = pytest.mark.e2e


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def pushed(store: Path, artifact: Artifact) -> None:
    """Store ``artifact`` as ``aquasec/trivy-db:2`` the way a push does: blobs, manifest, no sync state."""
    layout = Store(store).layout(DB_REPOSITORY)

    async def write() -> None:
        for digest, blob in artifact.blobs.items():
            await layout.push_blob(Descriptor("application/octet-stream", Digest.parse(digest), len(blob)),
                                   _chunks(blob))
        await layout.tag("2", ManifestBytes(artifact.manifest, mediatype.OCI_MANIFEST))

    asyncio.run(write())
    assert not (layout.path / "trivy-mirror.json").exists()


def db_state(assets: list[dict[str, object]]) -> object:
    return next(row["state"] for row in assets if row["asset"] == "db")


@pytest.mark.parametrize(("next_update", "expected"), [(datetime(2020, 1, 2, tzinfo=UTC), "stale"), (None, "fresh")])
def test_readyz_metrics_and_status_agree_on_a_pushed_db(tmp_path: Path, next_update: datetime | None,
                                                        expected: str) -> None:
    store = tmp_path / "store"
    updated = datetime(2020, 1, 1, tzinfo=UTC) if next_update else None
    artifact = build_vuln_db(updated_at=updated, next_update=next_update)
    pushed(store, artifact)
    cli = MirrorCli(tmp_path / "home")

    status = cli.run(["status", "--store", str(store), "--assets", "db", "--json"])
    rows = json.loads(status.stdout)["assets"]
    assert db_state(rows) == expected
    assert rows[0]["digest"] == sha256_digest(artifact.manifest)

    with ServeProcess(cli, ["--store", str(store), "--no-sync", "--assets", "db"]) as serve:
        code, body = serve.get("/readyz")
        _, metrics = serve.get("/metrics")
    readyz = json.loads(body)
    assert db_state(readyz["assets"]) == expected
    assert code == (200 if expected == "fresh" else 503)
    assert f'trivy_mirror_asset_ready{{asset="db"}} {1.0 if expected == "fresh" else 0.0}' in metrics.decode()
    if next_update is not None:  # the pushed layer's metadata.json, read as status reads it
        assert f'trivy_mirror_asset_next_update_seconds{{asset="db"}} {next_update.timestamp():.7e}' \
            in metrics.decode()
