"""HTTP fetching for VEX repositories over the registry client's :class:`Transport` (TLS, proxies, retries).

The transport never follows redirects (registry auth needs that), so this module does: GitHub archive URLs
redirect to ``codeload.github.com``. Credentials written in a URL (``https://user:pass@host/``) go to that URL
only, never to a redirect target; nor do the ``authorization`` headers given per host (a parent mirror's
credentials, see :mod:`trivy_mirror.mirror.parent`). Plain HTTP is allowed where Trivy allows it without a flag
(loopback, RFC 1918) and anywhere with ``--insecure``; a redirect may not downgrade to HTTP otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.engine.events import Event, Item, Listener
from trivy_mirror.errors import MirrorError, RefusedCandidate, UsageError
from trivy_mirror.http.failures import error_from_response
from trivy_mirror.http.transport import Transport, host_label, wire_errors
from trivy_mirror.oci.reference import is_plain_http_allowed

MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Download:
    """A body saved to a file: its size and the server's ``ETag`` (None when it sent none)."""

    size: int
    etag: str | None


class Fetcher:
    def __init__(self, transport: Transport, authorization: Mapping[str, str] | None = None) -> None:
        self.transport = transport
        self.authorization = dict(authorization or {})
        """``Authorization`` header values by ``host[:port]``: sent to that host only."""

    async def get_bytes(self, url: str, *, what: str, max_bytes: int) -> bytes:
        """The body of a GET (a small document such as the manifest); RefusedCandidate beyond ``max_bytes``."""
        response = await self._request("GET", url, what=what)
        async with response, wire_errors(host_label(response.url), f"fetch {what}"):
            _check_length(response, what, max_bytes)
            data = await response.content.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RefusedCandidate(f"{what} is larger than {max_bytes} bytes")
        return data

    async def download(self, url: str, target: Path, *, what: str, etag: str | None, max_bytes: int,
                       events: Listener | None = None, name: str | None = None) -> Download | None:
        """Stream a GET into ``target``; None when the server answers 304 to ``If-None-Match: etag``.

        ``events`` receives the download as the item ``name`` (``what`` by default): ``start`` (with the
        Content-Length, when sent), a ``bytes`` event per chunk, ``done`` or ``failed``; ``skipped`` on a 304.
        """
        emit = events or _ignore
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._request("GET", url, what=what, headers=headers)
        async with response, wire_errors(host_label(response.url), f"download {what}"):
            if response.status == 304:
                await emit(Event("skipped", Item(name or what)))
                return None
            _check_length(response, what, max_bytes)
            item = Item(name or what, response.content_length or 0)
            await emit(Event("start", item))
            try:
                size = await _save(response, target, what, max_bytes, item, emit)
            except BaseException:
                await emit(Event("failed", item))
                raise
            await emit(Event("done", item))
            return Download(size, response.headers.get("ETag"))

    async def changed(self, url: str, *, what: str, etag: str | None) -> bool:
        """Whether a GET would bring new content: a HEAD with ``If-None-Match`` (for dry runs)."""
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._request("HEAD", url, what=what, headers=headers)
        response.release()
        return response.status != 304

    async def _request(self, method: str, url: str, *, what: str,
                       headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """The final response (2xx or 304) after following redirects; the mapped error for anything else."""
        current = URL(url, encoded=True)
        previous_scheme = current.scheme
        for _ in range(MAX_REDIRECTS + 1):
            _check_scheme(current, previous_scheme, self.transport.insecure)
            operation = f"{'fetch' if method == 'GET' else 'check'} {what}"
            sent = {**(headers or {}), **_authorization(self.authorization, current)}
            response = await self.transport.send(method, current, operation=operation, headers=sent)
            if response.status in _REDIRECTS and "Location" in response.headers:
                location = response.headers["Location"]
                response.release()
                previous_scheme = current.scheme
                current = current.with_user(None).join(URL(location, encoded=True))
                continue
            if 200 <= response.status < 300 or response.status == 304:
                return response
            async with response:
                raise await error_from_response(response, host_label(current), operation)
        raise MirrorError(f"{host_label(current)}: fetch {what}: more than {MAX_REDIRECTS} redirects")


async def _save(response: aiohttp.ClientResponse, target: Path, what: str, max_bytes: int, item: Item,
                emit: Listener) -> int:
    size = 0
    with target.open("wb") as file:
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise RefusedCandidate(f"{what} is larger than {max_bytes} bytes")
            file.write(chunk)
            await emit(Event("bytes", item, chunk))
    return size


async def _ignore(_event: Event) -> None:
    pass


def _authorization(authorization: Mapping[str, str], url: URL) -> dict[str, str]:
    header = authorization.get(host_label(url))
    return {"Authorization": header} if header else {}


def _check_length(response: aiohttp.ClientResponse, what: str, max_bytes: int) -> None:
    if response.content_length is not None and response.content_length > max_bytes:
        raise RefusedCandidate(f"{what} is {response.content_length} bytes, more than the {max_bytes} allowed")


def _check_scheme(url: URL, previous_scheme: str, insecure: bool) -> None:
    if url.scheme not in ("http", "https") or not url.host:
        raise MirrorError(f"cannot fetch {url.scheme}: URLs; VEX repositories are served over http(s)")
    if url.scheme == "http" and not insecure and not is_plain_http_allowed(host_label(url)):
        change = " (redirected from https)" if previous_scheme == "https" else ""
        raise UsageError(f"{host_label(url)}: plain HTTP{change} is only allowed to loopback and private "
                         f"addresses; use https or --insecure")
