"""Item 1 of the review: any credential could replace the DB every scanner downloads.

Replayed: an ordinary user pushes an empty DB over ``aquasecurity/trivy-db:2`` (the planted CVE vanished from
real scans), and a user allowed to push plants one with UpdatedAt in 2099 (every later sync refused the real
upstream as older while ``/readyz`` said fresh).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, push_artifact
from support.trivy_assets import DB_REPOSITORY, build_vuln_db

from .conftest import PULL_TOKEN, PUSH_TOKEN, ROBOT, ROBOT_PASSWORD, SCANNER, SCANNER_PASSWORD, Served, basic
from .pushing import codes, empty_db, push

pytestmark = pytest.mark.security
ZERO_UPLOAD = "00000000-0000-0000-0000-000000000000"


def _token(served: Served, user: str, password: str) -> str:
    status, _, body = served.request("GET", "/token?service=x&scope=repository:aquasec/trivy-db:pull,push",
                                     headers={"Authorization": basic(user, password)})
    assert status == 200
    return str(json.loads(body)["token"])


def test_an_ordinary_user_cannot_push_an_empty_db(served: Served) -> None:
    scanner_token = _token(served, SCANNER, SCANNER_PASSWORD)
    credentials = {"basic": basic(SCANNER, SCANNER_PASSWORD), "token from /token": f"Bearer {scanner_token}",
                   "static token": f"Bearer {PULL_TOKEN}"}
    db = empty_db()
    layer = next(iter(db.blobs))
    for label, authorization in credentials.items():
        for name in ("aquasecurity/trivy-db", "aquasec/trivy-db"):
            answers = push(served, name, "2", db, authorization)
            assert all(status == 403 and codes(body) == ["DENIED"] for status, body in answers), (label, answers)
        for method, path in (("POST", "/v2/aquasec/trivy-db/blobs/uploads/"),
                             ("POST", f"/v2/aquasec/trivy-db/blobs/uploads/?mount={layer}&from=aquasec/trivy-db"),
                             ("PATCH", f"/v2/aquasec/trivy-db/blobs/uploads/{ZERO_UPLOAD}"),
                             ("PUT", f"/v2/aquasec/trivy-db/blobs/uploads/{ZERO_UPLOAD}?digest={layer}"),
                             ("DELETE", f"/v2/aquasec/trivy-db/blobs/uploads/{ZERO_UPLOAD}")):
            status, _, body = served.request(method, path, headers={"Authorization": authorization}, body=b"x")
            assert (status, codes(body)) == (403, ["DENIED"]), (label, method, path)
        # The same credential still pulls.
        assert served.request("GET", "/v2/aquasec/trivy-db/manifests/2",
                              headers={"Authorization": authorization})[0] == 200
    assert served.served_digest() == served.db_digest


def test_a_push_user_cannot_plant_a_db_from_2099_nor_an_older_one(served: Served) -> None:
    robot = basic(ROBOT, ROBOT_PASSWORD)
    robot_token = f"Bearer {_token(served, ROBOT, ROBOT_PASSWORD)}"
    planted = build_vuln_db(updated_at=datetime(2099, 1, 1, tzinfo=UTC))
    older = build_vuln_db(updated_at=datetime.now(UTC) - timedelta(days=30))
    for authorization in (robot, robot_token, f"Bearer {PUSH_TOKEN}"):
        for artifact, reason in ((planted, b"in the future"), (older, b"older than the served")):
            *blobs, (status, body) = push(served, "aquasecurity/trivy-db", "2", artifact, authorization)
            assert all(blob_status == 201 for blob_status, _ in blobs)
            assert (status, codes(body)) == (400, ["MANIFEST_INVALID"]) and reason in body, body
    assert served.served_digest() == served.db_digest
    assert "in the future" in served.process.log()  # the refusal is logged for the operator


def test_sync_refuses_an_upstream_db_from_2099(registry: RegistryFactory, mirror: MirrorCli,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    upstream = registry()
    push_artifact(upstream.host, DB_REPOSITORY, "2", build_vuln_db(updated_at=datetime(2099, 1, 1, tzinfo=UTC)))
    store = tmp_path_factory.mktemp("future") / "store"
    result = mirror.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db",
                         "--json"])
    assert result.returncode == 1, result.stderr
    outcome = json.loads(result.stdout)["results"][0]
    assert outcome["outcome"] == "refused" and "in the future" in outcome["message"]
