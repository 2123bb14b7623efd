"""Reads a DB layer's ``metadata.json`` from the stream being copied, in a worker thread.

The layer is a tar.gz with ``trivy.db`` (hundreds of MB uncompressed) before ``metadata.json``, so finding the
file means decompressing the whole layer. Doing it in a thread while the copy goes on costs no extra pass over
the data and keeps the event loop free (zlib releases the GIL). The queue is bounded: when the thread falls
behind, the copy waits instead of buffering without limit. The thread inflates in small slices and skips
``trivy.db`` without copying it (see :class:`_InflatingReader`): big temporary buffers, freshly mapped for each
chunk, used to cost more kernel time in page faults than the decompression itself.
"""

from __future__ import annotations

import asyncio
import queue
import tarfile
import threading
import zlib
from typing import IO, cast

from trivy_mirror.catalog.assets import DbFile, LayerMetadata
from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.target import ReadTarget
from trivy_mirror.timefmt import parse_time

METADATA_FILE = "metadata.json"
MAX_METADATA_SIZE = 64 * 1024
_QUEUE_CHUNKS = 16
_END = b""


class LayerInfoError(Exception):
    """The layer is not a tar.gz holding a readable metadata.json."""


_INPUT_STEP = 64 * 1024
_OUTPUT_STEP = 64 * 1024
_GZIP_WBITS = 31


class _InflatingReader:
    """The decompressed layer as a forward-only file (``read``, ``tell``, forward ``seek``) for tarfile's
    "r:" mode, over gzip chunks put on a queue; ``b""`` ends the stream.

    Input is inflated in slices of at most 64 KiB in and out, so buffers stay small and are reused, and a
    member that is skipped (``trivy.db``) is inflated and dropped piece by piece, never joined or copied.
    """

    def __init__(self, chunks: queue.Queue[bytes]) -> None:
        self._chunks = chunks
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._input = memoryview(b"")
        self._tail = b""
        self._output = memoryview(b"")
        self._position = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset + (self._position if whence == 1 else 0)
        if whence not in (0, 1) or target < self._position:
            raise OSError("the layer stream only seeks forward")
        left = target - self._position
        while left > 0:
            piece = self._next(left)
            if not piece:
                break
            left -= len(piece)
        return self._position

    def read(self, size: int = -1) -> bytes:
        wanted = size if size >= 0 else 1 << 62
        parts: list[memoryview] = []
        while wanted > 0:
            piece = self._next(wanted)
            if not piece:
                break
            parts.append(piece)
            wanted -= len(piece)
        return b"".join(parts)

    def _next(self, limit: int) -> memoryview:
        """Up to ``limit`` inflated bytes; empty at the end of the stream."""
        while not self._output:
            if not self._inflate():
                return memoryview(b"")
        piece = self._output[:limit]
        self._output = self._output[len(piece):]
        self._position += len(piece)
        return piece

    def _inflate(self) -> bool:
        """Inflate the next slice of input into ``_output``; False at the end of the gzip stream or input."""
        while not self._inflater.eof:
            if self._tail:
                data: bytes | memoryview = self._tail
            else:
                if not self._input:
                    if self._ended:
                        return False
                    chunk = self._chunks.get()
                    if chunk is _END or not chunk:
                        self._ended = True
                        return False
                    self._input = memoryview(chunk)
                data = self._input[:_INPUT_STEP]
                self._input = self._input[len(data):]
            out = self._inflater.decompress(data, _OUTPUT_STEP)
            self._tail = self._inflater.unconsumed_tail
            if out:
                self._output = memoryview(out)
                return True
        return False


def parse_metadata(data: bytes) -> LayerMetadata:
    obj = load_object(data, "metadata.json", LayerInfoError)
    version = obj.get("Version")
    return LayerMetadata(
        version if isinstance(version, int) and not isinstance(version, bool) else None,
        parse_time(obj.get("UpdatedAt")),
        parse_time(obj.get("NextUpdate")),
    )


class LayerInfoReader:
    """Feed it the layer's chunks as they are copied; ``await result()`` once the copy is done."""

    def __init__(self, expect: DbFile | None = None) -> None:
        self._expect = expect
        self._chunks: queue.Queue[bytes] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._found = threading.Event()
        self._result: LayerMetadata | LayerInfoError | None = None
        self._thread = threading.Thread(target=self._run, name="layer-metadata", daemon=True)
        self._thread.start()

    async def feed(self, chunk: bytes) -> None:
        if self._found.is_set() or not chunk:
            return
        try:
            self._chunks.put_nowait(chunk)
        except queue.Full:
            await asyncio.to_thread(self._put_unless_done, chunk)

    def _put_unless_done(self, chunk: bytes) -> None:
        while not self._found.is_set():
            try:
                self._chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    async def result(self) -> LayerMetadata:
        """Ends the stream and returns the metadata; raises LayerInfoError when there was none."""
        await asyncio.to_thread(self._put_unless_done, _END)
        await asyncio.to_thread(self._thread.join)
        if isinstance(self._result, LayerMetadata):
            return self._result
        raise self._result or LayerInfoError("layer has no metadata.json")

    def close(self) -> None:
        """Stop the worker early (the copy failed); safe to call more than once."""
        self._found.set()

    def _run(self) -> None:
        try:
            self._result = self._scan()
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as err:
            self._result = LayerInfoError(f"layer is not a readable tar.gz: {err}")
        except LayerInfoError as err:
            self._result = err
        finally:
            self._found.set()
            self._drain()

    def _scan(self) -> LayerMetadata:
        """metadata.json; with ``expect``, the database file must be there too and start with its magic bytes."""
        stream = cast(IO[bytes], _InflatingReader(self._chunks))
        metadata: LayerMetadata | None = None
        seen_db = self._expect is None
        with tarfile.open(fileobj=stream, mode="r:") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if self._expect is not None and name == self._expect.name:
                    self._check_db(archive, member, self._expect)
                    seen_db = True
                elif name == METADATA_FILE:
                    metadata = self._metadata(archive, member)
                if metadata is not None and seen_db:
                    return metadata
        if metadata is None:
            raise LayerInfoError("layer has no metadata.json at its root")
        assert self._expect is not None
        raise LayerInfoError(f"layer has no {self._expect.name} at its root")

    @staticmethod
    def _metadata(archive: tarfile.TarFile, member: tarfile.TarInfo) -> LayerMetadata:
        if not member.isfile() or member.size > MAX_METADATA_SIZE:
            raise LayerInfoError("metadata.json in the layer is not a small regular file")
        handle = archive.extractfile(member)
        if handle is None:
            raise LayerInfoError("metadata.json in the layer cannot be read")
        return parse_metadata(handle.read())

    @staticmethod
    def _check_db(archive: tarfile.TarFile, member: tarfile.TarInfo, expect: DbFile) -> None:
        handle = archive.extractfile(member) if member.isfile() else None
        if handle is None:
            raise LayerInfoError(f"{expect.name} in the layer is not a regular file")
        head = handle.read(expect.offset + len(expect.magic))
        if head[expect.offset:] != expect.magic:
            raise LayerInfoError(f"{expect.name} in the layer is not a {expect.kind} database (wrong magic bytes)")

    def _drain(self) -> None:
        """Empty the queue so a producer blocked on put() wakes up."""
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                return


async def read_layer_metadata(target: ReadTarget, layer: Descriptor, expect: DbFile | None = None) -> LayerMetadata:
    """Stream a stored layer through the metadata reader (when it was not seen during a copy)."""
    reader = LayerInfoReader(expect)
    try:
        async for chunk in target.fetch_blob(layer):
            await reader.feed(chunk)
        return await reader.result()
    finally:
        reader.close()
