"""The trust controls end to end, with real registries and a real Trivy: ``--quorum`` keeps the served DB while
two sources disagree (Trivy still scans with it), ``pin`` keeps a version over a newer upstream, ``rollback``
serves the previous one, dated tags let Trivy pin a version, ``--hold`` delays a new version and ``approve``
publishes it at once; ``status``, ``/readyz`` and ``/metrics`` say what is held and why."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.dsse import verified_statement
from support.registry import RegistryFactory, push_artifact
from support.serve import ServeProcess
from support.trivy import db_served
from support.trivy_assets import (
    DB_LAYER,
    PIP_CVE,
    TRIVY_ARTIFACT_TYPE,
    Artifact,
    AssetSet,
    build_artifact,
    build_vuln_db,
    go_time,
    targz,
)

pytestmark = pytest.mark.e2e

DB_REPOSITORY = "aquasec/trivy-db"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def db_row(mirror: MirrorCli, destination: list[str]) -> dict[str, object]:
    result = mirror.run(["status", *destination, "--assets", "db", "--json"])
    assert result.returncode in (0, 4), f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    [row] = json.loads(result.stdout)["assets"]
    assert isinstance(row, dict)
    return row


def scanned_db(tmp_path: Path, name: str, repository: str, assets: AssetSet) -> str:
    """Which DB version the mirror served at ``repository`` (its UpdatedAt to the minute), the planted finding
    found with it."""
    return db_served(tmp_path / name, repository, assets.targets.requirements_dir, PIP_CVE)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def test_quorum_pin_rollback_and_dated_tags_on_a_registry(mirror: MirrorCli, registry: RegistryFactory,
                                                          assets: AssetSet, tmp_path: Path) -> None:
    one, two, destination = registry(), registry(), registry()
    times = {name: NOW - timedelta(hours=h) for name, h in (("old", 12), ("new", 6), ("other", 5), ("newer", 1))}
    dbs = {name: build_vuln_db(updated_at=moment) for name, moment in times.items()}
    for source in (one, two):
        push_artifact(source.host, DB_REPOSITORY, "2", dbs["old"])
    to = ["--to", f"{destination.host}/m"]
    sync = ["sync", *to, "--from", f"{one.host}/aquasec", "--from", f"{two.host}/aquasec", "--assets", "db",
            "--quorum", "2"]
    served = f"{destination.host}/m/{DB_REPOSITORY}:2"
    assert mirror.run(sync).returncode == 0

    push_artifact(one.host, DB_REPOSITORY, "2", dbs["new"])
    push_artifact(two.host, DB_REPOSITORY, "2", dbs["other"])
    held = mirror.run(sync)
    assert held.returncode == 1
    [line] = held.stderr.strip().splitlines()
    assert "held (quorum)" in line and dbs["new"].digest in line and dbs["other"].digest in line, line
    row = db_row(mirror, to)
    assert (row["digest"], row["held"]) == (dbs["old"].digest, "quorum")
    candidate = row["candidate"]
    assert isinstance(candidate, dict)
    assert set(candidate["reports"].values()) == {dbs["new"].digest, dbs["other"].digest}
    assert scanned_db(tmp_path, "held", served, assets) == stamp(times["old"])

    push_artifact(two.host, DB_REPOSITORY, "2", dbs["new"])  # both agree
    assert mirror.run(sync).returncode == 0
    assert db_row(mirror, to)["digest"] == dbs["new"].digest
    assert scanned_db(tmp_path, "agreed", served, assets) == stamp(times["new"])

    # Dated tags: a scanner pins the old version by date, while the tag serves the new one.
    dated = f"{destination.host}/m/{DB_REPOSITORY}:2-{times['old']:%Y%m%d.%H%M}"
    assert scanned_db(tmp_path, "dated", dated, assets) == stamp(times["old"])

    pinned = mirror.run(["pin", "db", dbs["old"].digest, *to, "--by", "alice", "--reason", "INC-1: bad build"])
    assert pinned.returncode == 0, pinned.stderr
    for source in (one, two):
        push_artifact(source.host, DB_REPOSITORY, "2", dbs["newer"])
    kept = mirror.json(sync)  # a pin is a decision: exit 0, the candidate reported
    [result] = kept["results"]
    assert (result["outcome"], result["held"], result["digest"]) == ("held", "pinned", dbs["newer"].digest)
    row = db_row(mirror, to)
    assert row["digest"] == dbs["old"].digest
    assert isinstance(row["pinned"], dict) and (row["pinned"]["by"], row["pinned"]["reason"]) == ("alice",
                                                                                                  "INC-1: bad build")
    assert scanned_db(tmp_path, "pinned", served, assets) == stamp(times["old"])

    assert mirror.run(["unpin", "db", *to]).returncode == 0
    assert mirror.run(sync).returncode == 0
    assert db_row(mirror, to)["digest"] == dbs["newer"].digest
    rolled = mirror.run(["rollback", "db", *to, "--by", "bob"])
    assert rolled.returncode == 0, rolled.stderr
    row = db_row(mirror, to)
    assert row["digest"] == dbs["old"].digest and isinstance(row["pinned"], dict) and row["pinned"]["by"] == "bob"
    assert scanned_db(tmp_path, "rolled-back", served, assets) == stamp(times["old"])


def test_hold_delays_a_new_version_and_approve_publishes_it(mirror: MirrorCli, registry: RegistryFactory,
                                                          tmp_path: Path) -> None:
    upstream = registry()
    dbs = [build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6, 1)]
    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[0])
    store = ["--store", str(tmp_path / "store")]
    source = ["--from", f"{upstream.host}/aquasec", "--assets", "db"]
    assert mirror.run(["sync", *store, *source, "--hold", "db=1h"]).returncode == 0  # an empty mirror fills now

    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[1])
    held = mirror.json(["sync", *store, *source, "--hold", "db=1h"])
    assert held["results"][0]["held"] == "hold"
    row = db_row(mirror, store)
    assert (row["digest"], row["held"]) == (dbs[0].digest, "hold")
    with ServeProcess(mirror, [*store, "--no-sync", "--assets", "db"]) as server:
        status, body = server.get("/readyz")
        readiness = json.loads(body)
        assert status == 200 and readiness["ready"] is True
        assert [(h["asset"], h["reason"], h["candidate"]["digest"]) for h in readiness["held"]] == [
            ("db", "hold", dbs[1].digest)]
        metrics = server.get("/metrics")[1].decode()
        assert re.search(r'trivy_mirror_asset_held\{asset="db",reason="hold",reference="aquasec/trivy-db:2"\} 1\.0',
                         metrics), metrics

    approved = mirror.run(["approve", "db", *store, "--from", f"{upstream.host}/aquasec"])
    assert approved.returncode == 0, approved.stderr
    row = db_row(mirror, store)
    assert row["digest"] == dbs[1].digest and row["held"] is None

    push_artifact(upstream.host, DB_REPOSITORY, "2", dbs[2])  # a hold of a few seconds
    assert mirror.json(["sync", *store, *source, "--hold", "3s"])["results"][0]["outcome"] == "held"
    assert db_row(mirror, store)["digest"] == dbs[1].digest
    time.sleep(3.5)
    assert mirror.json(["sync", *store, *source, "--hold", "3s"])["results"][0]["outcome"] == "updated"
    assert db_row(mirror, store)["digest"] == dbs[2].digest


def test_signed_provenance_is_a_referrer_serve_lists(mirror: MirrorCli, registry: RegistryFactory,
                                                     tmp_path: Path) -> None:
    """``sync --sign KEY``: the published version gets an in-toto provenance statement in a DSSE envelope as an
    OCI referrer; serve's referrers API lists it and securesystemslib verifies it with the public key."""
    upstream = registry()
    db = build_vuln_db(updated_at=NOW - timedelta(hours=3))
    push_artifact(upstream.host, DB_REPOSITORY, "2", db)
    key = tmp_path / "provenance.key"
    assert mirror.run(["keygen", str(key)]).returncode == 0
    store = ["--store", str(tmp_path / "store")]
    synced = mirror.json(["sync", *store, "--from", f"{upstream.host}/aquasec", "--assets", "db", "--sign", str(key)])
    assert "provenance" in synced["results"][0]["message"]
    with ServeProcess(mirror, [*store, "--no-sync", "--assets", "db"]) as server:
        status, body = server.get(f"/v2/{DB_REPOSITORY}/referrers/{db.digest}")
        assert status == 200, body
        [referrer] = json.loads(body)["manifests"]
        assert referrer["artifactType"] == "application/vnd.dsse.envelope.v1+json"
        status, manifest = server.get(f"/v2/{DB_REPOSITORY}/manifests/{referrer['digest']}")
        assert status == 200
        [layer] = json.loads(manifest)["layers"]
        status, document = server.get(f"/v2/{DB_REPOSITORY}/blobs/{layer['digest']}")
        assert status == 200
    statement = verified_statement(document, tmp_path / "provenance.key.pub")
    assert statement["subject"] == [{"name": f"{DB_REPOSITORY}:2", "digest": {"sha256": db.digest.split(":")[1]}}]
    assert statement["predicateType"] == "urn:trivy-mirror:provenance:v1"
    assert statement["predicate"]["digest"] == db.digest
    assert statement["predicate"]["source"] == f"{upstream.host}/{DB_REPOSITORY}:2"


@dataclass(frozen=True)
class AirGap:
    """Both sides of an air gap, from one upstream: a store on each side and the options that sync them."""

    isolated: list[str]
    connected: list[str]
    source: list[str]
    """``--from`` the upstream, the DB only."""


def air_gap(mirror: MirrorCli, upstream: str, tmp_path: Path, served: Artifact, bundled: Artifact,
            bundle: Path) -> AirGap:
    """The isolated store serving ``served``, and ``bundle`` exported from the connected store that synced
    ``bundled`` after it (the upstream at ``upstream`` serves ``bundled`` from then on)."""
    sides = AirGap(["--store", str(tmp_path / "isolated")], ["--store", str(tmp_path / "connected")],
                   ["--from", f"{upstream}/aquasec", "--assets", "db"])
    push_artifact(upstream, DB_REPOSITORY, "2", served)
    assert mirror.run(["sync", *sides.isolated, *sides.source]).returncode == 0
    push_artifact(upstream, DB_REPOSITORY, "2", bundled)
    assert mirror.run(["sync", *sides.connected, *sides.source]).returncode == 0
    assert mirror.run(["export", str(bundle), *sides.connected, "--assets", "db"]).returncode == 0
    return sides


def test_import_does_not_move_a_pinned_tag_and_adds_the_dated_tag(mirror: MirrorCli, registry: RegistryFactory,
                                                                  tmp_path: Path) -> None:
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    bundle = tmp_path / "bundle.tar"
    isolated = air_gap(mirror, registry().host, tmp_path, old, new, bundle).isolated

    assert mirror.run(["pin", "db", old.digest, *isolated, "--reason", "frozen"]).returncode == 0
    line = assert_one_error_line(mirror.run(["import", str(bundle), *isolated]))
    assert "held (pinned)" in line and "unpin db" in line, line
    assert db_row(mirror, isolated)["digest"] == old.digest

    assert mirror.run(["unpin", "db", *isolated]).returncode == 0
    assert mirror.run(["import", str(bundle), *isolated]).returncode == 0
    index = json.loads((tmp_path / "isolated" / DB_REPOSITORY / "index.json").read_text())
    tags = {m["annotations"].get("org.opencontainers.image.ref.name"): m["digest"] for m in index["manifests"]}
    assert tags["2"] == new.digest
    assert tags[f"2-{NOW - timedelta(hours=6):%Y%m%d.%H%M}"] == new.digest


def _not_a_db(updated: datetime) -> Artifact:
    """A DB artifact whose trivy.db is not a bbolt file (a truncated build, or an upstream format change)."""
    metadata = json.dumps({"Version": 2, "UpdatedAt": go_time(updated),
                           "NextUpdate": go_time(updated + timedelta(hours=24))}).encode()
    layer = targz([("trivy.db", b"\0" * 4096), ("metadata.json", metadata)], mtime=updated)
    return build_artifact([layer], layer_media_type=DB_LAYER, artifact_type=TRIVY_ARTIFACT_TYPE,
                          title="db.tar.gz", created=updated)


def test_a_failed_archive_check_holds_the_candidate_until_approved(mirror: MirrorCli, registry: RegistryFactory,
                                                                    tmp_path: Path) -> None:
    """The archive check holds (it does not refuse): the served DB stays, sync exits 1 with one line naming the
    reason, status, /readyz and /metrics say ``sanity``; ``approve`` publishes it when an operator decides."""
    upstream = registry()
    good, odd = build_vuln_db(updated_at=NOW - timedelta(hours=6)), _not_a_db(NOW - timedelta(hours=1))
    store = ["--store", str(tmp_path / "store")]
    source = ["--from", f"{upstream.host}/aquasec", "--assets", "db", "--max-shrink", "0"]  # the archive alone
    push_artifact(upstream.host, DB_REPOSITORY, "2", good)
    assert mirror.run(["sync", *store, *source]).returncode == 0
    push_artifact(upstream.host, DB_REPOSITORY, "2", odd)
    held = mirror.run(["sync", *store, *source])
    line = assert_one_error_line(held)
    assert "held (sanity): archive check failed: trivy.db in the layer is not a bbolt database" in line, line
    assert odd.digest in line
    row = db_row(mirror, store)
    assert (row["digest"], row["held"]) == (good.digest, "sanity")
    with ServeProcess(mirror, [*store, "--no-sync", "--assets", "db"]) as server:
        readiness = json.loads(server.get("/readyz")[1])
        [hold] = readiness["held"]
        assert (hold["reason"], hold["candidate"]["digest"]) == ("sanity", odd.digest)
        assert "archive check failed" in hold["candidate"]["detail"]
        metrics = server.get("/metrics")[1].decode()
        assert 'trivy_mirror_asset_held{asset="db",reason="sanity",reference="aquasec/trivy-db:2"} 1.0' in metrics

    approved = mirror.run(["approve", "db", *store, "--from", f"{upstream.host}/aquasec"])
    assert approved.returncode == 0, approved.stderr
    row = db_row(mirror, store)
    assert row["digest"] == odd.digest and row["held"] is None
    provenance = row["provenance"]
    assert isinstance(provenance, dict)
    assert "archive: not checked, approved by an operator" in provenance["decisions"]


def test_import_holds_a_shrunken_db_until_approved_and_records_its_provenance(
        mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path) -> None:
    """``import`` applies sync's sanity holds: a DB a tenth of the served size fails the import with one line,
    nothing published, the candidate recorded; ``approve`` (no sync: the bundle brought it) then a second import
    publishes it, with the bundle as the source of its provenance."""
    big = build_vuln_db(updated_at=NOW - timedelta(hours=12), filler_bytes=400_000)
    small = build_vuln_db(updated_at=NOW - timedelta(hours=6))
    bundle = tmp_path / "bundle.tar"
    isolated = air_gap(mirror, registry().host, tmp_path, big, small, bundle).isolated

    line = assert_one_error_line(mirror.run(["import", str(bundle), *isolated]))
    assert "held (sanity)" in line and "below --max-shrink 0.5" in line and "nothing imported" in line, line
    row = db_row(mirror, isolated)
    assert (row["digest"], row["held"]) == (big.digest, "sanity")
    candidate = row["candidate"]
    assert isinstance(candidate, dict) and candidate["digest"] == small.digest
    assert candidate["source"].startswith("bundle")

    approved = mirror.run(["approve", "db", small.digest, *isolated])  # no --from: nothing is synced
    assert approved.returncode == 0, approved.stderr
    assert "import the bundle again" in approved.stdout
    assert mirror.run(["import", str(bundle), *isolated]).returncode == 0
    row = db_row(mirror, isolated)
    assert (row["digest"], row["held"]) == (small.digest, None)
    provenance = row["provenance"]
    assert isinstance(provenance, dict) and provenance["source"].startswith("bundle")
    assert provenance["decisions"][:2] == ["import: from a bundle", "size: not checked, approved by an operator"]
    assert provenance["first_seen"] == candidate["first_seen"]  # held since the first import


def test_import_takes_the_sanity_settings(mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path) -> None:
    """``import --max-shrink 0`` publishes the bundle the default 0.5 holds; a bundle whose DB is not a bbolt file
    is held by the archive check and imported with ``--no-check-archive``; the settings' variables apply too."""
    upstream = registry()
    big = build_vuln_db(updated_at=NOW - timedelta(hours=12), filler_bytes=400_000)
    small, odd = build_vuln_db(updated_at=NOW - timedelta(hours=6)), _not_a_db(NOW - timedelta(hours=1))
    shrunk, fake = tmp_path / "shrunk.tar", tmp_path / "fake.tar"
    sides = air_gap(mirror, upstream.host, tmp_path, big, small, shrunk)
    isolated, connected = sides.isolated, sides.connected
    push_artifact(upstream.host, DB_REPOSITORY, "2", odd)
    synced = mirror.run(["sync", *connected, *sides.source, "--max-shrink", "0", "--no-check-archive"])
    assert synced.returncode == 0, synced.stderr
    assert mirror.run(["export", str(fake), *connected, "--assets", "db"]).returncode == 0

    imported = mirror.run(["import", str(shrunk), *isolated, "--max-shrink", "0"])
    assert imported.returncode == 0, imported.stderr
    assert db_row(mirror, isolated)["digest"] == small.digest

    held = mirror.run(["import", str(fake), *isolated], env={"TRIVY_MIRROR_MAX_SHRINK": "0"})  # the size aside
    line = assert_one_error_line(held)
    assert "held (sanity): archive check failed: trivy.db in the layer is not a bbolt database" in line, line
    assert "nothing imported" in line, line
    row = db_row(mirror, isolated)
    assert (row["digest"], row["held"]) == (small.digest, "sanity")

    imported = mirror.run(["import", str(fake), *isolated, "--max-shrink", "0", "--no-check-archive"])
    assert imported.returncode == 0, imported.stderr
    row = db_row(mirror, isolated)
    assert (row["digest"], row["held"]) == (odd.digest, None)
    provenance = row["provenance"]
    assert isinstance(provenance, dict)
    assert not any(decision.startswith(("size", "archive")) for decision in provenance["decisions"])
