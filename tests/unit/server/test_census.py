"""The fleet census: per Trivy version what it pulled and what the mirror could not answer, bounded, persisted,
counted in /metrics, and the tags it asked for handed to the next sync."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trivy_mirror.server.census import (
    MAX_DETAIL,
    MAX_PROBLEMS,
    MAX_RESOURCES,
    MAX_VERSIONS,
    OTHER,
    Census,
    census_path,
    read_records,
    requested_tags,
)
from trivy_mirror.store import Store

from .conftest import ClientFactory
from .helpers import Artifact

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_versions_resources_and_problems() -> None:
    census = Census()
    assert census.record("trivy/0.67.2 (linux)", "manifests", "/v2/aquasec/trivy-checks/manifests/1", 404,
                         now=T0) == "not-found"
    census.record("trivy/0.67.2", "manifests", "/v2/aquasec/trivy-db/manifests/2", 200, now=T0)
    census.record("trivy/0.67.2", "blobs", "/v2/aquasec/trivy-db/blobs/sha256:" + "a" * 64, 200, now=T0)
    census.record("trivy/0.67.2", "vex-archive", "/vex/vexhub/archive.tar.gz", 200, no_304=True, now=T0)
    census.record("curl/8.5", "manifests", "/v2/aquasec/trivy-db/manifests/2", 200, now=T0)
    document = census.to_json()
    [old, other] = document["clients"]
    assert old["client"] == "0.67.2" and other["client"] == OTHER
    assert old["outcomes"] == {"no-304": 1, "not-found": 1, "ok": 2} and old["requests"] == 4
    assert [entry["resource"] for entry in old["pulled"]] == ["aquasec/trivy-db:2"]
    assert [(p["outcome"], p["resource"], p["count"]) for p in old["problems"]] == [
        ("no-304", "vex/vexhub", 1), ("not-found", "aquasec/trivy-checks:1", 1)]


def test_memory_stays_bounded_whatever_clients_send() -> None:
    census = Census()
    for minor in range(MAX_VERSIONS + 10):
        census.record(f"trivy/0.{minor}.0", "ping", "/v2/", 200)
    for index in range(100):
        census.record("trivy/0.1.0", "manifests", f"/v2/aquasec/trivy-db/manifests/t{index}", 200)
        census.record("trivy/0.1.0", "manifests", f"/v2/aquasec/trivy-db/manifests/m{index}", 404)
        census.record(f"evil/{index}" * 50, "manifests", f"/v2/{'x' * 500}/manifests/{index}", 404)
    assert len(census.clients) == MAX_VERSIONS + 1  # every further version and agent is "other"
    assert census.clients[OTHER].outcomes["ok"] == 10
    assert len(census.clients["0.1.0"].pulled) == MAX_RESOURCES
    assert len(census.clients["0.1.0"].problems) == MAX_PROBLEMS
    assert all(len(p.resource) < 300 for p in census.clients[OTHER].problems.values())


def test_a_missing_tag_is_warned_once_per_version(caplog: pytest.LogCaptureFixture) -> None:
    census = Census()
    with caplog.at_level(logging.WARNING, logger="trivy_mirror.server.census"):
        for agent in ("trivy/0.68.2", "trivy/0.68.2", "trivy/0.59.1"):
            census.record(agent, "manifests", "/v2/aquasec/trivy-checks/manifests/1", 404)
    warnings = [r.getMessage() for r in caplog.records if "does not hold" in r.getMessage()]
    assert len(warnings) == 2 and "Trivy 0.68.2 asked for aquasec/trivy-checks:1" in warnings[0]


def test_saved_census_is_read_back_and_feeds_the_sync_plan(tmp_path: Path) -> None:
    path = census_path(tmp_path)
    census = Census(path)
    census.record("trivy/0.68.2", "manifests", "/v2/aquasecurity/trivy-checks/manifests/1", 404, now=T0)
    census.record("trivy/0.68.2", "manifests", "/v2/aquasec/trivy-checks/manifests/latest", 404, now=T0)
    census.record("trivy/0.68.2", "manifests", "/v2/aquasec/trivy-db/manifests/3", 404, now=T0)
    census.save()
    assert not census.dirty and json.loads(path.read_text())["clients"][0]["client"] == "0.68.2"
    again = Census(path)
    assert again.to_json() == census.to_json()
    again.record("trivy/0.68.2", "ping", "/v2/", 200)
    assert again.clients["0.68.2"].outcomes == {"not-found": 3, "ok": 1}
    # Only the catalog assets whose tag follows the client, and only major-version tags.
    assert requested_tags(tmp_path, {"trivy-checks": "checks"}) == {"checks": ["1"]}
    path.write_text("{not json")
    assert read_records(path) == [] and requested_tags(tmp_path, {"trivy-checks": "checks"}) == {}


async def test_the_server_counts_clients_in_metrics_and_the_state_file(make_client: ClientFactory, store: Store,
                                                                       db: Artifact) -> None:
    client = await make_client()
    old, new = {"User-Agent": "trivy/0.67.2"}, {"User-Agent": "trivy/0.76.0"}
    assert (await client.get("/v2/aquasec/trivy-checks/manifests/1", headers=old)).status == 404
    assert (await client.get("/v2/aquasec/trivy-db/manifests/2", headers=new)).status == 200
    assert (await client.get("/healthz", headers=new)).status == 200  # not a scanner request
    text = (await (await client.get("/metrics")).read()).decode()
    samples = {(s.labels["client"], s.labels["outcome"]): s.value
               for family in text_string_to_metric_families(text) if family.name == "trivy_mirror_client_requests"
               for s in family.samples if s.name.endswith("_total")}
    assert samples == {("0.67.2", "not-found"): 1, ("0.76.0", "ok"): 1}
    await client.close()  # cleanup writes the census
    [newer, older] = sorted(read_records(census_path(store.root)), key=lambda r: r.client, reverse=True)
    assert newer.client == "0.76.0" and list(newer.pulled) == ["aquasec/trivy-db:2"]
    assert [(p.outcome, p.resource) for p in older.problems.values()] == [("not-found", "aquasec/trivy-checks:1")]


def test_the_next_sync_plans_the_tags_clients_missed(tmp_path: Path) -> None:
    from trivy_mirror.catalog import assets
    from trivy_mirror.server.census import plan_requested_tags

    census = Census(census_path(tmp_path))
    for tag in ("3", "1", "2", "latest"):
        census.record("trivy/0.80.0", "manifests", f"/v2/aquasec/trivy-checks/manifests/{tag}", 404)
    census.record("trivy/0.80.0", "manifests", "/v2/aquasec/trivy-db/manifests/3", 404)
    census.save()
    planned = {spec.name: [(t.tag, t.required) for t in spec.tags]
               for spec in plan_requested_tags(assets.CATALOG, tmp_path)}
    assert planned == {"db": [("2", True)], "java-db": [("1", True)],
                       "checks": [("2", True), ("1", False), ("3", False)]}
    assert plan_requested_tags(assets.select(["db"]), tmp_path) == assets.select(["db"])


async def test_an_unwritable_store_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    census = Census(tmp_path / "file" / "store" / ".clients.json")  # its parent cannot be a directory
    census.record("trivy/0.76.0", "ping", "/v2/", 200)
    with caplog.at_level(logging.DEBUG, logger="trivy_mirror.server.census"):
        await census.save_now()
        await census.save_now()
    levels = [r.levelno for r in caplog.records if "cannot record" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG] and census.dirty


def test_manifests_by_digest_are_not_resources_and_the_auth_challenge_is_no_refusal() -> None:
    census = Census()
    assert census.record("trivy/0.76.0", "ping", "/v2/", 401) == "ok"
    assert census.record("trivy/0.76.0", "manifests", "/v2/aquasec/trivy-db/manifests/2", 401) == "denied"
    census = Census()
    census.record("trivy/0.76.0", "manifests", "/v2/aquasec/trivy-db/manifests/sha256:" + "b" * 64, 200)
    assert census.clients["0.76.0"].pulled == {} and census.clients["0.76.0"].outcomes == {"ok": 1}


def test_a_held_push_is_held_with_its_first_words_and_read_back(tmp_path: Path) -> None:
    census = Census(census_path(tmp_path))
    hold = "db: held (sanity): the candidate is 1200 bytes, 10% of the served 12000; below --max-shrink 0.5 " * 3
    path = "/v2/aquasec/trivy-db/manifests/2"
    assert census.record("oras/1.2.0", "manifests", path, 403, held=hold, now=T0) == "held"
    assert census.record("oras/1.2.0", "manifests", path, 403, now=T0) == "denied"  # no hold: credentials
    [denied, held] = census.to_json()["clients"][0]["problems"]
    assert (denied["outcome"], held["outcome"]) == ("denied", "held") and "detail" not in denied
    assert held["detail"].startswith("db: held (sanity): the candidate is 1200 bytes")
    assert held["detail"].endswith("\u2026")  # cut at a word
    assert len(held["detail"]) <= MAX_DETAIL and held["detail"][:-1] in hold
    census.save()
    assert Census(census_path(tmp_path)).to_json() == census.to_json()
