"""Property tests over raw requests: whatever the path, reference, digest, Range or Authorization header,
the server never answers 5xx and never serves a byte of a file outside the store.

Requests go through http.client on a real socket, so paths reach the server as written (no client-side
normalisation of ``..`` or percent escapes).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trivy_mirror.server.app import create_app, runner_options
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .conftest import PASSWORD, USER
from .helpers import Artifact, populate

SECRET = b"TOP-SECRET-do-not-serve-0xC0FFEE"


class ThreadedServer:
    """The app on a loopback port, run by an event loop in a thread of its own (hypothesis tests are sync)."""

    def __init__(self, root: Path, htpasswd: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store(root / "store")
        self.htpasswd = htpasswd
        self.port = 0
        self.db: Artifact | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        self.db = await populate(self.store, "aquasec/trivy-db", "2", bytes(range(256)) * 40)
        await populate(self.store, "aquasec/trivy-checks", "latest", b"checks bundle")
        app = create_app(ServerSettings(htpasswd=self.htpasswd, anonymous_pull=True, allow_push=True,
                                        push_users=frozenset({USER}), max_uploads=8), self.store)
        self.runner = web.AppRunner(app, **runner_options(app))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    import bcrypt

    root = tmp_path_factory.mktemp("props")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n")
    # Secrets next to the store, inside its temp area, and in a repository directory outside any blob path.
    (root / "secret.txt").write_bytes(SECRET)
    with ThreadedServer(root, htpasswd) as running:
        (running.store.root / ".tmp").mkdir(exist_ok=True)
        assert running.db is not None
        (running.store.root / ".tmp" / running.db.layer[0].digest.hex).write_bytes(SECRET)
        (running.store.root / "aquasec" / "secret").write_bytes(SECRET)
        (running.store.root / "aquasec" / "trivy-db" / "secret.txt").write_bytes(SECRET)
        yield running


SEGMENTS = st.one_of(
    st.sampled_from(["aquasec", "trivy-db", "aquasecurity", "trivy-checks", "..", ".", "", "%2e%2e", "%2F",
                     "blobs", "index.json", "secret", "secret.txt", ".tmp", "sha256", "uploads", "manifests",
                     "tags", "list", "_catalog", "v2", "%00", "a" * 300]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=20),
)
HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=130)


@st.composite
def references(draw: st.DrawFn) -> str:
    return draw(st.one_of(
        st.sampled_from(["2", "latest", "1", "../../secret.txt", "..%2F..%2Fsecret.txt", "%2e%2e", ""]),
        st.builds(lambda algo, hex_: f"{algo}:{hex_}", st.sampled_from(["sha256", "sha512", "md5", "SHA256", ""]),
                  HEX),
        SEGMENTS,
    ))


@st.composite
def paths(draw: st.DrawFn) -> str:
    name = "/".join(draw(st.lists(SEGMENTS, min_size=0, max_size=5)))
    endpoint = draw(st.sampled_from(["manifests/{r}", "blobs/{r}", "tags/list", "blobs/uploads/{r}", "{r}", ""]))
    path = f"/v2/{name}/{endpoint.format(r=draw(references()))}"
    if draw(st.booleans()):
        path += "?" + draw(st.sampled_from(["n=5", "n=-1", "last=%ff", "digest=sha256:00", "mount=x&from=..",
                                            "n=99999999999999999999", "last=", "n=%C2%B2"]))
    return path


RANGES = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(-5, 20000).map(str) | st.just(""),
              st.integers(-5, 20000).map(str) | st.just("")),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.sampled_from(["bytes=0-0,5-9", "bytes=-0", "items=0-5", "bytes=99999999999999999999999-"]),
)
AUTHORIZATION = st.one_of(
    st.none(),
    st.just("Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()),
    st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=40)),
    st.builds(lambda scheme, value: f"{scheme} {value}", st.sampled_from(["Basic", "Bearer", "Digest", "bearer"]),
              st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)),
)


def assert_safe(status: int, body: bytes) -> None:
    assert status < 500, (status, body[:300])
    assert SECRET not in body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "HEAD", "GET", "GET", "PUT", "POST", "PATCH", "DELETE"]), path=paths(),
       range_header=st.none() | RANGES, authorization=AUTHORIZATION, body=st.none() | st.binary(max_size=64))
def test_no_5xx_and_nothing_outside_the_store(server: ThreadedServer, method: str, path: str,
                                              range_header: str | None, authorization: str | None,
                                              body: bytes | None) -> None:
    headers = {}
    if range_header is not None:
        headers["Range"] = range_header
    if authorization is not None:
        headers["Authorization"] = authorization
    status, _, content = server.request(method, path, headers, body)
    assert_safe(status, content)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(range_header=RANGES)
def test_blob_ranges_are_exact(server: ThreadedServer, range_header: str) -> None:
    assert server.db is not None
    data = server.db.layer_bytes
    status, headers, content = server.request("GET", f"/v2/aquasec/trivy-db/blobs/{server.db.layer_digest}",
                                              {"Range": range_header})
    assert_safe(status, content)
    assert status in (200, 206, 416)
    if status == 200:
        assert content == data
    elif status == 206:
        found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers["Content-Range"])
        assert found is not None
        start, end, total = map(int, found.groups())
        assert total == len(data)
        assert content == data[start : end + 1]
        assert int(headers["Content-Length"]) == len(content)
    else:
        assert headers["Content-Range"] == f"bytes */{len(data)}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.lists(SEGMENTS, min_size=1, max_size=4).map("/".join), reference=references())
def test_valid_requests_answer_only_store_content(server: ThreadedServer, name: str, reference: str) -> None:
    """A 200 manifest or blob answer is exactly a stored manifest or blob."""
    assert server.db is not None
    known = {server.db.manifest.data, server.db.layer_bytes, server.db.config[1]}
    for kind in ("manifests", "blobs"):
        status, _, content = server.request("GET", f"/v2/{name}/{kind}/{reference}", {})
        assert_safe(status, content)
        if status == 200 and "trivy-db" in name:
            assert content in known


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "HEAD"]), query=st.text(max_size=60).map(quote),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                     "multipart/form-data", "text/plain"]),
       body=st.binary(max_size=200), authorization=AUTHORIZATION)
def test_token_endpoint_never_fails(server: ThreadedServer, method: str, query: str, content_type: str, body: bytes,
                                    authorization: str | None) -> None:
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, _, content = server.request(method, f"/token?{query}", headers, body if method == "POST" else None)
    assert_safe(status, content)


CONDITIONAL = st.dictionaries(
    st.sampled_from(["If-Match", "If-None-Match", "If-Range", "If-Modified-Since", "If-Unmodified-Since",
                     "Accept-Encoding", "Accept", "Content-Range", "Content-Type"]),
    st.one_of(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
              st.sampled_from(['"abc"', 'W/"x"', "*", "Tue, 15 Nov 1994 08:12:31 GMT", "gzip, br", "bytes 0-1/2"])),
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=CONDITIONAL, kind=st.sampled_from(["manifests/2", "blobs/{layer}", "tags/list"]),
       method=st.sampled_from(["GET", "HEAD"]))
def test_conditional_and_odd_headers(server: ThreadedServer, headers: dict[str, str], kind: str, method: str) -> None:
    assert server.db is not None
    path = "/v2/aquasec/trivy-db/" + kind.format(layer=server.db.layer_digest)
    status, _, content = server.request(method, path, headers)
    assert_safe(status, content)
    assert status in (200, 206, 304, 412, 416)
