"""/healthz, /readyz, /metrics and the access log."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.scheduler import SyncScheduler
from trivy_mirror.server.settings import ServerSettings

from .conftest import PASSWORD, USER, ClientFactory
from .helpers import Artifact, basic

NOW = datetime.now(UTC)
FRESH = AssetStatus("db", "aquasec/trivy-db:2", "sha256:" + "a" * 64, 1234, NOW - timedelta(hours=2),
                    NOW + timedelta(hours=20), "mirror.gcr.io", state="fresh")
STALE = AssetStatus("java-db", "aquasec/trivy-java-db:1", "sha256:" + "b" * 64, 99, NOW - timedelta(days=5),
                    NOW - timedelta(days=1), state="stale")
MISSING = AssetStatus("checks", "aquasec/trivy-checks:2")


async def test_healthz(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/healthz")
    assert (response.status, await response.text()) == (200, "ok\n")


async def test_readyz_all_fresh(make_client: ClientFactory) -> None:
    client = await make_client(statuses=lambda: [FRESH])
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200
    assert body["ready"] is True and body["reasons"] == []
    assert body["assets"][0]["asset"] == "db"


async def test_readyz_503_with_reasons(make_client: ClientFactory) -> None:
    client = await make_client(statuses=lambda: [FRESH, STALE, MISSING])
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False
    assert body["reasons"] == [STALE.reason, MISSING.reason]
    assert [row["state"] for row in body["assets"]] == ["fresh", "stale", "missing"]


async def test_readyz_when_statuses_fail(make_client: ClientFactory) -> None:
    def broken() -> list[AssetStatus]:
        raise OSError(errno.EIO, "Input/output error", "/srv/store/aquasec/trivy-db/index.json")

    client = await make_client(statuses=broken)
    response = await client.get("/readyz")
    assert response.status == 503
    reason = (await response.json())["reasons"][0]
    assert "Input/output error" in reason and "/srv/store" not in reason  # never a filesystem path


async def test_readyz_includes_the_sync_state(make_client: ClientFactory) -> None:
    ran = asyncio.Event()

    async def failing() -> SyncOutcome:
        ran.set()
        return SyncOutcome(False, "cannot reach mirror.gcr.io", 0.5)

    scheduler = SyncScheduler(failing, every=3600)
    client = await make_client(statuses=lambda: [FRESH], scheduler=scheduler)
    scheduler.start()
    try:
        await asyncio.wait_for(ran.wait(), 5)
        await asyncio.sleep(0)  # let the loop record the outcome
        body = await (await client.get("/readyz")).json()
        assert body["sync"]["last_error"] == "cannot reach mirror.gcr.io"
        metrics = await (await client.get("/metrics")).text()
        assert "trivy_mirror_sync_last_failure_timestamp_seconds " in metrics
        assert "trivy_mirror_sync_duration_seconds 0.5" in metrics
        assert 'trivy_mirror_sync_runs_total{result="failure"} 1.0' in metrics
    finally:
        await scheduler.stop()


async def test_metrics(make_client: ClientFactory, db: Artifact) -> None:
    client = await make_client(statuses=lambda: [FRESH, MISSING])
    await client.get("/v2/aquasec/trivy-db/manifests/2")
    await client.get("/v2/aquasec/trivy-db/manifests/2")
    await client.head("/v2/aquasec/trivy-db/manifests/2")
    await client.get(f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}")
    await client.get("/v2/aquasec/trivy-db/manifests/nope")
    await client.request("OPTIONS", "/v2/")
    await client.request("BREW", "/v2/")  # aiohttp's parser answers 400 before the app sees it
    text = await (await client.get("/metrics")).text()
    assert 'trivy_mirror_http_requests_total{method="GET",route="manifests",status="200"} 2.0' in text
    assert 'trivy_mirror_http_requests_total{method="HEAD",route="manifests",status="200"} 1.0' in text
    assert 'trivy_mirror_http_requests_total{method="GET",route="manifests",status="404"} 1.0' in text
    assert 'trivy_mirror_http_requests_total{method="OPTIONS",route="ping",status="405"} 1.0' in text
    assert 'trivy_mirror_http_requests_total{method="other",route="not-http",status="400"} 1.0' in text
    assert f'trivy_mirror_http_response_bytes_total{{route="blobs"}} {float(len(db.layer_bytes))}' in text
    manifest_bytes = [line for line in text.splitlines()
                      if line.startswith('trivy_mirror_http_response_bytes_total{route="manifests"}')]
    assert float(manifest_bytes[0].split()[-1]) >= 2 * len(db.manifest.data)
    values = samples(text)
    assert FRESH.updated_at is not None and FRESH.next_update is not None
    assert values[("trivy_mirror_asset_updated_at_seconds", "db")] == pytest.approx(FRESH.updated_at.timestamp())
    assert values[("trivy_mirror_asset_next_update_seconds", "db")] == pytest.approx(FRESH.next_update.timestamp())
    assert values[("trivy_mirror_asset_size_bytes", "db")] == 1234
    assert ("trivy_mirror_asset_updated_at_seconds", "checks") not in values
    assert 'trivy_mirror_asset_ready{asset="db"} 1.0' in text
    assert 'trivy_mirror_asset_ready{asset="checks"} 0.0' in text
    assert "trivy_mirror_http_request_duration_seconds_bucket" in text
    # No scheduler: no sync series.
    assert "trivy_mirror_sync_runs_total" not in text


def samples(text: str) -> dict[tuple[str, str], float]:
    """(sample name, asset label) -> value, for the per-asset gauges."""
    return {(sample.name, sample.labels.get("asset", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_two_apps_do_not_share_metrics(make_client: ClientFactory) -> None:
    first = await make_client()
    second = await make_client()
    await first.get("/v2/")
    text = await (await second.get("/metrics")).text()
    assert 'route="ping"' not in text


async def access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    """The access log is written once the response is complete, a moment after the client has it."""
    for _ in range(100):
        lines = [r.getMessage() for r in caplog.records if r.name == "trivy_mirror.access"]
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} access log lines expected, got {len(lines)}")


async def test_access_log_text(make_client: ClientFactory, htpasswd: Path, db: Artifact,
                               caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    with caplog.at_level(logging.INFO, logger="trivy_mirror.access"):
        await client.get("/v2/aquasec/trivy-db/manifests/2", headers={**basic(USER, PASSWORD),
                                                                      "User-Agent": "trivy/0.76.0"})
        await client.get("/v2/aquasec/trivy-db/manifests/2?secret=x")
        lines = await access_lines(caplog, 2)
    assert f'127.0.0.1 {USER} "GET /v2/aquasec/trivy-db/manifests/2" 200 {len(db.manifest.data)} ' in lines[0]
    assert lines[0].endswith('"trivy/0.76.0"')
    assert '127.0.0.1 - "GET /v2/aquasec/trivy-db/manifests/2" 401 ' in lines[1]
    assert PASSWORD not in caplog.text and "secret=x" not in caplog.text


async def test_access_log_json(make_client: ClientFactory, db: Artifact, caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(ServerSettings(log_format="json"))
    with caplog.at_level(logging.INFO, logger="trivy_mirror.access"):
        await (await client.get(f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}")).read()
        lines = await access_lines(caplog, 1)
    record = json.loads(lines[0])
    assert record["method"] == "GET"
    assert record["route"] == "blobs"
    assert record["status"] == 200
    assert record["bytes"] == len(db.layer_bytes)
    assert record["user"] == "-"
    assert record["duration"] >= 0
    assert record["time"].endswith("Z")


async def test_a_tls_handshake_on_the_plain_http_port_is_not_an_access_log_line(
        make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Trivy tries https first: its ClientHello reaches a plain-HTTP serve on every scan. That is counted in the
    metrics under its own route, told at DEBUG, and leaves no ``"UNKNOWN /" 400`` line at INFO."""
    client = await make_client()
    host, port = client.server.host, client.server.port
    with caplog.at_level(logging.DEBUG, logger="trivy_mirror.access"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(bytes.fromhex("160301012c010001280303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00")
        await writer.drain()
        answer = await reader.read(200)
        writer.close()
        await client.get("/v2/")
        await access_lines(caplog, 1)
        for _ in range(100):
            if any(r.levelno == logging.DEBUG for r in caplog.records if r.name == "trivy_mirror.access"):
                break
            await asyncio.sleep(0.01)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    records = [r for r in caplog.records if r.name == "trivy_mirror.access"]
    assert [r.getMessage() for r in records if r.levelno == logging.INFO and "UNKNOWN" in r.getMessage()] == []
    assert any(r.levelno == logging.DEBUG and "not HTTP" in r.getMessage() for r in records)
    metrics = await (await client.get("/metrics")).text()
    assert 'route="not-http"' in metrics
