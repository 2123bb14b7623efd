"""Serving mirrored VEX repositories: repository NAME is a VEX repository at ``PUBLIC_URL/vex/NAME``.

* ``GET``/``HEAD /vex/NAME/.well-known/vex-repository.json``: the upstream manifest with one location,
  ``PUBLIC_URL/vex/NAME/archive.tar.gz``. Trivy caches a manifest for ever (TRIVY-ASSETS.md section 7.2), so that
  URL never changes: new versions appear behind it.
* ``GET``/``HEAD /vex/NAME/archive.tar.gz``: the repacked archive with a strong ``ETag`` (its digest),
  ``Last-Modified`` and ``Content-Length``; ``If-None-Match`` gives 304, which is what Trivy's daily HEAD and
  GET get while nothing changed. Ranges work too. Trivy before 0.73 cannot take a 304 there and always gets
  the whole archive (see :data:`FIRST_TRIVY_TAKING_VEX_304`).
* ``GET /vex/``: ``{"repositories": [{"name": ..., "url": ...}]}``, the repositories served now, sorted by
  name; ``trivy-config`` reads it to enable exactly those.

Reads never lock: ``repository.json`` is replaced atomically and archives are content-addressed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.helpers import ETag

from trivy_mirror.errors import InvalidReference, MirrorError
from trivy_mirror.oci.reference import validate_registry
from trivy_mirror.trivyagent import Version, trivy_version
from trivy_mirror.vex.listing import LISTING_PATH
from trivy_mirror.vex.manifest import RepositoryManifest
from trivy_mirror.vex.source import MANIFEST_FILE
from trivy_mirror.vex.storage import StoreRoot, VexRepository, VexState, served_names

ARCHIVE_FILE = "archive.tar.gz"
ARCHIVE_TYPE = "application/gzip"
SEND_CHUNK = 256 * 1024
_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"
FIRST_TRIVY_TAKING_VEX_304: Version = (0, 73, 0)
"""Trivy before 0.73 moves its cached VEX repository away before the conditional GET and does not restore it on
a 304, so a 304 leaves it with no VEX at all and every later scan silently runs without it
(aquasecurity/trivy#10958, fixed by PR #10307 in v0.73.0). Older clients get a full 200 instead."""

GO_DEFAULT_AGENT = "Go-http-client/"
"""What Trivy 0.59 sends on its VEX requests (no ``trivy/`` agent there yet, TRIVY-ASSETS.md 14): such a client
may be an old Trivy, so it never gets a 304 on an archive either."""

NO_304_KEY = web.RequestKey("trivy_mirror_vex_no_304", bool)
"""Set on an archive request whose ``If-None-Match`` matched but whose client cannot take a 304."""

Signature = tuple[int, int, int]
"""(inode, mtime in ns, size) of ``repository.json``: replaced atomically, so a new version changes it."""

Authorize = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
"""Checks a request's credentials: None to go on, or the response (401, 403) to send instead."""


def archive_url(base_url: str, name: str) -> str:
    """The one location the mirror's manifest for ``name`` ever names."""
    return f"{base_url.rstrip('/')}/vex/{name}/{ARCHIVE_FILE}"


def repository_url(base_url: str, name: str) -> str:
    """The URL a client's ``repository.yaml`` names for ``name``."""
    return f"{base_url.rstrip('/')}/vex/{name}"


def takes_304(user_agent: str | None) -> bool:
    """Whether the client survives a 304 on a VEX archive: anything but a Trivy older than 0.73 (or Go's
    default agent, which old Trivy sends)."""
    if user_agent is not None and user_agent.startswith(GO_DEFAULT_AGENT):
        return False
    version = trivy_version(user_agent)
    return version is None or version >= FIRST_TRIVY_TAKING_VEX_304


def add_vex_routes(app: web.Application, store: StoreRoot, public_url: str | None, *,
                   authorize: Authorize | None = None, route_key: web.RequestKey[str] | None = None) -> None:
    """Add the VEX routes to ``app``. Without ``public_url`` the manifest names the host the client used.

    ``authorize`` runs first on every request; ``route_key`` receives the route label (``vex-manifest``,
    ``vex-archive``, ``vex-list``) for the server's access log and metrics.
    """
    handlers = _VexHandlers(store.root, public_url, authorize, route_key)
    app.router.add_get(LISTING_PATH, handlers.listing)
    app.router.add_get(f"/vex/{{name:{_NAME}}}/.well-known/{MANIFEST_FILE}", handlers.manifest)
    app.router.add_get(f"/vex/{{name:{_NAME}}}/{ARCHIVE_FILE}", handlers.archive)


class DigestFileResponse(web.FileResponse):
    """A FileResponse validated by the content digest instead of aiohttp's mtime-and-size tag.

    The digest is a strong ETag that every replica and every restore of the store agrees on; aiohttp's own
    conditional handling (If-None-Match, If-Match, If-Range by date, Range, HEAD) is kept.
    """

    def __init__(self, path: Path, digest: str, *, allow_304: bool = True, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._digest = digest
        self._allow_304 = allow_304
        self.headers[hdrs.ETAG] = f'"{digest}"'

    def _etag_match(self, etag_value: str, etags: tuple[ETag, ...], *, weak: bool) -> bool:  # type: ignore[override]
        if weak and not self._allow_304:
            return False  # aiohttp matches If-None-Match weakly (If-Match strongly): no 304 for this client
        return web.FileResponse._etag_match(self._digest, etags, weak=weak)

    @property
    def etag(self) -> ETag | None:
        return ETag(value=self._digest)

    @etag.setter
    def etag(self, value: ETag | str | None) -> None:
        self.headers[hdrs.ETAG] = f'"{self._digest}"'


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": message}, status=404)


class _VexHandlers:
    def __init__(self, root: Path, public_url: str | None, authorize: Authorize | None,
                 route_key: web.RequestKey[str] | None) -> None:
        self._root = root
        self._public_url = public_url.rstrip("/") if public_url else None
        self._authorize = authorize
        self._route_key = route_key
        self._states: dict[str, tuple[Signature, VexState]] = {}
        self._loading: dict[str, tuple[Signature, asyncio.Future[VexState]]] = {}
        """Reads of ``repository.json`` in flight, one per repository at a time: a herd of clients arriving as
        a new version lands waits for the same read. Keyed by names whose state file exists, so bounded."""

    async def listing(self, request: web.Request) -> web.StreamResponse:
        if self._route_key is not None:
            request[self._route_key] = "vex-list"
        if self._authorize is not None:
            denied = await self._authorize(request)
            if denied is not None:
                return denied
        base = self._public_url or _request_base(request)
        names = await asyncio.to_thread(served_names, self._root)
        body = {"repositories": [{"name": name, "url": repository_url(base, name)} for name in names]}
        return web.json_response(body, headers={"Cache-Control": "no-cache"})

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        denied, repository, state = await self._open(request, "vex-manifest")
        if denied is not None:
            return denied
        if state is None or state.current is None or state.manifest is None:
            return _not_found(f"VEX repository {repository.name!r} is not in this mirror")
        base = self._public_url or _request_base(request)
        try:
            document = RepositoryManifest.from_json(state.manifest).served(archive_url(base, repository.name))
        except MirrorError as err:  # stored by an older version with other rules; never for a synced manifest
            return _not_found(f"VEX repository {repository.name!r} has no usable manifest: {err}")
        body = json.dumps(document, indent=2).encode() + b"\n"
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache"})

    async def archive(self, request: web.Request) -> web.StreamResponse:
        denied, repository, state = await self._open(request, "vex-archive")
        if denied is not None:
            return denied
        if state is None or state.current is None:
            return _not_found(f"VEX repository {repository.name!r} is not in this mirror")
        path = repository.blob_path(state.current.digest)
        if not path.is_file():
            return _not_found(f"the archive of VEX repository {repository.name!r} is missing from the store")
        digest = state.current.digest
        allow_304 = takes_304(request.headers.get(hdrs.USER_AGENT))
        if not allow_304 and any(tag.value in (digest, "*") for tag in request.if_none_match or ()):
            request[NO_304_KEY] = True
        return DigestFileResponse(path, digest, allow_304=allow_304, chunk_size=SEND_CHUNK,
                                  headers={hdrs.CONTENT_TYPE: ARCHIVE_TYPE, "Cache-Control": "no-cache"})

    async def _open(self, request: web.Request,
                    route: str) -> tuple[web.StreamResponse | None, VexRepository, VexState | None]:
        if self._route_key is not None:
            request[self._route_key] = route
        repository = VexRepository(self._root, request.match_info["name"])
        if self._authorize is not None:
            denied = await self._authorize(request)
            if denied is not None:
                return denied, repository, None
        return None, repository, await self._state(repository)

    async def _state(self, repository: VexRepository) -> VexState | None:
        """The repository's state, re-read only when ``repository.json`` was replaced."""
        try:
            st = os.stat(repository.state_path)
        except OSError:
            self._states.pop(repository.name, None)
            return None
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._states.get(repository.name)
        if cached is not None and cached[0] == signature:
            return cached[1]
        inflight = self._loading.get(repository.name)
        if inflight is None or inflight[0] != signature:
            future = asyncio.ensure_future(self._load(repository, signature))
            self._loading[repository.name] = (signature, future)
            future.add_done_callback(functools.partial(self._loaded, repository.name))
            inflight = (signature, future)
        return await asyncio.shield(inflight[1])

    async def _load(self, repository: VexRepository, signature: Signature) -> VexState:
        state = await asyncio.to_thread(repository.load)
        self._states[repository.name] = (signature, state)
        return state

    def _loaded(self, name: str, future: asyncio.Future[VexState]) -> None:
        if self._loading.get(name, (None, None))[1] is future:
            del self._loading[name]
        if not future.cancelled():
            future.exception()  # retrieved: the waiters got it; no "never retrieved" warning when none waits


def _request_base(request: web.Request) -> str:
    """The client's scheme and Host when Host is a plain ``host[:port]``, else the address it connected to: a
    forged Host must not put another server's URL into the manifest Trivy caches for ever."""
    try:
        validate_registry(request.host)
    except InvalidReference:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not isinstance(sockname, tuple):
            return f"{request.scheme}://localhost"
        host, port = sockname[0], sockname[1]
        return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    return f"{request.scheme}://{request.host}"
