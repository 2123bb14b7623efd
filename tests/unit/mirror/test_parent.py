"""``--parent``: parsing, what is derived from it, and its credentials reaching its host only."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.http.transport import Transport
from trivy_mirror.mirror.parent import Parent, merge_vex
from trivy_mirror.registry.credentials import Credentials
from trivy_mirror.vex import VexSource


@pytest.mark.parametrize(("text", "url", "host"), [
    ("http://central:5000", "http://central:5000", "central:5000"),
    ("https://central.internal/", "https://central.internal", "central.internal"),
    ("central:5000", "https://central:5000", "central:5000"),
])
def test_parse(text: str, url: str, host: str) -> None:
    parent = Parent.parse(text)
    assert (parent.url, parent.host, str(parent.prefix)) == (url, host, f"{host}/aquasec")
    assert parent.vex_source("internal") == VexSource("internal", f"{url}/vex/internal")


@pytest.mark.parametrize("text", ["ftp://central", "http://central:5000/sub", "http://u:p@central", "http://"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--parent"):
        Parent.parse(text)


def test_merge_keeps_explicit_first() -> None:
    explicit = [VexSource("a", "https://a.example/x")]
    parent = Parent.parse("http://central:5000")
    merged = merge_vex(explicit, [parent.vex_source("a"), parent.vex_source("b")])
    assert merged == [explicit[0], parent.vex_source("b")]


def test_authorization_header() -> None:
    parent = Parent.parse("http://central:5000")
    assert parent.authorization(None) == {}
    assert parent.authorization(Credentials("u", "p")) == {"central:5000": "Basic dTpw"}
    assert parent.authorization(Credentials("", "", token="t0k")) == {"central:5000": "Bearer t0k"}


async def test_listing_sends_credentials_to_the_parent_only() -> None:
    """The listing is read with the credentials; a redirect to another host (``localhost`` is another name for
    the same server here) gets none."""
    seen: list[tuple[str, str | None]] = []

    async def listing(request: web.Request) -> web.StreamResponse:
        seen.append((request.host, request.headers.get("Authorization")))
        if request.host.startswith("127.0.0.1"):
            raise web.HTTPFound(f"http://localhost:{request.url.port}/vex/")
        return web.json_response({"repositories": [{"name": "b"}, {"name": "a"}, {"name": "a"}]})

    app = web.Application()
    app.router.add_get("/vex/", listing)
    async with TestServer(app, host="127.0.0.1") as server:
        port = server.port
        parent = Parent.parse(f"http://127.0.0.1:{port}")
        transport = Transport()
        try:
            sources = await parent.vex_sources(transport, Credentials("u", "p"))
        finally:
            await transport.close()
    assert [source.name for source in sources] == ["a", "b"]
    assert seen == [(f"127.0.0.1:{port}", "Basic dTpw"), (f"localhost:{port}", None)]


async def test_not_a_listing() -> None:
    async def listing(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"repositories": [{"name": "../x"}]})

    app = web.Application()
    app.router.add_get("/vex/", listing)
    async with TestServer(app, host="127.0.0.1") as server:
        transport = Transport()
        try:
            with pytest.raises(MirrorError, match="not a trivy-mirror VEX listing"):
                await Parent.parse(f"http://127.0.0.1:{server.port}").vex_sources(transport, None)
        finally:
            await transport.close()
