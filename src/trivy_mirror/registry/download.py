"""Blob downloads that survive dropped connections: resumed with ``Range`` requests, length-checked.

Hashing is deliberately left to the caller, who verifies the digest in the same pass that stores the bytes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import RegistryError, Unreachable, VerificationError
from trivy_mirror.http.failures import describe_connection_error, error_from_response
from trivy_mirror.http.transport import host_label
from trivy_mirror.oci.manifest import Descriptor

if TYPE_CHECKING:
    from trivy_mirror.registry.repository import RemoteRepository

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


async def download_blob(repository: RemoteRepository, descriptor: Descriptor) -> AsyncIterator[bytes]:
    """Yield the blob's bytes in chunks of up to :data:`CHUNK_SIZE`.

    A body cut short (reset, stall, truncation) is resumed from the first missing byte with
    ``Range: bytes=N-``: a 206 continues there, a 200 (range ignored) is read past the bytes already
    delivered. Attempts that deliver nothing count against the retry policy; progress resets the count.
    """
    client = repository.client
    path = f"/v2/{repository.name}/blobs/{descriptor.digest}"
    operation = f"fetch blob {repository.name}@{descriptor.digest.short}"
    received = 0
    failures = 0
    while True:
        headers = {"Range": f"bytes={received}-"} if received else None
        response = await client.request(
            "GET", path, operation=operation, repository=repository.name, scopes=repository.pull_scopes,
            headers=headers, follow_redirects=True,
        )
        host = host_label(response.url)
        start = received
        problem = "the body ended early"
        async with response:
            skip = await _start_offset(response, received, descriptor, operation, repository.location)
            try:
                # The pieces as they arrived: iter_chunked() would join them, copying every byte once more.
                async for piece, _ in response.content.iter_chunks():
                    chunk = piece
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                    received += len(chunk)
                    if received > descriptor.size:
                        raise VerificationError(
                            f"{repository.location}: {operation}: more than the expected {descriptor.size} bytes"
                        )
                    if len(chunk) <= CHUNK_SIZE:
                        yield chunk
                    else:  # only with chunked transfer encoding, which is rare for blobs
                        for start in range(0, len(chunk), CHUNK_SIZE):
                            yield chunk[start:start + CHUNK_SIZE]
            except (TimeoutError, aiohttp.ClientError) as err:
                problem = describe_connection_error(err)
        if received == descriptor.size:
            return
        failures = 0 if received > start else failures + 1
        if failures >= client.retry.attempts:
            raise Unreachable(
                f"cannot reach {host}: {problem} ({operation}; {received} of {descriptor.size} bytes "
                f"received, {failures} attempts without progress)"
            )
        delay = client.retry.backoff(max(1, failures))
        log.info("%s: %s: %s after %d of %d bytes; resuming in %.1f s",
                 host, operation, problem, received, descriptor.size, delay)
        await asyncio.sleep(delay)


async def _start_offset(
    response: aiohttp.ClientResponse, received: int, descriptor: Descriptor, operation: str, location: str
) -> int:
    """How many leading bytes of this response were delivered already; raises for unusable answers."""
    if response.status == 200:
        length = response.content_length
        if length is not None and length != descriptor.size:
            raise VerificationError(
                f"{location}: {operation}: the registry sends {length} bytes, expected {descriptor.size}"
            )
        return received
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match[1]) != received:
            raise RegistryError(
                f"{host_label(response.url)}: {operation}: answered a resume from byte {received} "
                "with a different range"
            )
        return 0
    raise await error_from_response(response, host_label(response.url), operation)
