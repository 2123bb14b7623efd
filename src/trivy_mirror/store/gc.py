"""Deleting blobs that no manifest in a layout's index references."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from trivy_mirror.errors import InvalidDigest
from trivy_mirror.oci.digest import HEX_LENGTH, Digest


def sweep(blobs_dir: Path, keep: set[Digest], grace_seconds: float) -> int:
    """Delete blob files not in ``keep`` and last modified more than ``grace_seconds`` ago; bytes freed.

    The grace period protects blobs a concurrent writer has stored but not yet referenced from a manifest
    (writers refresh the mtime of blobs they reuse). Files whose name is not a digest are left alone. A file
    with other hard links (another layout's mount) frees nothing, so it does not count.
    """
    cutoff = time.time() - grace_seconds
    freed = 0
    for algorithm in HEX_LENGTH:
        try:
            files = list(os.scandir(blobs_dir / algorithm))
        except FileNotFoundError:
            continue
        for entry in files:
            try:
                digest = Digest.parse(f"{algorithm}:{entry.name}")
            except InvalidDigest:
                continue
            info = entry.stat(follow_symlinks=False)
            if digest in keep or not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                freed += info.st_size if info.st_nlink == 1 else 0
    return freed
