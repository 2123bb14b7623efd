"""Reading a bundle's tar from a file or a pipe, member by member, without blocking the event loop.

``tarfile`` in stream mode (``r|*``: plain, or gzip/bzip2/xz if someone compressed the bundle) does the parsing;
every blocking read runs in a worker thread. Its many failure modes become one :class:`BundleError` line.
A damaged header after the first member silently ends ``tarfile``'s iteration: the importer then finds listed
members missing and reports the bundle as truncated or damaged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tarfile
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import BundleError


def stream_name(stream: BinaryIO, default: str) -> str:
    """What messages call a bundle's stream: its file name, ``stdin``/``stdout``, or ``default``."""
    name = getattr(stream, "name", None)
    return name.strip("<>") if isinstance(name, str) and name else default


class HashingReader:
    """A read-only file object over ``raw`` that hashes everything read through it (the bundle's sha256)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> None:
        """Read to the end (the tar's padding and whatever follows it), so the hash covers the whole file."""
        with _errors("the end of the bundle"):
            while self.read(CHUNK_SIZE):
                pass

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    try:
        yield
    except tarfile.ReadError as err:
        if "unexpected end of data" in str(err):
            raise BundleError(f"bundle is truncated: it ends inside {where}") from None
        raise BundleError(f"bundle is damaged at {where}: {err}") from None
    except (tarfile.CompressionError, zlib.error) as err:
        raise BundleError(f"bundle is damaged at {where}: {err}") from None
    except EOFError:
        raise BundleError(f"bundle is truncated: it ends inside {where}") from None
    except OSError as err:
        raise BundleError(f"cannot read the bundle at {where}: {err.strerror or err}") from None


class MemberStream:
    """The members of one tar stream, in order; each member's data must be read before the next member."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self.current = "the first member"
        self._pushed: tarfile.TarInfo | None = None

    @classmethod
    async def open(cls, reader: HashingReader) -> MemberStream:
        def start() -> tarfile.TarFile:
            try:
                tar: tarfile.TarFile = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115 - see close()
                    fileobj=reader, mode="r|*", bufsize=CHUNK_SIZE)
                return tar
            except tarfile.ReadError:
                raise BundleError("not a bundle: the input is not a tar archive (or it is empty)") from None

        with _errors("its start"):
            return cls(await asyncio.to_thread(start))

    async def next(self) -> tarfile.TarInfo | None:
        pushed, self._pushed = self._pushed, None
        if pushed is not None:
            return pushed
        with _errors(f"the header after {self.current}"):
            member = await asyncio.to_thread(self._tar.next)
        if member is not None:
            self.current = repr(member.name[:200])
        return member

    def unread(self, member: tarfile.TarInfo) -> None:
        """Give ``member`` (whose data was not read) back: the next :meth:`next` returns it again."""
        assert self._pushed is None
        self._pushed = member

    async def chunks(self, member: tarfile.TarInfo) -> AsyncIterator[bytes]:
        """The member's data: exactly the size its header declares, or BundleError when the input ends early."""
        with _errors(self.current):
            handle = self._tar.extractfile(member)
        if handle is None:
            return
        while True:
            with _errors(self.current):
                chunk = await asyncio.to_thread(handle.read, CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

    async def read_all(self, member: tarfile.TarInfo) -> bytes:
        return b"".join([chunk async for chunk in self.chunks(member)])

    def close(self) -> None:
        """Release the decompressor; the underlying file stays open (its owner closes it)."""
        with contextlib.suppress(Exception):
            self._tar.close()
