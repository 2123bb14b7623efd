"""Items 7 and 9 of the review: upload sessions, spools and pushed manifests.

Replayed: one user held all 64 upload sessions for an hour and spooled without a cap; a crash left its spool
behind for good; loose manifests (ambiguous, mismatched Content-Type, non-UTF-8, schemaVersion 2.0) were
accepted, and deeply nested JSON answered 500 with a traceback.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.serve import ServeProcess

from .conftest import PUSH_TOKEN, ROBOT, ROBOT_PASSWORD, Served, basic, write_htpasswd
from .pushing import codes

pytestmark = pytest.mark.security
PER_CREDENTIAL = 8


def test_one_credential_cannot_hold_every_upload_session(served: Served) -> None:
    robot = {"Authorization": basic(ROBOT, ROBOT_PASSWORD)}
    held, refused = [], 0
    for _ in range(64):
        status, headers, _ = served.request("POST", "/v2/team/tool/blobs/uploads/", headers=robot)
        if status == 202:
            held.append(headers["location"])
        else:
            refused += 1
    try:
        assert len(held) == PER_CREDENTIAL and refused == 64 - PER_CREDENTIAL
        status, headers, _ = served.request("POST", "/v2/team/tool/blobs/uploads/",
                                            headers={"Authorization": f"Bearer {PUSH_TOKEN}"})
        assert status == 202  # another credential still gets a session
        held.append(headers["location"])
        # Another credential cannot write into robot's session either.
        status, _, body = served.request("PATCH", held[0], body=b"x",
                                         headers={"Authorization": f"Bearer {PUSH_TOKEN}"})
        assert (status, codes(body)) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    finally:
        for location in held[:-1]:
            served.request("DELETE", location, headers=robot)
        served.request("DELETE", held[-1], headers={"Authorization": f"Bearer {PUSH_TOKEN}"})


def test_a_crashed_servers_spool_is_removed_at_the_next_start(tmp_path: Path, synced_store: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {ROBOT: ROBOT_PASSWORD}, cost=5)
    spool = tmp_path / "tmp"
    spool.mkdir()
    args = ["--store", str(tmp_path / "store"), "--no-sync", "--htpasswd", str(htpasswd), "--allow-push",
            "--push-user", ROBOT]
    server = ServeProcess(MirrorCli(tmp_path / "home"), args, env={"TMPDIR": str(spool)}).start()
    robot = {"Authorization": basic(ROBOT, ROBOT_PASSWORD)}
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/v2/team/tool/blobs/uploads/", headers=robot)
    response = connection.getresponse()
    response.read()
    location = response.getheader("Location")
    connection.request("PATCH", str(location), body=b"s" * (1 << 20), headers=robot)
    assert connection.getresponse().status == 202
    connection.close()
    left = [path for path in spool.iterdir() if path.name.startswith("trivy-mirror-uploads-")]
    assert len(left) == 1 and sum(f.stat().st_size for f in left[0].iterdir()) == 1 << 20
    assert server._process is not None
    os.kill(server._process.pid, signal.SIGKILL)  # a crash: nothing cleans up
    server._process.wait()
    server._process = None
    assert left[0].exists()
    with ServeProcess(MirrorCli(tmp_path / "home"), args, env={"TMPDIR": str(spool)}) as restarted:
        time.sleep(0.2)
        assert not left[0].exists(), restarted.log()


def test_loose_and_hostile_manifests_are_400_without_tracebacks(served: Served) -> None:
    robot = {"Authorization": basic(ROBOT, ROBOT_PASSWORD)}
    good = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "data": "e30=",
                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
            "layers": []}
    oci = "application/vnd.oci.image.manifest.v1+json"
    cases = {
        "ambiguous": (json.dumps({**good, "manifests": []}).encode(), oci),
        "Content-Type": (json.dumps(good).encode(), "application/vnd.oci.image.index.v1+json"),
        "UTF-8": (json.dumps(good).encode().replace(b"layers", b"l\xffyers"), oci),
        "schemaVersion 2.0": (json.dumps({**good, "schemaVersion": 2.0}).encode(), oci),
        "nested": (b'{"schemaVersion":2,"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}", oci),
    }
    for label, (body, content_type) in cases.items():
        status, _, answer = served.request("PUT", "/v2/team/tool/manifests/v1", body=body,
                                           headers={**robot, "Content-Type": content_type})
        assert (status, codes(answer)) == (400, ["MANIFEST_INVALID"]), (label, answer[:200])
    assert "Traceback" not in served.process.log()
