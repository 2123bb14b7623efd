"""The write side of the registry API (only with ``allow_push``): blob uploads, cross-repository mounts and
manifest pushes, all stored through the store's verified, atomic writes.

A push into a catalog tag meets sync's publish policy (:mod:`trivy_mirror.server.catalogpush`): a refusal is
``400 MANIFEST_INVALID``, a hold ``403 DENIED`` with the reason (``held (sanity): ...``), which registry clients
print as they get it; the held candidate is recorded in the store's state. A published version is recorded with
its provenance (``push by USER``) and, with ``--provenance`` or ``--sign``, gets the provenance referrer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

from aiohttp import web

from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.chunks import CHUNK_SIZE as CHUNK
from trivy_mirror.errors import (
    InvalidManifest,
    InvalidReference,
    MirrorError,
    RefusedCandidate,
    StoreError,
    VerificationError,
)
from trivy_mirror.mirror import provenance as provenance_referrer
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest, verified
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor
from trivy_mirror.oci.reference import validate_tag
from trivy_mirror.server.accesslog import USER_KEY
from trivy_mirror.server.cache import ManifestCache
from trivy_mirror.server.catalogpush import AcceptedPush, PushHeld, check_catalog_push
from trivy_mirror.server.census import HELD_KEY
from trivy_mirror.server.errors import API_VERSION_HEADER, OciError
from trivy_mirror.server.manifestcheck import check_pushed_manifest
from trivy_mirror.server.params import parse_digest, repository_of
from trivy_mirror.server.routes import Route
from trivy_mirror.server.storage import ServedLayout, push_lock
from trivy_mirror.server.uploads import Upload, Uploads
from trivy_mirror.store import index

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
MAX_TAG_PARAMS = 32
"""Tags one push by digest may create (``?tag=``; the spec asks for at least 10)."""


class PushApi:
    """Upload sessions and manifest pushes for the names the server answers (aliases included)."""

    def __init__(self, cache: ManifestCache, aliases: Mapping[str, str], uploads: Uploads,
                 trust: TrustSettings = DEFAULT_TRUST) -> None:
        self._cache = cache
        self._aliases = aliases
        self._uploads = uploads
        self._trust = trust

    async def start_upload(self, request: web.Request, route: Route) -> web.Response:
        """POST: a mount (``?mount=&from=``), a monolithic upload (``?digest=``) or a new session."""
        layout = self._layout(route.name)
        query = request.query
        if "mount" in query:
            digest = parse_digest(query["mount"])
            if await self._mount(layout, digest, query.get("from", "")):
                return _created(route.name, "blobs", digest)
        elif "digest" in query:
            digest = parse_digest(query["digest"])
            if request.content_length is not None:
                await self._store_blob(layout, digest, request.content.iter_chunked(CHUNK), request.content_length)
            else:
                upload = self._uploads.start(layout.repository, _owner(request))
                try:
                    await self._uploads.append(upload, request.content.iter_chunked(CHUNK))
                    await self._store_blob(layout, digest, self._uploads.read(upload), upload.size)
                finally:
                    self._uploads.discard(upload)
            return _created(route.name, "blobs", digest)
        upload = self._uploads.start(layout.repository, _owner(request))
        return web.Response(status=202, headers=_upload_headers(route.name, upload))

    async def upload_status(self, request: web.Request, route: Route) -> web.Response:
        upload = self._uploads.get(route.reference, repository_of(route.name, self._aliases), _owner(request))
        return web.Response(status=204, headers=_upload_headers(route.name, upload))

    async def patch_upload(self, request: web.Request, route: Route) -> web.Response:
        upload = self._uploads.get(route.reference, repository_of(route.name, self._aliases), _owner(request))
        async with upload.lock:
            _check_range(request, route.name, upload)
            await self._uploads.append(upload, request.content.iter_chunked(CHUNK))
        return web.Response(status=202, headers=_upload_headers(route.name, upload))

    async def finish_upload(self, request: web.Request, route: Route) -> web.Response:
        """PUT ``?digest=``: the last chunk (if any) is appended, then the whole blob is verified and stored."""
        layout = self._layout(route.name)
        upload = self._uploads.get(route.reference, layout.repository, _owner(request))
        digest = parse_digest(request.query.get("digest", ""))
        async with upload.lock:
            _check_range(request, route.name, upload)  # a chunk out of order: 416, and the session goes on
            try:
                if upload.size == 0 and request.content_length:
                    # The whole blob in the PUT: stream it straight into the store, no spooling.
                    await self._store_blob(layout, digest, request.content.iter_chunked(CHUNK),
                                           request.content_length)
                else:
                    await self._uploads.append(upload, request.content.iter_chunked(CHUNK))
                    await self._store_blob(layout, digest, self._uploads.read(upload), upload.size)
            finally:
                self._uploads.discard(upload)
        return _created(route.name, "blobs", digest)

    async def cancel_upload(self, request: web.Request, route: Route) -> web.Response:
        upload = self._uploads.get(route.reference, repository_of(route.name, self._aliases), _owner(request))
        self._uploads.discard(upload)
        return web.Response(status=204, headers=API_VERSION_HEADER)

    async def put_manifest(self, request: web.Request, route: Route) -> web.Response:
        layout = self._layout(route.name)
        body = await _read_limited(request, MAX_MANIFEST_SIZE)
        check_pushed_manifest(body, request.headers.get("Content-Type"))
        by_digest = parse_digest(route.reference) if ":" in route.reference else None
        try:
            manifest = ManifestBytes.of(body, request.headers.get("Content-Type"),
                                        by_digest.algorithm if by_digest else "sha256")
        except InvalidManifest as err:
            raise OciError("MANIFEST_INVALID", str(err)) from None
        if by_digest is not None:
            if by_digest != manifest.digest:
                raise OciError("DIGEST_INVALID", f"the manifest's digest is {manifest.digest}, not {route.reference}")
            tags = _tag_params(request)
        else:
            tags = [_valid_tag(route.reference)]
        missing = await _missing_references(layout, manifest)
        if missing:
            raise OciError("MANIFEST_BLOB_UNKNOWN", "the manifest references content that was not pushed",
                           detail=[str(digest) for digest in missing])
        who = _owner(request)
        accepted: list[AcceptedPush] = []
        try:
            untagged: list[str | None] = [None]
            for each in tags or untagged:
                found = await check_catalog_push(layout.repository, layout, manifest, each, self._trust,
                                                 layout.read_state())
                if found is not None:
                    accepted.append(found)
        except RefusedCandidate as err:
            log.warning("push of %s:%s refused: %s", layout.repository, route.reference[:140], err)
            raise OciError("MANIFEST_INVALID", str(err)) from None
        except PushHeld as held:
            await self._record_held(layout, held, who)
            request[HELD_KEY] = str(held.hold)
            raise OciError("DENIED", f"{held.hold}; the served version stays") from None
        try:
            async with push_lock(self._cache.store, commit=True):
                if not tags:
                    await layout.push_untagged(manifest)
                for tag in tags:
                    await layout.tag(tag, manifest)
                for each_accepted in accepted:
                    await self._record_published(layout, manifest, each_accepted, who)
        except StoreError as err:
            raise _store_failure(f"push of {layout.repository}:{route.reference[:140]}", err) from None
        except MirrorError as err:
            log.warning("push of %s:%s refused: %s", layout.repository, route.reference[:140], err)
            raise OciError("MANIFEST_INVALID", str(err)) from None
        await self._cache.refresh(layout.repository)
        response = _created(route.name, "manifests", manifest.digest)
        if by_digest is not None and tags:
            response.headers["OCI-Tag"] = ", ".join(tags)
        if manifest.parsed.subject is not None:
            response.headers["OCI-Subject"] = str(manifest.parsed.subject.digest)
        return response

    async def _record_held(self, layout: ServedLayout, held: PushHeld, who: str) -> None:
        """The held candidate into the store's state (``status``, ``/readyz``, ``approve``); the push is denied
        whether or not this works."""
        log.warning("push of %s:%s by %s held: %s", layout.repository, held.tag, who, held.hold)
        try:
            async with push_lock(self._cache.store, commit=True):
                layout.write_state(held.recorded(layout.read_state(), who, datetime.now(UTC)))
        except (OciError, MirrorError) as err:
            log.warning("cannot record the held push of %s:%s: %s", layout.repository, held.tag, err)

    async def _record_published(self, layout: ServedLayout, manifest: ManifestBytes, accepted: AcceptedPush,
                                who: str) -> None:
        """(Under the push lock.) The published version and its provenance into the store's state; with
        ``--provenance`` or ``--sign``, its provenance referrer too. A failure here leaves the push published."""
        try:
            state, provenance = accepted.recorded(layout.read_state(), who, datetime.now(UTC))
            layout.write_state(state)
            if self._trust.provenance or self._trust.sign_key is not None:
                await provenance_referrer.attach(layout, f"{layout.repository}:{accepted.tag}", manifest.descriptor,
                                                 provenance, self._trust.sign_key)
        except (MirrorError, OSError) as err:
            log.warning("cannot record the provenance of the push of %s:%s: %s", layout.repository, accepted.tag,
                        err)

    def _layout(self, name: str) -> ServedLayout:
        layout = self._cache.layout(repository_of(name, self._aliases))
        if layout is None:
            raise OciError("NAME_INVALID", f"repository name {name!r} is not accepted by the store")
        return layout

    async def _store_blob(self, layout: ServedLayout, digest: Digest, chunks: AsyncIterator[bytes],
                          size: int) -> None:
        descriptor = Descriptor(OCTET_STREAM, digest, size)
        if await layout.blob_exists(descriptor):
            return
        try:
            async with push_lock(self._cache.store):
                await layout.push_blob(descriptor, verified(chunks, digest, size))
        except VerificationError as err:
            raise OciError("DIGEST_INVALID", str(err)) from None
        except StoreError as err:
            raise _store_failure(f"upload of {digest.short} into {layout.repository}", err) from None

    async def _mount(self, layout: ServedLayout, digest: Digest, source_name: str) -> bool:
        """Link a blob from another repository of the store; False means "upload it instead".

        Without ``from`` (an anonymous mount, which the spec allows) the store's repositories are searched:
        every credential that may push may pull them all, so this reveals nothing.
        """
        if not source_name:
            holder = await asyncio.to_thread(self._holder, digest, layout.repository)
            return holder is not None and await self._mount(layout, digest, holder)
        try:
            source = self._cache.layout(repository_of(source_name, self._aliases))
        except OciError:
            return False
        if source is None:
            return False
        try:
            size = os.stat(source.blob_path(digest)).st_size
        except OSError:
            return False
        descriptor = Descriptor(OCTET_STREAM, digest, size)
        try:
            async with push_lock(self._cache.store):
                return await layout.blob_exists(descriptor) or await layout.mount_blob(descriptor, source)
        except MirrorError as err:
            log.warning("mount of %s from %s into %s failed: %s", digest.short, source.repository,
                        layout.repository, err)
            return False

    def _holder(self, digest: Digest, exclude: str) -> str | None:
        """A repository of the store (other than ``exclude``) holding blob ``digest``; None when none does."""
        for name in self._cache.store.stored_repositories():
            other = self._cache.layout(name)
            if other is not None and name != exclude and os.path.isfile(other.blob_path(digest)):
                return name
        return None


async def _missing_references(layout: ServedLayout, manifest: ManifestBytes) -> list[Digest]:
    """Blobs (or, for an index, child manifests, pushed by digest before it) not in the repository.

    A descriptor with embedded ``data`` needs no upload: the store writes the blob from it; nor does a
    non-distributable layer, and the subject of a referrer may come later.
    """
    references = index.references(manifest.parsed)
    missing = [ref.digest for ref in references if ref.data is None and not await layout.blob_exists(ref)]
    return list(dict.fromkeys(missing))


def _valid_tag(text: str) -> str:
    try:
        return validate_tag(text)
    except InvalidReference as err:
        raise OciError("TAG_INVALID", str(err)) from None


def _tag_params(request: web.Request) -> list[str]:
    """The ``tag`` parameters of a push by digest (the spec's MAY: each becomes a tag, listed in ``OCI-Tag``)."""
    tags = list(dict.fromkeys(request.query.getall("tag", [])))
    if len(tags) > MAX_TAG_PARAMS:
        raise OciError("TAG_INVALID", f"at most {MAX_TAG_PARAMS} tag parameters per push", status=414)
    return [_valid_tag(tag) for tag in tags]


def _check_range(request: web.Request, name: str, upload: Upload) -> None:
    """A chunk's ``Content-Range: <start>-<end>`` must continue exactly where the upload stands."""
    content_range = request.headers.get("Content-Range")
    if content_range is None:
        return
    start_text, sep, end_text = content_range.removeprefix("bytes ").removeprefix("bytes=").partition("-")
    end_text = end_text.split("/")[0]
    if not (sep and start_text.isascii() and start_text.isdigit() and end_text.isascii() and end_text.isdigit()):
        raise OciError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {content_range[:60]!r}")
    if int(start_text) != upload.size or int(end_text) < int(start_text):
        raise OciError("RANGE_INVALID", f"the upload is at byte {upload.size}; chunk starts at {start_text}",
                       headers=_upload_headers(name, upload))


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise OciError("SIZE_INVALID", f"a manifest is at most {limit} bytes", status=413)
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise OciError("SIZE_INVALID", f"a manifest is at most {limit} bytes", status=413)
    return bytes(data)


def _store_failure(what: str, err: StoreError) -> OciError:
    """The store failed (disk full, permissions): the details, paths included, go to the log, not the client."""
    log.error("%s failed: %s", what, err)
    return OciError("UNKNOWN", "the store could not save the content; the server log says why")


def _owner(request: web.Request) -> str:
    """The credential an upload session belongs to (the user name or token label; pushes are never anonymous)."""
    owner: str = request.get(USER_KEY, "-")
    return owner


def _created(name: str, kind: str, digest: Digest) -> web.Response:
    headers = {"Location": f"/v2/{name}/{kind}/{digest}", "Docker-Content-Digest": str(digest),
               **API_VERSION_HEADER}
    return web.Response(status=201, headers=headers)


def _upload_headers(name: str, upload: Upload) -> dict[str, str]:
    return {"Location": f"/v2/{name}/blobs/uploads/{upload.id}", "Range": f"0-{max(upload.size - 1, 0)}",
            "Docker-Upload-UUID": upload.id, **API_VERSION_HEADER}
