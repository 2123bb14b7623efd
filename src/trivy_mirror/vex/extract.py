"""Unpacking an untrusted archive into an empty directory, refusing anything that could escape or exhaust it.

Refused: absolute names, ``..``, symbolic and hard links whose target leaves the archive, devices, FIFOs and
sparse files, duplicate members, a name that is both a file and a directory, more than ``max_files`` members,
more than ``max_total_bytes`` unpacked, and an unpacked/packed ratio above ``max_ratio`` (a decompression bomb).
Only directories and regular files are created: links whose target stays inside are written as copies of that
file, so nothing on disk can point elsewhere and every later path operation stays inside ``dest``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.fsutil import os_errors

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

MAX_LINK_HOPS = 40
_GZIP, _BZIP2, _XZ = frozenset({"tar.gz", "tgz", "gz"}), frozenset({"tar.bz2", "tbz2", "bz2"}), \
    frozenset({"tar.xz", "txz", "xz"})


@dataclass(frozen=True)
class Limits:
    """Bounds on what one VEX repository may cost. VEX Hub: ~200 kB packed, ~1 MB unpacked, ~120 files."""

    max_manifest_bytes: int = 1 << 20
    max_download_bytes: int = 512 << 20
    max_total_bytes: int = 1 << 30
    """Unpacked bytes (for tar: headers included)."""
    max_files: int = 200_000
    max_ratio: float = 250.0
    """Unpacked bytes per packed byte; JSON compresses ~10-50x, bombs ~1000x."""
    ratio_floor_bytes: int = 64 << 20
    """The ratio is enforced only beyond this many unpacked bytes, so tiny archives never trip it."""
    max_name_bytes: int = 4096


@dataclass(frozen=True)
class Extracted:
    """What was unpacked into ``root``: regular files and directories, as relative POSIX paths."""

    root: Path
    files: frozenset[str]
    dirs: frozenset[str]


def refuse(detail: str) -> RefusedCandidate:
    return RefusedCandidate(f"unsafe archive: {detail}")


class _Budget:
    """Counts unpacked bytes against the size and ratio limits."""

    def __init__(self, packed: int, limits: Limits) -> None:
        self.used = 0
        self.limit = min(limits.max_total_bytes, max(limits.ratio_floor_bytes, int(packed * limits.max_ratio)))
        self._bomb = self.limit < limits.max_total_bytes
        self._packed = packed
        self._limits = limits

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            if self._bomb:
                raise refuse(f"it unpacks to more than {self.limit} bytes from {self._packed} "
                             f"(ratio above {self._limits.max_ratio:g}): a decompression bomb")
            raise refuse(f"it unpacks to more than {self._limits.max_total_bytes} bytes")


class _BoundedReader(io.RawIOBase):
    """A read-only stream that charges every byte it hands out to a budget (tar headers included)."""

    def __init__(self, raw: io.BufferedIOBase, budget: _Budget) -> None:
        super().__init__()
        self._raw = raw
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        self._budget.spend(len(data))
        view[: len(data)] = data
        return len(data)


@dataclass
class _Tree:
    """The members seen so far, and the links to materialise once every file is on disk."""

    dest: Path
    limits: Limits
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    symlinks: dict[str, str] = field(default_factory=dict)
    hardlinks: dict[str, str] = field(default_factory=dict)
    members: int = 0

    def count(self) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise refuse(f"more than {self.limits.max_files} members")

    def name(self, raw: str) -> str:
        """The member name as a normalised relative path ('' for the root itself)."""
        if "\x00" in raw or "\\" in raw or len(raw.encode(errors="surrogateescape")) > self.limits.max_name_bytes:
            raise refuse(f"member name {raw[:80]!r} is not a plain relative path")
        if raw.startswith("/"):
            raise refuse(f"absolute member name {raw[:80]!r}")
        parts = [part for part in raw.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise refuse(f"member {raw[:80]!r} leaves the archive (..)")
        return "/".join(parts)

    def claim(self, name: str, *, directory: bool) -> None:
        """Register a member, refusing duplicates and names that are both a file and a directory."""
        taken = name in self.files or name in self.symlinks or name in self.hardlinks
        if directory:
            if taken:
                raise refuse(f"{name!r} is both a file and a directory")
        elif taken:
            raise refuse(f"duplicate member {name!r}")
        elif name in self.dirs:
            raise refuse(f"{name!r} is both a file and a directory")
        parent = posixpath.dirname(name)
        while parent:
            if parent in self.files or parent in self.symlinks or parent in self.hardlinks:
                raise refuse(f"{parent!r} is both a file and a directory")
            self.dirs.add(parent)
            parent = posixpath.dirname(parent)
        if directory:
            self.dirs.add(name)

    def write(self, name: str, source: IO[bytes], budget: _Budget | None) -> None:
        """Create ``name`` as a new regular file with the content of ``source``."""
        path = self.dest / name
        with os_errors(f"unpack {name}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            out = os.fdopen(fd, "wb")
        with out:
            while chunk := source.read(CHUNK_SIZE):
                if budget is not None:
                    budget.spend(len(chunk))
                with os_errors(f"unpack {name}"):
                    out.write(chunk)
        self.files.add(name)

    def resolve_links(self, budget: _Budget) -> None:
        """Write each link whose target is (a link to) a regular file inside the archive as a copy of it.

        Links to directories or to nothing are dropped: a VEX document reached through one is missing, which
        the index check reports.
        """
        for name, target in sorted(self.hardlinks.items()):
            self._copy(name, self._follow(name, target, hard=True), budget)
        for name, target in sorted(self.symlinks.items()):
            self._copy(name, self._follow(name, target, hard=False), budget)

    def _follow(self, name: str, target: str, *, hard: bool) -> str | None:
        for _ in range(MAX_LINK_HOPS):
            if target.startswith("/"):
                raise refuse(f"link {name!r} points to the absolute path {target[:80]!r}")
            base = "" if hard else posixpath.dirname(name)
            joined = posixpath.normpath(posixpath.join(base, target))
            if joined == ".." or joined.startswith("../"):
                raise refuse(f"link {name!r} points outside the archive ({target[:80]!r})")
            if joined in self.files:
                return joined
            next_target = self.hardlinks.get(joined) if joined in self.hardlinks else self.symlinks.get(joined)
            if next_target is None:
                return None
            hard = joined in self.hardlinks
            name, target = joined, next_target
        raise refuse(f"link {name!r} is part of a loop")

    def _copy(self, name: str, target: str | None, budget: _Budget) -> None:
        if target is None:
            return
        with (self.dest / target).open("rb") as source:
            self.write(name, source, budget)


@contextmanager
def _damaged(kind: str) -> Iterator[None]:
    """Turn the errors of a corrupt or truncated archive into one refusal line."""
    try:
        yield
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
            lzma.LZMAError, NotImplementedError, ValueError) as err:
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise RefusedCandidate(f"archive is damaged or not a {kind} archive: {detail}") from None


def extract_archive(archive: Path, kind: str, dest: Path, limits: Limits) -> Extracted:
    """Unpack ``archive`` (an archive type from :data:`getter.ARCHIVE_TYPES`) into the empty directory ``dest``."""
    budget = _Budget(archive.stat().st_size, limits)
    tree = _Tree(dest, limits)
    with _damaged(kind):
        if kind == "zip":
            _unzip(archive, tree, budget)
        else:
            with _open_stream(archive, kind) as raw:
                _untar(io.BufferedReader(_BoundedReader(raw, budget), CHUNK_SIZE), tree)
        tree.resolve_links(budget)
    return Extracted(dest, frozenset(tree.files), frozenset(tree.dirs))


def _open_stream(archive: Path, kind: str) -> io.BufferedIOBase:
    """The decompressed byte stream of a tar-family archive."""
    if kind in _GZIP:
        return gzip.GzipFile(archive, "rb")
    if kind in _BZIP2:
        return bz2.BZ2File(archive, "rb")
    if kind in _XZ:
        return lzma.LZMAFile(archive, "rb")
    return archive.open("rb")


def _untar(stream: io.BufferedReader, tree: _Tree) -> None:
    # Stream mode ("r|"): members are read once, in order, and never seeked; the budget is charged as we go.
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            tree.count()
            name = tree.name(member.name)
            if member.isdir():
                if name:
                    tree.claim(name, directory=True)
                continue
            if not name:
                raise refuse("a member that is not a directory has an empty name")
            if member.issym() or member.islnk():
                tree.claim(name, directory=False)
                target = tree.name(member.linkname) if member.islnk() else member.linkname
                (tree.hardlinks if member.islnk() else tree.symlinks)[name] = target
            elif member.isreg() and not member.issparse():
                tree.claim(name, directory=False)
                source = tar.extractfile(member)
                assert source is not None
                with source:
                    tree.write(name, source, None)  # already charged by the stream
            else:
                raise refuse(f"member {name!r} is a device, FIFO or other special file")


def _unzip(archive: Path, tree: _Tree, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            tree.count()
            name = tree.name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip carries no Unix mode
            if info.flag_bits & 0x1:
                raise refuse(f"member {name!r} is encrypted")
            if info.is_dir() or kind == stat.S_IFDIR:
                if name:
                    tree.claim(name, directory=True)
                continue
            if not name:
                raise refuse("a member that is not a directory has an empty name")
            tree.claim(name, directory=False)
            if kind == stat.S_IFLNK:
                with zf.open(info) as source:
                    target = source.read(tree.limits.max_name_bytes + 1)
                if len(target) > tree.limits.max_name_bytes:
                    raise refuse(f"link {name!r} has an over-long target")
                tree.symlinks[name] = target.decode(errors="replace")
            elif kind in (0, stat.S_IFREG):
                with zf.open(info) as source:
                    tree.write(name, source, budget)
            else:
                raise refuse(f"member {name!r} is a device, FIFO or other special file")
