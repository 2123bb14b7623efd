"""A minimal streaming tar writer: PAX headers, file data straight from the source, the sha256 of every byte.

``tarfile``'s stream mode re-buffers every write through small slices; writing headers with
``TarInfo.tobuf`` and the data ourselves keeps large blobs at disk speed and lets us hash the output once.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


class TarWriter:
    """Write members one after another, then :meth:`close` for the end-of-archive blocks."""

    def __init__(self, out: BinaryIO, mtime: int) -> None:
        self._out = out
        self._mtime = mtime
        self._hash = hashlib.sha256()
        self.written = 0

    def _write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self._hash.update(data)
        self.written += len(data)

    def add(self, path: str, size: int, chunks: Iterable[bytes]) -> None:
        """One regular file of exactly ``size`` bytes; ValueError when ``chunks`` yield more or fewer."""
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = size, self._mtime, 0o644
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received > size:
                raise ValueError(f"{path}: more than the expected {size} bytes")
            self._write(chunk)
        if received != size:
            raise ValueError(f"{path}: {received} bytes, expected {size}")
        if size % BLOCK:
            self._write(bytes(BLOCK - size % BLOCK))

    def close(self) -> None:
        """Two zero blocks end the archive; pad to a whole record as tar(1) does."""
        self._write(bytes(2 * BLOCK))
        if self.written % RECORD:
            self._write(bytes(RECORD - self.written % RECORD))
        self._out.flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()
