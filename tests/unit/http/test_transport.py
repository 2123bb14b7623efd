"""Retries, Retry-After, timeouts, scheme choice and error mapping."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from tests.unit.registry.conftest import MakeClient, Serve
from tests.unit.registry.fake_registry import FakeRegistry, manifest_for, oci_error

from support.clock import RecordingClock
from trivy_mirror import __version__
from trivy_mirror.errors import NotFound, RegistryError, Unreachable
from trivy_mirror.http.transport import parse_retry_after
from trivy_mirror.registry import RetryPolicy, Timeouts


def test_parse_retry_after() -> None:
    assert parse_retry_after("0.000035") == pytest.approx(0.000035)
    assert parse_retry_after(" 7 ") == 7
    now = datetime(2025, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 25 Nov 2025 12:00:30 GMT", now) == 30
    assert parse_retry_after("Tue, 25 Nov 2025 11:00:00 GMT", now) == 0
    for junk in (None, "", "soon", "-1", "nan", "inf"):
        assert parse_retry_after(junk) is None


def test_delay_floor_and_backoff_bounds() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0, retry_after_floor=0.5)
    assert policy.delay(1, 0.000035) == 0.5
    assert policy.delay(1, 3.0) == 3.0
    for failures, low, high in ((1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 4.0, 8.0)):
        assert all(low <= policy.backoff(failures) <= high for _ in range(50))


def _failing(fake: FakeRegistry, times: int, status: int, code: str, headers: dict[str, str] | None = None) -> None:
    remaining = [times]

    async def hook(request: web.Request) -> web.Response | None:
        if request.path.endswith("/manifests/1") and remaining[0] > 0:
            remaining[0] -= 1
            return oci_error(status, code, headers=headers)
        return None

    fake.hooks.append(hook)


async def test_429_with_microsecond_retry_after_uses_floor_and_gives_up(
    fake: FakeRegistry, fake_host: str, make_client: MakeClient
) -> None:
    _failing(fake, 100, 429, "TOOMANYREQUESTS", {"Retry-After": "0.000035"})
    policy = RetryPolicy(attempts=4, retry_after_floor=0.1, backoff_base=0.001)
    clock = RecordingClock()
    client = make_client(fake_host, retry=policy, clock=clock)
    with pytest.raises(RegistryError) as caught:
        await client.repository("a/b").get_manifest("1")
    assert clock.slept == [0.1, 0.1, 0.1]  # the floor, not the registry's 35 microseconds
    assert len(fake.requests("GET", "/manifests/1")) == 4
    assert caught.value.status == 429 and caught.value.codes == ("TOOMANYREQUESTS",)
    assert str(caught.value) == f"{fake_host}: get manifest a/b:1: 429 TOOMANYREQUESTS toomanyrequests (4 attempts)"


async def test_retry_after_beyond_the_cap_fails_at_once(
    fake: FakeRegistry, fake_host: str, make_client: MakeClient
) -> None:
    _failing(fake, 100, 429, "TOOMANYREQUESTS", {"Retry-After": "3600"})
    with pytest.raises(RegistryError, match="asks to retry after 3600 s, longer than the 5 s"):
        await make_client(fake_host).repository("a/b").get_manifest("1")
    assert len(fake.requests("GET", "/manifests/1")) == 1


async def test_503_burst_then_success(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    fake.put_manifest("a/b", "1", manifest_for(b"{}", b"x"))
    _failing(fake, 2, 503, "UNAVAILABLE")
    clock = RecordingClock()
    client = make_client(fake_host, clock=clock)
    manifest = await client.repository("a/b").get_manifest("1")
    assert manifest.data == manifest_for(b"{}", b"x")
    assert len(fake.requests("GET", "/manifests/1")) == 3
    # FAST_RETRY's backoff: half fixed, half random, doubling (0.01 then 0.02 at most).
    assert len(clock.slept) == 2 and 0.005 <= clock.slept[0] <= 0.01 and 0.01 <= clock.slept[1] <= 0.02


async def test_not_found_and_server_errors_carry_oci_codes(
    fake: FakeRegistry, fake_host: str, make_client: MakeClient
) -> None:
    repo = make_client(fake_host).repository("a/b")
    with pytest.raises(NotFound, match=f"^{fake_host}: get manifest a/b:1: 404 MANIFEST_UNKNOWN manifest unknown$"):
        await repo.get_manifest("1")
    _failing(fake, 100, 400, "TAG_INVALID")
    with pytest.raises(RegistryError) as caught:
        await repo.get_manifest("1")
    assert caught.value.status == 400 and caught.value.codes == ("TAG_INVALID",)
    assert len(fake.requests("GET", "/manifests/1")) == 2


async def test_user_agent_and_identity_encoding(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    await make_client(fake_host).ping()
    headers = fake.seen[0].headers
    assert headers["User-Agent"] == f"trivy-mirror/{__version__}"
    assert headers["Accept-Encoding"] == "identity"


async def test_plain_http_chosen_once_for_loopback(fake: FakeRegistry, fake_host: str,
                                                   make_client: MakeClient) -> None:
    client = make_client(fake_host)
    await client.ping()
    await client.ping()
    # One failed https probe (it never reaches the app), then two plain-http pings.
    assert client.requests == 3
    assert len(fake.seen) == 2
    assert str(await client.base_url()) == f"http://{fake_host}"


async def test_public_hosts_stay_on_https(make_client: MakeClient) -> None:
    assert str(await make_client("registry.example").base_url()) == "https://registry.example"
    assert str(await make_client("docker.io").base_url()) == "https://registry-1.docker.io"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_host_is_one_line(make_client: MakeClient) -> None:
    port = _closed_port()
    clock = RecordingClock()
    client = make_client(f"127.0.0.1:{port}", clock=clock)
    with pytest.raises(Unreachable) as caught:
        await client.repository("a/b").resolve("1")
    assert str(caught.value) == f"cannot reach 127.0.0.1:{port}: connection refused (resolve a/b:1, 3 attempts)"
    assert client.requests == 4  # the https probe and three attempts
    assert len(clock.slept) == 2  # a wait between two attempts, none after the last


@pytest.fixture
async def stalled(serve: Serve) -> AsyncIterator[str]:
    """A server that accepts requests and never answers."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    server = await serve(app)
    yield f"127.0.0.1:{server.port}"
    release.set()


async def test_stalled_server_is_detected(stalled: str, make_client: MakeClient) -> None:
    client = make_client(stalled, timeouts=Timeouts(read=0.3, probe=0.3), retry=RetryPolicy(attempts=2,
                                                                                            backoff_base=0.01))
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"timed out waiting for data \(stalled\) \(GET /v2/, 2 attempts\)"):
        await client.ping()
    assert time.monotonic() - started < 3
