"""The read side of the registry API: ping, manifests, blobs, tag lists and the catalog.

Manifests come from the in-memory snapshot (one dict lookup per request); blobs are sent with sendfile by
``web.FileResponse``, which also answers ``Range`` (206/416) and HEAD.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from trivy_mirror.oci import mediatype
from trivy_mirror.server.audit import StoreAudit
from trivy_mirror.server.cache import ManifestCache, Snapshot
from trivy_mirror.server.errors import API_VERSION_HEADER, OciError
from trivy_mirror.server.params import paginate, parse_digest, repository_of
from trivy_mirror.server.routes import Route
from trivy_mirror.server.storage import ServedStore

BLOB_CHUNK = 256 * 1024
"""Read size when sendfile is not available (TLS)."""


class PullApi:
    """Read-only handlers over the store, answering the alias names too."""

    def __init__(self, store: ServedStore, cache: ManifestCache, aliases: Mapping[str, str],
                 audit: StoreAudit | None = None) -> None:
        self._store = store
        self._audit = audit
        self._root = os.path.realpath(store.root)
        self._cache = cache
        self._aliases = aliases

    async def ping(self, request: web.Request, route: Route) -> web.Response:
        return web.json_response({}, headers=API_VERSION_HEADER)

    async def manifest(self, request: web.Request, route: Route) -> web.Response:
        snapshot = await self._snapshot(route.name)
        served = snapshot.manifests.get(route.reference)
        if served is None:
            if ":" in route.reference:
                parse_digest(route.reference)
            raise OciError("MANIFEST_UNKNOWN", f"manifest {route.reference[:140]!r} is not in {route.name}")
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and served.etag in if_none_match:
            return web.Response(status=304, headers=served.headers)
        return web.Response(body=served.body, headers=served.headers)

    async def blob(self, request: web.Request, route: Route) -> web.StreamResponse:
        repository = repository_of(route.name, self._aliases)
        digest = parse_digest(route.reference)
        layout = self._cache.layout(repository)
        path = self._served_file(layout.blob_path(digest)) if layout is not None else None
        if path is not None and self._audit is not None and self._audit.refuses(path):
            path = None  # found corrupt: no client gets bytes that fail its digest check
        if path is None:
            if await self._cache.get(repository) is None:
                raise OciError("NAME_UNKNOWN", f"repository {route.name!r} is not in this mirror")
            raise OciError("BLOB_UNKNOWN", f"blob {digest} is not in {route.name}")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": str(digest),
                   **API_VERSION_HEADER}
        return web.FileResponse(path, chunk_size=BLOB_CHUNK, headers=headers)

    async def referrers(self, request: web.Request, route: Route) -> web.Response:
        """The manifests whose subject is the digest, as an image index; an empty one for none, whether or not
        the subject (or the repository) exists. ``artifactType`` filters, and the answer says it did."""
        repository = repository_of(route.name, self._aliases)
        digest = parse_digest(route.reference)
        snapshot = await self._cache.get(repository)
        found = snapshot.referrers.get(str(digest), ()) if snapshot is not None else ()
        headers = {"Content-Type": mediatype.OCI_INDEX, **API_VERSION_HEADER}
        wanted = request.query.getall("artifactType", [])
        if wanted:
            found = tuple(d for d in found if d.artifact_type in wanted)
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": [d.to_json() for d in found]}
        return web.Response(body=json.dumps(body).encode(), headers=headers)

    async def tags(self, request: web.Request, route: Route) -> web.Response:
        snapshot = await self._snapshot(route.name)
        page, headers = paginate(snapshot.tags, request)
        return web.json_response({"name": route.name, "tags": page}, headers={**headers, **API_VERSION_HEADER})

    async def catalog(self, request: web.Request, route: Route) -> web.Response:
        repositories = sorted(await asyncio.to_thread(self._store.repositories))
        page, headers = paginate(repositories, request)
        return web.json_response({"repositories": page}, headers={**headers, **API_VERSION_HEADER})

    async def _snapshot(self, name: str) -> Snapshot:
        snapshot = await self._cache.get(repository_of(name, self._aliases))
        if snapshot is None:
            raise OciError("NAME_UNKNOWN", f"repository {name!r} is not in this mirror")
        return snapshot

    def _served_file(self, path: Path) -> Path | None:
        """A regular file inside the store root once every link is resolved: names and digests are validated,
        this is the last fence against a link planted in the store pointing out of it."""
        real = os.path.realpath(path)
        if os.path.commonpath((real, self._root)) != self._root:
            return None
        try:
            return Path(real) if stat.S_ISREG(os.stat(real).st_mode) else None
        except OSError:
            return None
