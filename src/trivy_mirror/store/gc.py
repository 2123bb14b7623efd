"""Deleting blobs that no manifest in a layout's index references, a grace period after they stopped being.

The grace period is what lets a client that resolved a manifest just before a prune still download its blobs,
so it counts from the moment a blob was first seen unreferenced (recorded in the layout, see
:class:`Unreferenced`), not from the file's age: a DB layer stored a year ago must not vanish the instant its
version leaves the index. It also counts from the file's last write or reuse (writers refresh the mtime of
blobs they reuse), which spares blobs a concurrent writer stored but has not referenced from a manifest yet.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trivy_mirror.errors import InvalidDigest, StoreError
from trivy_mirror.oci.digest import HEX_LENGTH, Digest


@dataclass
class Unreferenced:
    """Blob digest -> when (epoch seconds) it was first found unreferenced; bounded by the blobs on disk."""

    since: dict[Digest, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> Unreferenced:
        """The recorded times; a damaged record is treated as empty (every clock restarts: the safe side)."""
        with contextlib.suppress(ValueError, TypeError, AttributeError, InvalidDigest):
            obj = json.loads(data)
            return cls({Digest.parse(key): float(value) for key, value in obj["unreferenced"].items()})
        return cls()

    def serialize(self) -> bytes:
        obj = {"unreferenced": {str(digest): round(moment, 3) for digest, moment in sorted(self.since.items())}}
        return json.dumps(obj, indent=2).encode() + b"\n"


def _real_directory(path: Path) -> bool:
    """Whether ``path`` is a directory and not a link to one (a GC must never delete through a link)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise StoreError(f"{path} is a symbolic link; not collecting garbage through it")
    return stat.S_ISDIR(info.st_mode)


def sweep(blobs_dir: Path, keep: set[Digest], grace_seconds: float, record: Mapping[Digest, float],
          now: float) -> tuple[int, Unreferenced]:
    """Delete blob files not in ``keep`` that have been unreferenced (per ``record``) and unmodified for
    ``grace_seconds``; the bytes freed and the new record (blobs still waiting out their grace).

    Files whose name is not a digest are left alone. A file with other hard links (another layout's mount)
    frees nothing, so it does not count.
    """
    freed = 0
    waiting = Unreferenced()
    if not _real_directory(blobs_dir):
        return 0, waiting
    for algorithm in HEX_LENGTH:
        if not _real_directory(blobs_dir / algorithm):
            continue
        for entry in list(os.scandir(blobs_dir / algorithm)):
            try:
                digest = Digest.parse(f"{algorithm}:{entry.name}")
            except InvalidDigest:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if digest in keep or not stat.S_ISREG(info.st_mode):
                continue
            since = max(record.get(digest, now), info.st_mtime)
            if now - since < grace_seconds:
                waiting.since[digest] = min(record.get(digest, now), now)
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                freed += info.st_size if info.st_nlink == 1 else 0
    return freed, waiting
