"""Pushing over plain ``http.client`` as any client would, to replay attacks whatever the answers are."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from support.trivy_assets import DB_LAYER, TRIVY_ARTIFACT_TYPE, Artifact, build_artifact, go_time, targz

from .conftest import Served


def empty_db() -> Artifact:
    """A DB artifact Trivy would load happily: valid metadata, no vulnerabilities at all."""
    now = datetime.now(UTC)
    metadata = json.dumps({"Version": 2, "NextUpdate": go_time(now.replace(year=now.year + 1)),
                           "UpdatedAt": go_time(now), "DownloadedAt": "0001-01-01T00:00:00Z"}).encode()
    layer = targz([("trivy.db", b""), ("metadata.json", metadata)], mtime=now)
    return build_artifact([layer], layer_media_type=DB_LAYER, artifact_type=TRIVY_ARTIFACT_TYPE,
                          title="db.tar.gz", created=now)


def push(served: Served, name: str, tag: str, artifact: Artifact, authorization: str) -> list[tuple[int, bytes]]:
    """Every blob (monolithic POST), then the manifest; the status and body of each answer, in order."""
    answers = []
    headers = {"Authorization": authorization}
    for digest, data in artifact.blobs.items():
        status, _, body = served.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", body=data,
                                         headers={**headers, "Content-Type": "application/octet-stream"})
        answers.append((status, body))
    status, _, body = served.request("PUT", f"/v2/{name}/manifests/{tag}", body=artifact.manifest,
                                     headers={**headers, "Content-Type": artifact.media_type})
    answers.append((status, body))
    return answers


def codes(body: bytes) -> list[str]:
    return [error["code"] for error in json.loads(body)["errors"]]
