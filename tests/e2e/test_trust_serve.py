"""The trust controls where ``serve`` is involved, with real registries, a real serve and a real Trivy:
``sync --to`` a running ``serve --allow-push`` with ``--sign`` attaches a signed provenance statement that serve's
referrers API lists and securesystemslib verifies; serve's own sync loop keeps the served DB while two sources
disagree under ``--quorum 2`` (Trivy still finds the old planted finding through serve) and publishes once they
agree; ``--hold`` in serve publishes a new version only after its soak period."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.dsse import verified_statement
from support.registry import RegistryFactory, push_artifact
from support.serve import ServeProcess
from support.trivy import db_served
from support.trivy_assets import PIP_CVE, AssetSet, build_vuln_db
from trivy_mirror.timefmt import parse_time

pytestmark = pytest.mark.e2e

DB_REPOSITORY = "aquasec/trivy-db"
DSSE = "application/vnd.dsse.envelope.v1+json"
USER, PASSWORD = "ci", "push-secret"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _get(server: ServeProcess, path: str, auth: bool = True) -> tuple[int, bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"} if auth else {}
    return server.get(path, headers)


def _wait(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll until ``check`` returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {what}")


def _readiness(server: ServeProcess) -> dict[str, Any]:
    body = server.get("/readyz")[1]
    return json.loads(body) if body else {}  # type: ignore[no-any-return]


def _served(server: ServeProcess) -> str | None:
    [row] = _readiness(server).get("assets") or [{}]
    digest = row.get("digest")
    return digest if isinstance(digest, str) else None


def test_sync_to_serve_attaches_a_signed_provenance_referrer(mirror: MirrorCli, registry: RegistryFactory,
                                                             tmp_path: Path) -> None:
    upstream = registry()
    db = build_vuln_db(updated_at=NOW - timedelta(hours=2))
    push_artifact(upstream.host, DB_REPOSITORY, "2", db)
    key = tmp_path / "provenance.key"
    assert mirror.run(["keygen", str(key)]).returncode == 0
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True,
                                       check=True).stdout)
    store = tmp_path / "served"
    with ServeProcess(mirror, ["--store", str(store), "--no-sync", "--assets", "db", "--htpasswd", str(htpasswd),
                               "--allow-push", "--push-user", USER]) as server:
        synced = mirror.json(["sync", "--to", server.host, "--dest-creds", f"{USER}:{PASSWORD}",
                              "--from", f"{upstream.host}/aquasec", "--assets", "db", "--sign", str(key)])
        [result] = synced["results"]
        assert result["outcome"] == "updated" and "provenance" in result["message"], result
        status, body = _get(server, f"/v2/{DB_REPOSITORY}/referrers/{db.digest}?artifactType={quote(DSSE)}")
        assert status == 200, body
        [referrer] = json.loads(body)["manifests"]
        assert referrer["artifactType"] == DSSE
        status, manifest = _get(server, f"/v2/{DB_REPOSITORY}/manifests/{referrer['digest']}")
        assert status == 200
        [layer] = json.loads(manifest)["layers"]
        status, document = _get(server, f"/v2/{DB_REPOSITORY}/blobs/{layer['digest']}")
        assert status == 200
        status, body = _get(server, f"/v2/{DB_REPOSITORY}/referrers/{db.digest}?artifactType=application/x-none")
        assert (status, json.loads(body)["manifests"]) == (200, [])
    statement = verified_statement(document, tmp_path / "provenance.key.pub")
    assert statement["subject"] == [{"name": f"{DB_REPOSITORY}:2", "digest": {"sha256": db.digest.split(":")[1]}}]
    assert statement["predicate"]["source"] == f"{upstream.host}/{DB_REPOSITORY}:2"
    # serve recorded what it accepted too: the pushing identity as the source.
    row = json.loads(mirror.run(["status", "--store", str(store), "--assets", "db", "--json"]).stdout)["assets"][0]
    assert row["digest"] == db.digest and row["provenance"]["source"] == f"push by {USER}"


def test_serve_holds_while_its_sources_disagree_and_publishes_once_they_agree(
        mirror: MirrorCli, registry: RegistryFactory, assets: AssetSet, tmp_path: Path) -> None:
    one, two = registry(), registry()
    times = {name: NOW - timedelta(hours=h) for name, h in (("old", 12), ("new", 6), ("other", 5))}
    dbs = {name: build_vuln_db(updated_at=moment) for name, moment in times.items()}
    for source in (one, two):
        push_artifact(source.host, DB_REPOSITORY, "2", dbs["old"])
    args = ["--store", str(tmp_path / "store"), "--assets", "db", "--from", f"{one.host}/aquasec",
            "--from", f"{two.host}/aquasec", "--quorum", "2", "--sync-every", "1s"]
    with ServeProcess(mirror, args) as server:
        _wait("the first sync", lambda: _served(server) == dbs["old"].digest)
        push_artifact(one.host, DB_REPOSITORY, "2", dbs["new"])
        push_artifact(two.host, DB_REPOSITORY, "2", dbs["other"])
        [held] = _wait("the quorum hold", lambda: _readiness(server).get("held"))
        assert (held["reason"], held["served"]) == ("quorum", dbs["old"].digest)
        assert set(held["candidate"]["reports"].values()) == {dbs["new"].digest, dbs["other"].digest}
        assert server.get("/readyz")[0] == 200  # what is served is still good
        page = server.get("/")[1].decode()  # the status page names the hold and both candidates
        assert "held (quorum)" in page and all(f'title="{dbs[n].digest}"' in page for n in ("new", "other"))
        metrics = server.get("/metrics")[1].decode()
        assert 'trivy_mirror_asset_held{asset="db",reason="quorum",reference="aquasec/trivy-db:2"} 1.0' in metrics
        repository = f"{server.host}/{DB_REPOSITORY}:2"
        served = db_served(tmp_path / "held", repository, assets.targets.requirements_dir, PIP_CVE)
        assert served == f"{times['old']:%Y-%m-%dT%H:%M}"

        push_artifact(two.host, DB_REPOSITORY, "2", dbs["new"])  # the sources agree
        _wait("publication once the sources agree", lambda: _served(server) == dbs["new"].digest)
        assert not _readiness(server)["held"]
        served = db_served(tmp_path / "agreed", repository, assets.targets.requirements_dir, PIP_CVE)
        assert served == f"{times['new']:%Y-%m-%dT%H:%M}"


def test_serve_publishes_a_new_version_only_after_its_hold(mirror: MirrorCli, registry: RegistryFactory,
                                                           tmp_path: Path) -> None:
    upstream = registry()
    old, new = (build_vuln_db(updated_at=NOW - timedelta(hours=h)) for h in (12, 6))
    push_artifact(upstream.host, DB_REPOSITORY, "2", old)
    store = tmp_path / "store"
    args = ["--store", str(store), "--assets", "db", "--from", f"{upstream.host}/aquasec", "--hold", "4s",
            "--sync-every", "1s"]
    with ServeProcess(mirror, args) as server:
        _wait("the first sync (an empty mirror is filled at once)", lambda: _served(server) == old.digest)
        push_artifact(upstream.host, DB_REPOSITORY, "2", new)
        [held] = _wait("the soak hold", lambda: _readiness(server).get("held"))
        assert (held["reason"], held["candidate"]["digest"], _served(server)) == ("hold", new.digest, old.digest)
        _wait("publication after the hold", lambda: _served(server) == new.digest, timeout=20)
    row = json.loads(mirror.run(["status", "--store", str(store), "--assets", "db", "--json"]).stdout)["assets"][0]
    provenance = row["provenance"]
    first_seen, published = parse_time(provenance["first_seen"]), parse_time(provenance["published_at"])
    assert first_seen is not None and published is not None and published - first_seen >= timedelta(seconds=4)
    assert "hold: the candidate for at least 0:00:04" in provenance["decisions"]




def test_serve_holds_a_pushed_db_that_shrank_and_the_pushing_sync_says_why(
        mirror: MirrorCli, registry: RegistryFactory, tmp_path: Path) -> None:
    """A push into serve meets serve's holds: the pushing ``sync --to`` fails with serve's ``DENIED`` reason in
    one line, serve keeps its version and records the held candidate (``push by USER``); ``approve`` on serve's
    store lets the next push through."""
    upstream = registry()
    big = build_vuln_db(updated_at=NOW - timedelta(hours=12), filler_bytes=400_000)
    small = build_vuln_db(updated_at=NOW - timedelta(hours=6))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True,
                                       check=True).stdout)
    store = ["--store", str(tmp_path / "served")]
    sync = ["sync", "--dest-creds", f"{USER}:{PASSWORD}", "--from", f"{upstream.host}/aquasec", "--assets", "db",
            "--max-shrink", "0"]  # the pushing side does not check the size: serve does
    with ServeProcess(mirror, [*store, "--no-sync", "--assets", "db", "--htpasswd", str(htpasswd),
                               "--allow-push", "--push-user", USER]) as server:
        push_artifact(upstream.host, DB_REPOSITORY, "2", big)
        assert mirror.run([*sync, "--to", server.host]).returncode == 0
        push_artifact(upstream.host, DB_REPOSITORY, "2", small)
        line = assert_one_error_line(mirror.run([*sync, "--to", server.host]))
        assert "DENIED" in line and "held (sanity)" in line and "below --max-shrink 0.5" in line, line
        row = json.loads(mirror.run(["status", *store, "--assets", "db", "--json"]).stdout)["assets"][0]
        assert (row["digest"], row["held"]) == (big.digest, "sanity")
        assert (row["candidate"]["digest"], row["candidate"]["source"]) == (small.digest, f"push by {USER}")
        [held] = json.loads(_get(server, "/readyz")[1])["held"]  # with auth on, only credentials see why
        assert held["reason"] == "sanity"

        approved = mirror.run(["approve", "db", small.digest, *store])
        assert approved.returncode == 0 and "push it again" in approved.stdout, approved.stderr
        assert mirror.run([*sync, "--to", server.host]).returncode == 0
        row = json.loads(mirror.run(["status", *store, "--assets", "db", "--json"]).stdout)["assets"][0]
        assert (row["digest"], row["held"]) == (small.digest, None)
