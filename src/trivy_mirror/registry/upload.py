"""Blob uploads: a monolithic streamed PUT, or chunked PATCHes when the registry wants or needs them.

The bytes come from the caller's iterator, which raises when the content turns out to be bad (the copy
engine verifies as it streams). Whatever happens, the registry must not end up with a completed upload
unless that iterator finished cleanly; see :class:`_Body`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import aiohttp
from yarl import URL

from trivy_mirror.errors import MirrorError, RegistryError
from trivy_mirror.http.failures import error_for_status, read_error_body
from trivy_mirror.oci.manifest import Descriptor

if TYPE_CHECKING:
    from trivy_mirror.registry.repository import RemoteRepository

log = logging.getLogger(__name__)

UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
"""Size of each PATCH in a chunked upload (or the registry's ``OCI-Chunk-Min-Length``, if larger)."""
REPLAY_LIMIT = 8 * 1024 * 1024
"""A monolithic PUT keeps up to this many bytes it has sent, so a rejected PUT can be redone chunked."""
CANCEL_TIMEOUT = 10.0

_FALLBACK_STATUSES = frozenset({400, 405, 416})
_CONTENT_ERRORS = frozenset({"DIGEST_INVALID", "SIZE_INVALID"})
_OCTET_STREAM = "application/octet-stream"


def upload_location(response: aiohttp.ClientResponse, operation: str) -> URL:
    """The absolute upload URL from a ``Location`` header (registries send both relative and absolute)."""
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(f"{response.url.host}: {operation}: the registry sent no upload location")
    try:
        return response.url.join(URL(location, encoded=True))
    except ValueError:
        raise RegistryError(f"{response.url.host}: {operation}: invalid upload location") from None


def _with_digest(location: URL, descriptor: Descriptor) -> URL:
    # Appended as text: re-encoding the registry's own query (e.g. distribution's ``_state``) could alter it.
    text = str(location)
    separator = "&" if location.query_string else "?"
    return URL(f"{text}{separator}digest={quote(str(descriptor.digest), safe=':')}", encoded=True)


class _Body:
    """The caller's chunks as a request body, with two guarantees.

    Each chunk is passed on only once the next one (or the end) has been pulled from the source, so when
    the source fails, even at its very last step, the final bytes never reach the registry, which then
    cannot complete the upload. And while the bytes pulled stay under ``REPLAY_LIMIT`` they are kept, so a
    registry that rejects the monolithic PUT early (before it read much) can get the same bytes chunked.
    """

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._kept: list[bytes] | None = []
        self._pulled = 0
        self._lock = asyncio.Lock()
        self._interrupted = False
        self.error: BaseException | None = None

    async def _pull(self) -> bytes | None:
        async with self._lock:
            try:
                chunk = await anext(self._source, None)
            except asyncio.CancelledError:
                self._interrupted = True
                raise
            except Exception as err:
                self.error = err
                raise
        if chunk is not None and self._kept is not None:
            self._pulled += len(chunk)
            if self._pulled <= REPLAY_LIMIT:
                self._kept.append(chunk)
            else:
                self._kept = None
        return chunk

    async def stream(self) -> AsyncIterator[bytes]:
        pending = await self._pull()
        while pending is not None:
            following = await self._pull()
            yield pending
            pending = following

    async def replay(self) -> AsyncIterator[bytes] | None:
        """Everything from the first byte again, or None when that is no longer possible."""
        async with self._lock:
            if self._kept is None or self._interrupted or self.error is not None:
                return None
            kept = list(self._kept)
        return self._replayed(kept)

    async def _replayed(self, kept: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in kept:
            yield chunk
        async for chunk in self._source:
            yield chunk


class _Session:
    """An open upload: where to send the next request (it moves with every PATCH) and the chunk minimum."""

    def __init__(self, location: URL, min_chunk: int | None) -> None:
        self.location = location
        self.min_chunk = min_chunk


async def upload_blob(repository: RemoteRepository, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
    """POST an upload session, then PUT the stream monolithically; chunked when required (see module doc)."""
    client = repository.client
    operation = f"push blob {repository.name}@{descriptor.digest.short}"
    session = await _start(repository, operation)
    body = _Body(chunks)
    try:
        if session.min_chunk is None and client.monolithic_uploads:
            rejected = await _put_monolithic(repository, session, descriptor, body, operation)
            if rejected is None:
                return
            replay = await body.replay()
            if replay is None:
                raise rejected
            log.info("%s: monolithic upload refused (%s); using chunked uploads", client.host, rejected)
            client.monolithic_uploads = False
            await cancel_upload(repository, session.location)
            session = await _start(repository, operation)
            source = replay
        else:
            source = body.stream()
        await _put_chunked(repository, session, descriptor, source, operation)
    except BaseException:
        await cancel_upload(repository, session.location)
        if body.error is not None:
            raise body.error from None
        raise


async def _start(repository: RemoteRepository, operation: str) -> _Session:
    """Open an upload session; ``OCI-Chunk-Min-Length`` in the answer means the registry wants chunks."""
    async with await repository.client.request(
        "POST", f"/v2/{repository.name}/blobs/uploads/", operation=operation, repository=repository.name,
        scopes=repository.push_scopes,
    ) as response:
        if response.status != 202:
            raise error_for_status(repository.client.host, operation, response.status,
                                   await read_error_body(response))
        location = upload_location(response, operation)
        header = response.headers.get("OCI-Chunk-Min-Length", "").strip()
    return _Session(location, int(header) if header.isdigit() else None)


async def _put_monolithic(
    repository: RemoteRepository, session: _Session, descriptor: Descriptor, body: _Body, operation: str
) -> MirrorError | None:
    """Stream the whole blob in one PUT. None when stored; the error when the registry refused the upload
    in a way a chunked upload may avoid (400/405/416 that do not blame the content); raises otherwise."""
    headers = {"Content-Type": _OCTET_STREAM, "Content-Length": str(descriptor.size)}
    async with await repository.client.request(
        "PUT", _with_digest(session.location, descriptor), operation=operation, repository=repository.name,
        scopes=repository.push_scopes, headers=headers, data=body.stream(),
    ) as response:
        if 200 <= response.status < 300:
            return None
        error = await read_error_body(response)
    failure = error_for_status(repository.client.host, operation, response.status, error)
    if response.status in _FALLBACK_STATUSES and not _CONTENT_ERRORS.intersection(error.codes):
        return failure
    raise failure


async def _blocks(source: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a stream into blocks of exactly ``size`` bytes (the last one may be shorter)."""
    buffer = bytearray()
    async for chunk in source:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


async def _put_chunked(
    repository: RemoteRepository, session: _Session, descriptor: Descriptor, source: AsyncIterator[bytes],
    operation: str,
) -> None:
    """PATCH the blob in blocks with ``Content-Range``, then commit with an empty PUT ``?digest=``."""
    host = repository.client.host
    offset = 0
    async for block in _blocks(source, max(UPLOAD_CHUNK_SIZE, session.min_chunk or 0)):
        headers = {
            "Content-Type": _OCTET_STREAM,
            "Content-Range": f"{offset}-{offset + len(block) - 1}",
            "Content-Length": str(len(block)),
        }
        # Not retried: after a failure the registry's offset is unknown.
        async with await repository.client.request(
            "PATCH", session.location, operation=operation, repository=repository.name,
            scopes=repository.push_scopes, headers=headers, data=block, retry=False,
        ) as response:
            if response.status != 202:
                raise error_for_status(host, operation, response.status, await read_error_body(response))
            session.location = upload_location(response, operation)
        offset += len(block)
    async with await repository.client.request(
        "PUT", _with_digest(session.location, descriptor), operation=operation, repository=repository.name,
        scopes=repository.push_scopes, headers={"Content-Length": "0"}, data=b"",
    ) as response:
        if not 200 <= response.status < 300:
            raise error_for_status(host, operation, response.status, await read_error_body(response))


async def cancel_upload(repository: RemoteRepository, location: URL) -> None:
    """Abandon an upload session (DELETE), best effort: registries also expire abandoned uploads."""
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT):
            response = await repository.client.request(
                "DELETE", location, operation=f"cancel upload to {repository.name}", repository=repository.name,
                scopes=repository.push_scopes, retry=False,
            )
            response.release()
    except (MirrorError, aiohttp.ClientError, TimeoutError) as err:
        log.debug("%s: could not cancel an upload: %s", repository.client.host, err)
