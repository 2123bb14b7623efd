"""The archive the mirror serves: the checked repository as a flat, reproducible ``tar.gz``.

``index.json`` sits at the root, so clients need no ``//SUBDIR``. Entries are regular files only (go-getter
creates parent directories itself), sorted by name, with fixed mode, owner and time, in PAX format (long
names), gzip-compressed without a file name or time in its header. The same tree gives the same bytes, so an
unchanged upstream gives the same digest and the same ``ETag``: clients keep getting 304.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path
from typing import BinaryIO

from trivy_mirror.vex.tree import RepositoryTree

FILE_MODE = 0o644
MTIME = 0
COMPRESS_LEVEL = 9


def repack(tree: RepositoryTree, target: BinaryIO) -> None:
    """Write ``tree`` to ``target`` as a deterministic tar.gz."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=MTIME, compresslevel=COMPRESS_LEVEL) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(tree.files):
            _add(tar, tree.base / name, name)


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode, info.mtime = FILE_MODE, MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with path.open("rb") as source:
        tar.addfile(info, source)
