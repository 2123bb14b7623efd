"""The trust controls as a library, in-process against a real registry: ``approve`` publishes a held candidate,
``pin`` keeps a version over a newer upstream, ``unpin`` and ``rollback``, ``keygen`` writes a key pair."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import trivy_mirror
from support.registry import RegistryFactory, push_artifact
from support.trivy_assets import build_vuln_db
from trivy_mirror.signing import PublicKey

pytestmark = pytest.mark.e2e

DB_REPOSITORY = "aquasec/trivy-db"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def served(store: Path) -> str | None:
    [row] = trivy_mirror.status(store=store, assets=["db"]).assets
    return row.digest


def test_approve_pin_unpin_and_rollback_in_process(registry: RegistryFactory, tmp_path: Path) -> None:
    upstream = registry()
    dbs = [build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6, 1)]
    store, sources = tmp_path / "store", [f"{upstream.host}/aquasec"]
    hold = trivy_mirror.TrustSettings(holds={"db": timedelta(hours=1)})
    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[0])
    assert trivy_mirror.sync(store=store, sources=sources, assets=["db"], trust=hold).ok

    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[1])
    assert trivy_mirror.sync(store=store, sources=sources, assets=["db"], trust=hold).results[0].held == "hold"
    approved = trivy_mirror.approve("db", store=store, sources=sources)
    assert isinstance(approved, trivy_mirror.ApproveResult)
    assert (approved.approved, approved.published, approved.delivered) == (dbs[1].digest, True, None)
    assert approved.message == f"aquasec/trivy-db:2: approved {dbs[1].digest} and published it"
    assert served(store) == dbs[1].digest
    with pytest.raises(trivy_mirror.UsageError, match="no held candidate"):
        trivy_mirror.approve("db", store=store, sources=sources)

    pinned = trivy_mirror.pin("db", dbs[0].digest, store=store, by="alice", reason="INC-1")
    assert isinstance(pinned, trivy_mirror.PinResult)
    assert (pinned.digest, pinned.previous) == (dbs[0].digest, dbs[1].digest)
    assert pinned.pin is not None and (pinned.pin.by, pinned.pin.reason) == ("alice", "INC-1")
    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[2])
    [kept] = trivy_mirror.sync(store=store, sources=sources, assets=["db"]).results
    assert (kept.outcome, kept.held, kept.digest) == ("held", "pinned", dbs[2].digest)
    assert served(store) == dbs[0].digest

    unpinned = trivy_mirror.unpin("db", store=store)
    assert (unpinned.digest, unpinned.pin) == (dbs[0].digest, None)
    with pytest.raises(trivy_mirror.UsageError, match="not pinned"):
        trivy_mirror.unpin("db", store=store)
    assert trivy_mirror.sync(store=store, sources=sources, assets=["db"]).ok
    assert served(store) == dbs[2].digest

    rolled = trivy_mirror.rollback("db", store=store, by="bob")
    assert (rolled.previous, rolled.digest) == (dbs[2].digest, dbs[0].digest)  # the tag's value before dbs[2]
    assert rolled.pin is not None and rolled.pin.by == "bob" and rolled.pin.reason == f"rollback from {dbs[2].digest}"
    assert served(store) == rolled.digest

    with pytest.raises(trivy_mirror.NotFound):
        trivy_mirror.pin("db", "sha256:" + "0" * 64, store=store)
    with pytest.raises(trivy_mirror.UsageError, match="static tree"):
        trivy_mirror.pin("db", dbs[0].digest, to=f"static:{tmp_path / 'tree'}")
    with pytest.raises(trivy_mirror.UsageError, match="unknown asset"):
        trivy_mirror.rollback("nope", store=store)


def test_keygen_writes_a_key_pair(tmp_path: Path) -> None:
    pair = trivy_mirror.keygen(tmp_path / "signing.key")
    assert isinstance(pair, trivy_mirror.KeyPair)
    assert (pair.private, pair.public) == (tmp_path / "signing.key", tmp_path / "signing.key.pub")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert PublicKey.load(pair.public).keyid == pair.keyid
    with pytest.raises(trivy_mirror.UsageError, match="not overwriting"):
        trivy_mirror.keygen(pair.private)
