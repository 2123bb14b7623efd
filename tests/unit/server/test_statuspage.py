"""``GET /``: the status page, its escaping, its auth and its bounded work."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from trivy_mirror.catalog import assets
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.state import with_attempt
from trivy_mirror.catalog.status import store_statuses
from trivy_mirror.server import statuspage
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

from .conftest import PASSWORD, STATIC_TOKEN, USER, ClientFactory
from .helpers import Artifact, basic, bearer

NOW = datetime.now(UTC)
FRESH = AssetStatus("db", "aquasec/trivy-db:2", "sha256:" + "a" * 64, 41_000_000, NOW - timedelta(hours=2),
                    NOW + timedelta(hours=20), "mirror.gcr.io", NOW - timedelta(minutes=5), "ok", state="fresh")
STALE = AssetStatus("java-db", "aquasec/trivy-java-db:1", "sha256:" + "b" * 64, 99, datetime(2020, 1, 1, tzinfo=UTC),
                    datetime(2020, 1, 2, tzinfo=UTC), state="stale", last_result="failed",
                    last_attempt=NOW, last_message="<script>alert('x')</script> upstream answered 500")


def pre_blocks(page: str) -> list[str]:
    return [html.unescape(block) for block in re.findall(r"<pre>(.*?)</pre>", page, re.S)]


async def test_the_page_shows_assets_states_and_the_trivy_config(make_client: ClientFactory) -> None:
    client = await make_client(statuses=lambda: [FRESH, STALE])
    response = await client.get("/")
    page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    assert response.headers["Cache-Control"] == "no-store"
    assert '<span class="state fresh">fresh</span>' in page and '<span class="state stale">stale</span>' in page
    assert "Not ready: java-db: aquasec/trivy-java-db:1 is stale (NextUpdate 2020-01-02T00:00:00Z has passed)" in page
    assert "41.0 MB" in page and 'title="sha256:' + "a" * 64 + '"' in page
    # trivy-config's own output for the URL the browser used
    host = f"{client.host}:{client.port}"
    trivy_doc = yaml.safe_load(pre_blocks(page)[0])
    assert trivy_doc["db"]["repository"] == [f"{host}/aquasec/trivy-db:2"]
    assert f"--db-repository {host}/aquasec/trivy-db:2" in pre_blocks(page)[2]
    assert "<script" not in page


async def test_everything_is_escaped(make_client: ClientFactory) -> None:
    client = await make_client(statuses=lambda: [STALE])
    # A client-chosen repository name lands in the census: it must come back as text.
    await client.get("/v2/evil%3Cimg%20src=x%3E/manifests/1", headers={"User-Agent": "trivy/0.67.2"})
    page = await (await client.get("/")).text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<img" not in page and "evil&lt;img src=x&gt;:1" in page
    assert "Trivy 0.67.2" in page


async def test_public_url_names_the_mirror_and_a_bad_host_falls_back(make_client: ClientFactory) -> None:
    client = await make_client(ServerSettings(public_url="https://mirror.example/base"))
    page = await (await client.get("/")).text()
    assert "mirror.example/base/aquasec/trivy-db:2" in pre_blocks(page)[0]
    plain = await make_client(ServerSettings(listen="127.0.0.1:5999"))
    page = await (await plain.get("/", headers={"Host": "bad host<>"})).text()
    assert "127.0.0.1:5999/aquasec/trivy-db:2" in pre_blocks(page)[0]


async def test_with_auth_on_the_page_needs_credentials_even_with_anonymous_pull(
        make_client: ClientFactory, htpasswd: Path, token_file: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, token_file=token_file, anonymous_pull=True),
                               statuses=lambda: [FRESH])
    anonymous = await client.get("/")
    assert anonymous.status == 401
    challenges = anonymous.headers.getall("WWW-Authenticate")
    assert challenges[0].startswith("Basic realm=")  # a browser asks for the password
    assert challenges[1].startswith("Bearer realm=")
    assert "aquasec/trivy-db" not in await anonymous.text()
    assert (await client.get("/", headers=basic(USER, "wrong"))).status == 401
    for headers in (basic(USER, PASSWORD), bearer(STATIC_TOKEN)):
        response = await client.get("/", headers=headers)
        assert response.status == 200 and "aquasec/trivy-db:2" in await response.text()


async def test_renders_are_reused_and_bounded(make_client: ClientFactory) -> None:
    calls = []

    def statuses() -> list[AssetStatus]:
        calls.append(1)
        return [FRESH]

    client = await make_client(statuses=statuses)
    for _ in range(3):
        assert (await client.get("/")).status == 200
    assert len(calls) == 1  # one render for a burst of requests
    hosts = [f"mirror{n}.example:5000" for n in range(statuspage.MAX_CACHED + 3)]
    for host in hosts:  # the URL follows the Host header: each is a render, and only the last few are kept
        assert (await client.get("/", headers={"Host": host})).status == 200
    assert len(calls) == 1 + len(hosts)
    await client.get("/", headers={"Host": hosts[-1]})
    assert len(calls) == 1 + len(hosts)  # still cached
    await client.get("/", headers={"Host": hosts[0]})
    assert len(calls) == 2 + len(hosts)  # evicted


async def test_the_last_attempts_are_listed(make_client: ClientFactory, store: Store, db: Artifact) -> None:
    layout = store.layout("aquasec/trivy-db")
    state = layout.read_state()
    for n in range(3):
        state = with_attempt(state, "2", Attempt.now("failed" if n == 1 else "ok", f"attempt number {n}"))
    layout.write_state(state)
    specs = [spec for spec in assets.CATALOG if spec.name == "db"]
    client = await make_client(statuses=lambda: store_statuses(store, specs))
    page = await (await client.get("/")).text()
    assert "last 3 attempts" in page
    assert page.index("attempt number 2") < page.index("attempt number 1") < page.index("attempt number 0")


async def test_an_unreadable_state_is_a_503_page_naming_no_file(make_client: ClientFactory) -> None:
    def broken() -> list[AssetStatus]:
        raise PermissionError(13, "Permission denied", "/srv/store/secret-path")

    client = await make_client(statuses=broken)
    response = await client.get("/")
    page = await response.text()
    assert response.status == 503 and "Permission denied" in page and "secret-path" not in page


async def test_the_page_shows_pins_holds_and_provenance(make_client: ClientFactory) -> None:
    """Who pinned what, when and why; a held candidate with the reason, since when, its digest and each source's
    digest; where the served version came from: everything escaped."""
    candidate = {"digest": "sha256:" + "c" * 64, "source": "one.example/aquasec/trivy-db:2",
                 "first_seen": "2026-11-30T06:00:00Z", "held": "quorum", "detail": "db: held (quorum): 1 of the 2 <b>",
                 "reports": {"one.example/aquasec/trivy-db:2": "sha256:" + "c" * 64,
                             "two.example/aquasec/trivy-db:2": "sha256:" + "d" * 64}}
    held = replace(FRESH, candidate=candidate, held="quorum",
                   provenance={"digest": FRESH.digest, "source": "push by ci", "first_seen": "2026-11-30T05:00:00Z",
                               "published_at": "2026-11-30T05:10:00Z", "decisions": ["push: by ci"]})
    pinned = replace(STALE, pinned={"digest": "sha256:" + "b" * 64, "by": "alice", "at": "2026-11-30T07:00:00Z",
                                    "reason": "INC-1: bad <build>"})
    client = await make_client(statuses=lambda: [held, pinned])
    page = await (await client.get("/")).text()
    trust = page.split("<h2>Pins, holds and provenance</h2>", 1)[1].split("<h2>", 1)[0]
    assert '<span class="state held">held (quorum)</span>' in trust and 'title="sha256:' + "c" * 64 + '"' in trust
    assert "2026-11-30T06:00:00Z" in trust and 'title="sha256:' + "d" * 64 + '"' in trust
    assert "two.example/aquasec/trivy-db:2" in trust and "1 of the 2 &lt;b&gt;" in trust
    assert '<span class="state pinned">pinned</span>' in trust and "by alice" in trust
    assert "2026-11-30T07:00:00Z" in trust and "INC-1: bad &lt;build&gt;" in trust
    assert "from <code>push by ci</code>" in trust and "2026-11-30T05:10:00Z" in trust
    assert "<li>push: by ci</li>" in trust
