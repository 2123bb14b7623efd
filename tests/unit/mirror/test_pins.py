"""Pins and rollback on a store: a pinned tag is not moved by sync (which reports the held candidate), rollback
serves the previous kept version and pins it, unpin lets the next sync publish; who, when and why are recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from support.trivy_assets import TRIVY_ARTIFACT_TYPE, Artifact, build_artifact, build_vuln_db, go_time, targz
from trivy_mirror.catalog.assets import CATALOG
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.catalog.state import candidate_of, pin_of, published_versions, with_candidate
from trivy_mirror.catalog.status import asset_statuses
from trivy_mirror.errors import NotFound, UsageError
from trivy_mirror.mirror.assetsync import AssetSync
from trivy_mirror.mirror.endpoints import RegistryPool, StoreDestination
from trivy_mirror.mirror.pins import AssetTag, approve, pin, rollback, unpin
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.oci.place import Place
from trivy_mirror.store import Layout, Store

DB = CATALOG[0]
NOW = datetime.now(UTC).replace(microsecond=0)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class _Sources:
    """A source registry that is a store layout."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def client(self, _registry: str) -> _Sources:
        return self

    def repository(self, name: str) -> Layout:
        return self.store.layout(name)


async def _upstream(store: Store, artifact: Artifact) -> None:
    layout = store.layout(DB.mirror_repository)
    for blob in (artifact.config, *artifact.layers):
        await layout.push_blob(Descriptor("application/octet-stream", Digest.of(blob), len(blob)), _one(blob))
    await layout.tag("2", ManifestBytes(artifact.manifest, mediatype.OCI_MANIFEST))


async def _served(store: Store) -> str:
    found = await store.layout(DB.mirror_repository).resolve("2")
    assert found is not None
    return str(found.digest)

def _mirror(tmp_path: Path, trust: TrustSettings = DEFAULT_TRUST) -> tuple[Store, Store, StoreDestination, AssetSync]:
    """An upstream store, the mirror's store, the mirror as a sync destination and an AssetSync between them."""
    upstream, mirror = Store(tmp_path / "up"), Store(tmp_path / "mirror")
    destination = StoreDestination(mirror)
    return upstream, mirror, destination, AssetSync([Place("up.invalid", "aquasec")],
                                                    cast(RegistryPool, _Sources(upstream)), destination, trust=trust)



async def test_pin_holds_sync_and_rollback_serves_the_previous_version(tmp_path: Path) -> None:
    upstream, mirror, destination, sync = _mirror(tmp_path)
    old, new, newer = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6, 1))

    await _upstream(upstream, old)
    assert (await sync.sync_tag(DB, DB.tags[0])).outcome == "updated"
    await _upstream(upstream, new)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    assert await _served(mirror) == new.digest

    done = await rollback(destination, AssetTag.parse("db"), "alice", "INC-7: bad build")
    assert done.digest == old.digest and done.previous == new.digest
    assert await _served(mirror) == old.digest
    state = mirror.layout(DB.mirror_repository).read_state()
    recorded = pin_of(state, "2")
    assert recorded is not None and (recorded.digest, recorded.by, recorded.reason) == (old.digest, "alice",
                                                                                         "INC-7: bad build")
    assert published_versions(state, "2")[0] == old.digest

    await _upstream(upstream, newer)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held, result.digest, result.failed) == ("held", "pinned", newer.digest, False)
    assert f"would publish {newer.digest}" in result.message
    assert await _served(mirror) == old.digest
    candidate = candidate_of(mirror.layout(DB.mirror_repository).read_state(), "2")
    assert candidate is not None and candidate.digest == newer.digest and candidate.held == "pinned"
    [row] = await asset_statuses(destination, [DB])
    assert row.digest == old.digest and row.held == "pinned" and row.pinned is not None
    assert row.to_json()["candidate"]["digest"] == newer.digest

    layout = mirror.layout(DB.mirror_repository)
    for hours, artifact in ((12, old), (6, new)):  # dated tags name their version and never move
        found = await layout.resolve(f"2-{(NOW - timedelta(hours=hours)):%Y%m%d.%H%M}")
        assert found is not None and str(found.digest) == artifact.digest

    await unpin(destination, AssetTag.parse("db"))
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert result.outcome == "updated" and await _served(mirror) == newer.digest
    [row] = await asset_statuses(destination, [DB])
    assert row.pinned is None and row.candidate is None and row.held is None


async def test_pin_moves_the_tag_to_a_kept_digest_only(tmp_path: Path) -> None:
    upstream, mirror, destination, sync = _mirror(tmp_path)
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    for artifact in (old, new):
        await _upstream(upstream, artifact)
        sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))

    done = await pin(destination, AssetTag.parse("db"), old.digest, "bob")
    assert await _served(mirror) == old.digest and done.previous == new.digest
    with pytest.raises(NotFound, match="is not in"):
        await pin(destination, AssetTag.parse("db"), "sha256:" + "0" * 64, "bob")
    with pytest.raises(UsageError, match="is not a digest"):
        await pin(destination, AssetTag.parse("db"), "latest", "bob")
    with pytest.raises(NotFound, match="no previous version"):
        await rollback(StoreDestination(Store(tmp_path / "empty")), AssetTag.parse("db"), "bob")


def test_asset_tag_parsing() -> None:
    assert AssetTag.parse("checks:1").reference == "aquasec/trivy-checks:1"
    assert AssetTag.parse("java-db").tag == "1"
    with pytest.raises(UsageError, match="unknown asset 'vex'"):
        AssetTag.parse("vex")
    with pytest.raises(UsageError, match="has no tag '3'"):
        AssetTag.parse("db:3")


async def test_a_hold_delays_a_new_version_until_it_has_been_the_candidate_long_enough(tmp_path: Path) -> None:
    trust = TrustSettings(holds={"": timedelta(hours=1)})
    upstream, mirror, _destination, sync = _mirror(tmp_path, trust)
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    await _upstream(upstream, old)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))  # an empty mirror is filled at once
    assert await _served(mirror) == old.digest

    await _upstream(upstream, new)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held, result.failed) == ("held", "hold", False)
    assert await _served(mirror) == old.digest
    layout = mirror.layout(DB.mirror_repository)
    first = candidate_of(layout.read_state(), "2")
    assert first is not None and first.digest == new.digest
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    again = candidate_of(layout.read_state(), "2")
    assert again is not None and again.first_seen == first.first_seen  # the clock runs on for the same digest

    state = layout.read_state()  # an hour later
    layout.write_state(with_candidate(state, "2", replace(first, first_seen=NOW - timedelta(hours=2))))
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "updated" and await _served(mirror) == new.digest


async def test_approve_lets_the_held_candidate_through(tmp_path: Path) -> None:
    upstream, mirror, destination, sync = _mirror(tmp_path, TrustSettings(holds={"db": timedelta(days=1)}))
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    await _upstream(upstream, old)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    with pytest.raises(UsageError, match="no held candidate"):
        approve(destination, AssetTag.parse("db"), None)
    await _upstream(upstream, new)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    assert approve(destination, AssetTag.parse("db"), None) == new.digest
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert result.outcome == "updated" and await _served(mirror) == new.digest
    state = mirror.layout(DB.mirror_repository).read_state()
    assert candidate_of(state, "2") is None and "approved" in state and not state["approved"]


class _TwoSources:
    """Two source registries, each a store of its own."""

    def __init__(self, stores: dict[str, Store]) -> None:
        self.stores = stores

    async def client(self, registry: str) -> _Sources:
        return _Sources(self.stores[registry])


async def test_quorum_keeps_the_served_version_until_the_sources_agree(tmp_path: Path) -> None:
    one, two, mirror = Store(tmp_path / "one"), Store(tmp_path / "two"), Store(tmp_path / "mirror")
    destination = StoreDestination(mirror)
    prefixes = [Place("one.invalid", "aquasec"), Place("two.invalid", "aquasec")]
    sync = AssetSync(prefixes, cast(RegistryPool, _TwoSources({"one.invalid": one, "two.invalid": two})),
                     destination, trust=TrustSettings(quorum=2))
    old, new, other = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6, 5))
    for store in (one, two):
        await _upstream(store, old)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    assert await _served(mirror) == old.digest

    await _upstream(one, new)  # two lags
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held, result.failed) == ("held", "quorum", True)
    assert f"one.invalid/aquasec/trivy-db:2: {new.digest} (disagrees)" in result.message
    assert f"two.invalid/aquasec/trivy-db:2: {old.digest} (lagging" in result.message
    [row] = await asset_statuses(destination, [DB])
    assert row.digest == old.digest and row.held == "quorum"
    assert row.to_json()["candidate"]["reports"] == {"one.invalid/aquasec/trivy-db:2": new.digest,
                                                     "two.invalid/aquasec/trivy-db:2": old.digest}

    await _upstream(two, other)  # both move, to different versions
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "held" and result.message.count("(disagrees)") == 2
    assert await _served(mirror) == old.digest

    await _upstream(two, new)
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "updated" and await _served(mirror) == new.digest
    assert result.reports == {"one.invalid/aquasec/trivy-db:2": new.digest,
                              "two.invalid/aquasec/trivy-db:2": new.digest}
    sync._record(DB, "2", result)
    [row] = await asset_statuses(destination, [DB])
    assert row.held is None and row.provenance is not None
    assert row.provenance["reports"] == result.reports and row.provenance["digest"] == new.digest
    assert row.provenance["decisions"][0] == "quorum: 2 of 2 sources serve it (--quorum 2)"
    assert row.provenance["first_seen"] < row.provenance["published_at"]  # held since the first sighting


async def test_a_db_that_shrinks_to_a_tenth_is_held_until_approved(tmp_path: Path) -> None:
    upstream, mirror, destination, sync = _mirror(tmp_path)
    big, small = build_vuln_db(updated_at=NOW - timedelta(hours=12), filler_bytes=400_000), \
        build_vuln_db(updated_at=NOW - timedelta(hours=6))
    await _upstream(upstream, big)
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    await _upstream(upstream, small)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held, result.failed) == ("held", "sanity", True)
    assert "below --max-shrink 0.5" in result.message and await _served(mirror) == big.digest
    assert approve(destination, AssetTag.parse("db"), None) == small.digest  # an operator decides it is right
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "updated" and await _served(mirror) == small.digest
    assert "size: not checked, approved by an operator" in result.decisions


async def test_a_db_that_shrinks_is_published_without_the_size_check(tmp_path: Path) -> None:
    upstream, _mirror_store, _destination, lenient = _mirror(tmp_path, TrustSettings(max_shrink=0))
    await _upstream(upstream, build_vuln_db(updated_at=NOW - timedelta(hours=12), filler_bytes=400_000))
    assert (await lenient.sync_tag(DB, DB.tags[0])).outcome == "updated"
    await _upstream(upstream, build_vuln_db(updated_at=NOW - timedelta(hours=6)))
    assert (await lenient.sync_tag(DB, DB.tags[0])).outcome == "updated"


async def test_a_db_layer_without_a_bbolt_file_is_held_until_approved(tmp_path: Path) -> None:
    upstream, mirror, destination, sync = _mirror(tmp_path, TrustSettings(max_shrink=0))
    good = build_vuln_db(updated_at=NOW - timedelta(hours=12))
    await _upstream(upstream, good)
    assert (await sync.sync_tag(DB, DB.tags[0])).outcome == "updated"
    fake = _fake_db(NOW - timedelta(hours=1))
    await _upstream(upstream, fake)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held, result.failed, result.digest) == ("held", "sanity", True, fake.digest)
    assert "archive check failed: trivy.db in the layer is not a bbolt database" in result.message
    assert await _served(mirror) == good.digest
    [row] = await asset_statuses(destination, [DB])
    assert row.held == "sanity" and row.to_json()["candidate"]["digest"] == fake.digest
    again = await sync.sync_tag(DB, DB.tags[0])  # the blobs are in the destination: checked there again
    assert (again.outcome, again.held) == ("held", "sanity")

    assert approve(destination, AssetTag.parse("db"), None) == fake.digest
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "updated" and await _served(mirror) == fake.digest
    assert "archive: not checked, approved by an operator" in result.decisions


async def test_an_approved_layer_without_metadata_is_still_refused(tmp_path: Path) -> None:
    """An approval waives the mirror's own judgement, not what Trivy needs: metadata.json with the schema."""
    upstream, _mirror_store, destination, sync = _mirror(tmp_path, TrustSettings(max_shrink=0))
    await _upstream(upstream, build_vuln_db(updated_at=NOW - timedelta(hours=12)))
    assert (await sync.sync_tag(DB, DB.tags[0])).outcome == "updated"
    layer = targz([("README", b"no database here")], mtime=NOW)
    bare = build_artifact([layer], layer_media_type=DB.layer_media_type, artifact_type=TRIVY_ARTIFACT_TYPE,
                          title="db.tar.gz", created=NOW)
    await _upstream(upstream, bare)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held) == ("held", "sanity") and "no metadata.json" in result.message
    approve(destination, AssetTag.parse("db"), bare.digest)
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "refused" and "no metadata.json" in result.message


async def test_without_the_archive_check_a_fake_db_is_published(tmp_path: Path) -> None:
    upstream, _mirror_store, _destination, unchecked = _mirror(tmp_path, TrustSettings(check_archive=False,
                                                                                            max_shrink=0))
    await _upstream(upstream, _fake_db(NOW - timedelta(hours=1)))
    assert (await unchecked.sync_tag(DB, DB.tags[0])).outcome == "updated"


def _fake_db(updated: datetime) -> Artifact:
    """A DB artifact whose trivy.db is not a bbolt file (a planted or truncated build)."""
    metadata = json.dumps({"Version": 2, "UpdatedAt": go_time(updated),
                           "NextUpdate": go_time(updated + timedelta(hours=24))}).encode()
    layer = targz([("trivy.db", b"\0" * 4096), ("metadata.json", metadata)], mtime=updated)
    return build_artifact([layer], layer_media_type=DB.layer_media_type, artifact_type=TRIVY_ARTIFACT_TYPE,
                          title="db.tar.gz", created=updated)


async def test_an_approval_during_a_soak_period_does_not_waive_the_archive_check(tmp_path: Path) -> None:
    soak = TrustSettings(holds={"db": timedelta(days=1)}, max_shrink=0)
    upstream, mirror, destination, sync = _mirror(tmp_path, soak)
    await _upstream(upstream, build_vuln_db(updated_at=NOW - timedelta(hours=12)))
    sync._record(DB, "2", await sync.sync_tag(DB, DB.tags[0]))
    fake = _fake_db(NOW - timedelta(hours=1))
    await _upstream(upstream, fake)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held) == ("held", "hold")  # not downloaded yet: the archive is unchecked
    approve(destination, AssetTag.parse("db"), None)
    result = await sync.sync_tag(DB, DB.tags[0])
    sync._record(DB, "2", result)
    assert (result.outcome, result.held) == ("held", "sanity") and "archive check failed" in result.message
    approve(destination, AssetTag.parse("db"), None)  # a second, informed approval
    result = await sync.sync_tag(DB, DB.tags[0])
    assert result.outcome == "updated" and await _served(mirror) == fake.digest
    assert "archive: not checked, approved by an operator" in result.decisions
