"""Paginated listings of the registry client: the referrers API and the tag list follow ``rel="next"`` links,
relative or absolute, on the registry's own host only, for at most :data:`MAX_PAGES` pages."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from trivy_mirror.errors import MirrorError, RegistryError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.registry.pages import MAX_PAGES

from .conftest import MakeClient, Serve
from .fake_registry import OCI_MANIFEST, FakeRegistry, manifest_for

REPOSITORY = "aquasec/trivy-db"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrerPages:
    """A referrers API answering in pages: page N lists one referrer and links to page N+1 as ``link(N+1)``
    says (None: no link)."""

    def __init__(self, fake: FakeRegistry, subject: Digest, pages: int, link: str | None = "relative") -> None:
        self.subject = subject
        self.pages = pages
        self.link = link
        self.host = ""
        fake.hooks.append(self.answer)

    def path(self, page: int) -> str:
        return f"/v2/{REPOSITORY}/referrers/{self.subject}?page={page}"

    @staticmethod
    def entry(page: int) -> dict[str, object]:
        return {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(f"referrer {page}".encode())), "size": 10,
                "artifactType": "application/vnd.example.signature.v1"}

    async def answer(self, request: web.Request) -> web.Response | None:
        if "/referrers/" not in request.path:
            return None
        page = int(request.query.get("page", "1"))
        headers = {}
        if page < self.pages and self.link is not None:
            following = self.path(page + 1)
            target = {"relative": following, "absolute": f"http://{request.host}{following}",
                      "elsewhere": f"http://{self.host}{following}", "back": self.path(1)}[self.link]
            headers["Link"] = f'<{target}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [self.entry(page)]}
        return web.Response(text=json.dumps(body), content_type=OCI_INDEX, headers=headers)


def _subject(fake: FakeRegistry) -> Digest:
    return Digest.parse(fake.put_manifest(REPOSITORY, "2", manifest_for(b"c", b"l")))


@pytest.mark.parametrize("link", ["relative", "absolute"])
async def test_referrers_follow_the_next_link(fake: FakeRegistry, fake_host: str, make_client: MakeClient,
                                              link: str) -> None:
    pages = ReferrerPages(fake, _subject(fake), pages=2, link=link)
    found = await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert [str(d.digest) for d in found] == [pages.entry(1)["digest"], pages.entry(2)["digest"]]
    assert [s.query.get("page") for s in fake.requests("GET", "/referrers/")] == [None, "2"]


async def test_referrers_without_a_link_are_one_page(fake: FakeRegistry, fake_host: str,
                                                     make_client: MakeClient) -> None:
    pages = ReferrerPages(fake, _subject(fake), pages=2, link=None)
    found = await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert [str(d.digest) for d in found] == [pages.entry(1)["digest"]]
    assert len(fake.requests("GET", "/referrers/")) == 1


async def test_a_link_back_to_a_read_page_ends_the_listing(fake: FakeRegistry, fake_host: str,
                                                           make_client: MakeClient) -> None:
    pages = ReferrerPages(fake, _subject(fake), pages=3, link="back")
    found = await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert [str(d.digest) for d in found] == [pages.entry(1)["digest"], pages.entry(1)["digest"]]
    assert [s.query.get("page") for s in fake.requests("GET", "/referrers/")] == [None, "1"]


async def test_a_next_link_to_another_host_is_refused(fake: FakeRegistry, fake_host: str, serve: Serve,
                                                      make_client: MakeClient) -> None:
    other = FakeRegistry()
    pages = ReferrerPages(fake, _subject(fake), pages=2, link="elsewhere")
    pages.host = f"127.0.0.1:{(await serve(other.app())).port}"
    with pytest.raises(RegistryError, match=f"links the next page to another host .*{pages.host}"):
        await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert other.seen == []


async def test_referrers_pages_are_bounded(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    pages = ReferrerPages(fake, _subject(fake), pages=MAX_PAGES + 10)
    with pytest.raises(RegistryError, match=f"more than {MAX_PAGES} pages"):
        await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert len(fake.requests("GET", "/referrers/")) == MAX_PAGES


async def test_a_later_page_failing_is_an_error_not_the_fallback(fake: FakeRegistry, fake_host: str,
                                                                  make_client: MakeClient) -> None:
    """Only the first answer's 404 means "no referrers API"; a page missing later is the registry's error."""
    pages = ReferrerPages(fake, _subject(fake), pages=2)

    async def lose_page_two(request: web.Request) -> web.Response | None:
        if request.query.get("page") == "2":
            return web.json_response({"errors": [{"code": "NAME_UNKNOWN", "message": "gone"}]}, status=404)
        return None

    fake.hooks.insert(0, lose_page_two)
    with pytest.raises(MirrorError, match="404 NAME_UNKNOWN gone"):
        await make_client(fake_host).repository(REPOSITORY).referrers(pages.subject)
    assert not fake.requests("GET", "/manifests/sha256-")  # the fallback tag was not read


async def test_tags_pages_are_bounded(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    for i in range(MAX_PAGES + 1):
        fake.manifests[(REPOSITORY, f"t{i:04d}")] = (b"{}", OCI_MANIFEST)
    fake.page_size = 1
    with pytest.raises(RegistryError, match=f"list tags of {REPOSITORY}: the listing has more than {MAX_PAGES}"):
        await make_client(fake_host).repository(REPOSITORY).tags()
    assert len(fake.requests("GET", "/tags/list")) == MAX_PAGES
    fake.seen.clear()
    fake.page_size = 2  # 51 pages: within the bound
    assert len(await make_client(fake_host).repository(REPOSITORY).tags()) == MAX_PAGES + 1


async def test_a_tags_link_to_another_host_is_refused(fake: FakeRegistry, fake_host: str, serve: Serve,
                                                      make_client: MakeClient) -> None:
    other = FakeRegistry()
    elsewhere = f"127.0.0.1:{(await serve(other.app())).port}"
    fake.put_manifest(REPOSITORY, "2", manifest_for(b"c", b"l"))

    async def link_away(request: web.Request) -> web.Response | None:
        if request.path.endswith("/tags/list"):
            return web.json_response({"name": REPOSITORY, "tags": ["2"]}, headers={
                "Link": f'<http://{elsewhere}/v2/{REPOSITORY}/tags/list?last=2>; rel="next"'})
        return None

    fake.hooks.append(link_away)
    with pytest.raises(RegistryError, match="another host"):
        await make_client(fake_host).repository(REPOSITORY).tags()
    assert other.seen == []
