"""DELETE of manifests (by digest, or a tag), and of blobs: only with ``allow_delete``, for push credentials.

What a deletion removes disappears from the API at once (the answer comes after the snapshot is reloaded);
the bytes go later, through the garbage collector's grace period, so downloads already running finish. Two
things are refused, so the store stays a valid OCI image layout and scanners keep what they read:

- the version a catalog repository's tag serves (``aquasec/trivy-db:2`` and the others, aliases included),
  by tag or by digest: ``DENIED``. Replace it by pushing (or syncing) a newer version; older versions and the
  referrers attached to them may be deleted.
- a blob that a manifest in the repository still references: ``DENIED`` naming the manifest; delete the
  manifest first. Likewise a manifest served only as the child of an index (pushed with it, not by digest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from trivy_mirror.errors import InvalidReference, StoreError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.reference import validate_tag
from trivy_mirror.server.cache import ManifestCache
from trivy_mirror.server.catalogpush import CATALOG_REPOSITORIES
from trivy_mirror.server.errors import API_VERSION_HEADER, OciError
from trivy_mirror.server.params import parse_digest, repository_of
from trivy_mirror.server.routes import Route
from trivy_mirror.server.storage import ServedLayout, push_lock

log = logging.getLogger(__name__)


class DeleteApi:
    """The DELETE handlers; ``gc_grace`` is the grace period the freed blobs wait out."""

    def __init__(self, cache: ManifestCache, aliases: Mapping[str, str], gc_grace: float) -> None:
        self._cache = cache
        self._aliases = aliases
        self._gc_grace = gc_grace

    async def manifest(self, request: web.Request, route: Route) -> web.Response:
        layout = await self._existing(route.name)
        if ":" in route.reference:
            digest = parse_digest(route.reference)
            self._refuse_served(layout, digest=digest)
            deleted = await self._change(layout, lambda: layout.delete_manifest(digest), route)
            if not deleted and await self._parent_of(layout, digest) is not None:
                raise OciError("DENIED", f"manifest {digest} is a child of an index in {route.name}; delete the "
                                         f"index first")
        else:
            try:
                tag = validate_tag(route.reference)
            except InvalidReference as err:
                raise OciError("TAG_INVALID", str(err)) from None
            self._refuse_served(layout, tag=tag)
            deleted = await self._change(layout, lambda: layout.delete_tag(tag), route)
        if not deleted:
            raise OciError("MANIFEST_UNKNOWN", f"manifest {route.reference[:140]!r} is not in {route.name}")
        return web.Response(status=202, headers=API_VERSION_HEADER)

    async def blob(self, request: web.Request, route: Route) -> web.Response:
        # Blobs may be uploaded (and deleted) before the repository has any manifest, hence no index.json.
        layout = self._cache.layout(repository_of(route.name, self._aliases))
        if layout is None:
            raise OciError("NAME_INVALID", f"repository name {route.name!r} is not accepted by the store")
        digest = parse_digest(route.reference)

        def delete() -> bool:
            user = layout.referencing_manifest(digest)
            if user is not None:
                raise OciError("DENIED", f"blob {digest} is referenced by manifest {user} in {route.name}; "
                                         f"delete the manifest first")
            return layout.delete_blob(digest)

        if not await self._change(layout, delete, route, collect=False):
            raise OciError("BLOB_UNKNOWN", f"blob {digest} is not in {route.name}")
        return web.Response(status=202, headers=API_VERSION_HEADER)

    @staticmethod
    async def _parent_of(layout: ServedLayout, digest: Digest) -> Digest | None:
        """The manifest that holds ``digest`` as a child; None when none does or the store cannot tell."""
        try:
            return await asyncio.to_thread(layout.referencing_manifest, digest)
        except StoreError as err:
            log.warning("%s: %s", layout.repository, err)
            return None

    async def _existing(self, name: str) -> ServedLayout:
        snapshot = await self._cache.get(repository_of(name, self._aliases))
        if snapshot is None:
            raise OciError("NAME_UNKNOWN", f"repository {name!r} is not in this mirror")
        return snapshot.layout

    def _refuse_served(self, layout: ServedLayout, *, digest: Digest | None = None, tag: str | None = None) -> None:
        """DENIED for the manifest a catalog tag points at: every scanner would get 404s until the next sync."""
        if layout.repository not in CATALOG_REPOSITORIES:
            return
        for served_tag, entry in layout.tags().items():
            if served_tag == tag or entry.digest == digest:
                raise OciError("DENIED", f"{layout.repository}:{served_tag} is the version Trivy downloads; it is "
                                         f"never deleted (push or sync a newer version instead)")

    async def _change(self, layout: ServedLayout, change: Callable[[], bool], route: Route, *,
                      collect: bool = True) -> bool:
        """Run one deletion under the store lock, start the grace clock of what it unreferenced, reload."""
        try:
            async with push_lock(self._cache.store, commit=True):
                changed = await asyncio.to_thread(change)
                if changed and collect:
                    await asyncio.to_thread(layout.collect_garbage, self._gc_grace)
        except StoreError as err:
            log.error("delete of %s:%s failed: %s", layout.repository, route.reference[:140], err)
            raise OciError("UNKNOWN", "the store could not delete it; the server log says why") from None
        if changed:
            log.info("deleted %s/%s %s", layout.repository, route.endpoint, route.reference[:140])
            await self._cache.refresh(layout.repository)
        return changed

