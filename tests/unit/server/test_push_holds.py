"""Pushes into a catalog tag meet sync's holds (serve's trust settings, the store's state): a held push is
answered ``403 DENIED`` with the reason and recorded as the held candidate; ``approve`` lets the next push of it
through; a published push is recorded with its provenance (``push by USER``) and, with ``--sign``, gets the signed
provenance referrer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from support.trivy_assets import TRIVY_ARTIFACT_TYPE, Artifact, build_artifact, build_vuln_db, go_time, targz
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.catalog.policy import TrustSettings
from trivy_mirror.catalog.state import candidate_of, provenance_of
from trivy_mirror.mirror.endpoints import StoreDestination
from trivy_mirror.mirror.pins import AssetTag, approve, delivered_candidate, pin
from trivy_mirror.server.app import CENSUS_KEY
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.signing import generate_key
from trivy_mirror.store import Store

from .conftest import PASSWORD, PULL_PASSWORD, PULL_USER, USER, ClientFactory
from .helpers import basic, error_codes
from .test_push import push_trivy

Client = TestClient[web.Request, web.Application]
DB = CATALOG[0]
NOW = datetime.now(UTC).replace(microsecond=0)


def _not_a_db(updated: datetime) -> Artifact:
    metadata = json.dumps({"Version": 2, "UpdatedAt": go_time(updated),
                           "NextUpdate": go_time(updated + timedelta(hours=24))}).encode()
    layer = targz([("trivy.db", b"\0" * 4096), ("metadata.json", metadata)], mtime=updated)
    return build_artifact([layer], layer_media_type=DB.layer_media_type, artifact_type=TRIVY_ARTIFACT_TYPE,
                          title="db.tar.gz", created=updated)


async def _client(make_client: ClientFactory, htpasswd: Path, tmp_path: Path, trust: TrustSettings) -> Client:
    return await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}),
                                            upload_dir=tmp_path / "uploads", trust=trust))


def _served(store: Store) -> str:
    return str(store.layout(DB.mirror_repository).tags()["2"].digest)


async def test_a_held_push_is_denied_recorded_and_approve_lets_it_through(
        make_client: ClientFactory, htpasswd: Path, store: Store, tmp_path: Path) -> None:
    client = await _client(make_client, htpasswd, tmp_path, TrustSettings(max_shrink=0))
    good, odd = build_vuln_db(updated_at=NOW - timedelta(hours=6)), _not_a_db(NOW - timedelta(hours=1))
    await push_trivy(client, DB.mirror_repository, "2", good)
    body = await push_trivy(client, DB.mirror_repository, "2", odd, status=403)
    assert error_codes(body) == ["DENIED"]
    assert b"held (sanity): archive check failed: trivy.db in the layer is not a bbolt database" in body
    assert _served(store) == good.digest
    state = store.layout(DB.mirror_repository).read_state()
    candidate = candidate_of(state, "2")
    assert candidate is not None and (candidate.digest, candidate.held, candidate.source) == (
        odd.digest, "sanity", f"push by {USER}")

    destination = StoreDestination(store)
    assert approve(destination, AssetTag.parse("db"), None) == odd.digest
    assert delivered_candidate(destination, AssetTag.parse("db"), odd.digest) == f"push by {USER}"
    await push_trivy(client, DB.mirror_repository, "2", odd)
    assert _served(store) == odd.digest
    state = store.layout(DB.mirror_repository).read_state()
    provenance = provenance_of(state, "2", odd.digest)
    assert provenance is not None and provenance["source"] == f"push by {USER}"
    assert provenance["decisions"][0] == f"push: by {USER}"
    assert "archive: not checked, approved by an operator" in provenance["decisions"]
    assert candidate_of(state, "2") is None


async def test_a_pin_and_a_soak_period_hold_pushes(make_client: ClientFactory, htpasswd: Path, store: Store,
                                                   tmp_path: Path) -> None:
    client = await _client(make_client, htpasswd, tmp_path, TrustSettings(holds={"db": timedelta(hours=1)}))
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    await push_trivy(client, DB.mirror_repository, "2", old)  # an empty mirror is filled at once
    body = await push_trivy(client, DB.mirror_repository, "2", new, status=403)
    assert b"held (hold)" in body and _served(store) == old.digest
    await pin(StoreDestination(store), AssetTag.parse("db"), old.digest, "alice", "INC-9")
    body = await push_trivy(client, DB.mirror_repository, "2", new, status=403)
    assert b"held (pinned)" in body and b"INC-9" in body and _served(store) == old.digest


async def test_a_signed_provenance_referrer_is_attached_to_a_pushed_version(
        make_client: ClientFactory, htpasswd: Path, store: Store, tmp_path: Path) -> None:
    key = tmp_path / "provenance.key"
    generate_key(key)
    client = await _client(make_client, htpasswd, tmp_path, TrustSettings(sign_key=key))
    db = build_vuln_db(updated_at=NOW - timedelta(hours=1))
    await push_trivy(client, DB.mirror_repository, "2", db)
    response = await client.get(f"/v2/{DB.mirror_repository}/referrers/{db.digest}",
                                params={"artifactType": "application/vnd.dsse.envelope.v1+json"},
                                headers=basic(USER, PASSWORD))
    assert response.status == 200
    [referrer] = (await response.json())["manifests"]
    assert referrer["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    provenance = provenance_of(store.layout(DB.mirror_repository).read_state(), "2", db.digest)
    assert provenance is not None and provenance["source"] == f"push by {USER}"


async def test_the_census_counts_a_held_push_as_held_not_denied(
        make_client: ClientFactory, htpasswd: Path, store: Store, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A hold is the trust policy's decision, not a credentials problem: the census says ``held`` with the hold's
    first words; a push by a pull-only user stays ``denied``."""
    client = await _client(make_client, htpasswd, tmp_path, TrustSettings(max_shrink=0))
    await push_trivy(client, DB.mirror_repository, "2", build_vuln_db(updated_at=NOW - timedelta(hours=6)))
    caplog.set_level(logging.INFO, logger="trivy_mirror.server.census")
    await push_trivy(client, DB.mirror_repository, "2", _not_a_db(NOW - timedelta(hours=1)), status=403)
    other = build_vuln_db(updated_at=NOW - timedelta(hours=2))
    response = await client.put(f"/v2/{DB.mirror_repository}/manifests/2", data=other.manifest,
                                headers={**basic(PULL_USER, PULL_PASSWORD), "Content-Type": other.media_type})
    assert response.status == 403 and error_codes(await response.read()) == ["DENIED"]
    census = client.app[CENSUS_KEY].to_json()
    [record] = census["clients"]
    assert record["outcomes"]["held"] == 1 and record["outcomes"]["denied"] == 1
    problems = {p["outcome"]: p for p in record["problems"]}
    assert problems["held"]["resource"] == f"{DB.mirror_repository}:2"
    assert problems["held"]["detail"].startswith("db: held (sanity): archive check failed")
    assert len(problems["held"]["detail"]) <= 80 and "detail" not in problems["denied"]
    [held, denied] = [r.getMessage() for r in caplog.records if r.name == "trivy_mirror.server.census"]
    assert "the trust policy held it" in held and "archive check failed" in held
    assert "check its credentials" not in held and "check its credentials" in denied
    page = await (await client.get("/", headers=basic(USER, PASSWORD))).text()
    assert f"<code>{DB.mirror_repository}:2</code> held &times;1 (db: held (sanity): archive check failed" in page
