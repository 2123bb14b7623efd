"""Durable file-system steps: content becomes visible only by renaming a complete, fsynced file into place.

A kill -9 or power loss at any instant therefore leaves either the old file or the new one, never a part.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import NotFound, StoreError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()
"""mkstemp creates 0600 files; stored files get the usual umask-derived mode so other readers (zot) can serve them."""


@contextlib.contextmanager
def os_errors(action: str) -> Iterator[None]:
    """Turn an OSError (disk full, permission denied) into a one-line StoreError: ``cannot <action>: ...``."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise StoreError(f"cannot {action}: {err.strerror or err}{where}") from err


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, fsyncing each parent so the new entries survive a crash."""
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        if path.is_dir():
            return
        raise
    fsync_dir(path.parent)


def open_temp(tmp_dir: Path, name: str, mode: int = FILE_MODE) -> tuple[BinaryIO, Path]:
    """A new, empty temp file in ``tmp_dir`` opened for writing (permissions ``mode`` before any byte), and its path."""
    ensure_dir(tmp_dir)
    fd, path = tempfile.mkstemp(dir=tmp_dir, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        return os.fdopen(fd, "wb"), Path(path)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise


def commit(tmp: Path, target: Path) -> None:
    """Rename a complete temp file onto ``target`` and make the rename itself durable."""
    ensure_dir(target.parent)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def commit_file(file: BinaryIO, tmp: Path, target: Path) -> None:
    """Flush, fsync and close the temp file written through ``file``, then :func:`commit` it."""
    with file:
        file.flush()
        os.fsync(file.fileno())
    commit(tmp, target)


def write_atomic(tmp_dir: Path, target: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``target`` with ``data`` so that readers and crashes see the old or the new content, whole."""
    file, tmp = open_temp(tmp_dir, target.name, mode)
    try:
        file.write(data)
        commit_file(file, tmp, target)
    except BaseException:
        file.close()
        tmp.unlink(missing_ok=True)
        raise


def touch(path: Path) -> None:
    """Refresh a reused blob's mtime so garbage collection's grace period protects it until it is referenced."""
    os.utime(path)


def clean_dir(path: Path) -> None:
    """Remove the files in ``path`` (temp files left by a crashed writer). Best effort: a leftover is harmless.

    ``path`` itself is opened without following a link, so a ``.tmp`` replaced by a link to another directory
    never empties that directory.
    """
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for entry in list(os.scandir(fd)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
        finally:
            os.close(fd)


async def read_chunks(path: Path, missing: str) -> AsyncIterator[bytes]:
    """A stored file's bytes, read off the event loop in :data:`CHUNK_SIZE` pieces; ``NotFound(missing)`` when
    the file does not exist, :class:`StoreError` when it cannot be read."""
    with os_errors(f"read {path}"):
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise NotFound(missing) from None
    with file:
        while True:
            with os_errors(f"read {path}"):
                chunk = await asyncio.to_thread(file.read, CHUNK_SIZE)
            if not chunk:
                return
            yield chunk
