"""Symbolic links in the store: trivy-mirror never follows one out of it.

A link planted in place of ``.tmp``, ``.lock``, a layout's ``blobs/`` or ``index.json`` (or any directory)
would make the writers' clean-ups, garbage collection and repairs delete or truncate files elsewhere, and the
server serve them. Writers and ``serve`` refuse to start on a store that has one; ``verify`` reports them.
Blob files that are links are not control files: the server refuses to serve them, ``verify`` calls them
corrupt.
"""

from __future__ import annotations

import os
from pathlib import Path

from trivy_mirror.errors import StoreError
from trivy_mirror.store.paths import BLOBS_DIR, GC_FILE, INDEX_FILE, LAYOUT_FILE, LOCK_FILE, STATE_FILE, TMP_DIR

CONTROL_FILES = frozenset({LOCK_FILE, INDEX_FILE, LAYOUT_FILE, STATE_FILE, GC_FILE})
"""Files trivy-mirror opens, rewrites or truncates in place (with ``.tmp`` and every directory)."""


def store_links(root: Path) -> list[Path]:
    """Every link in the store that trivy-mirror could follow: directories (``.tmp``, ``blobs``, a repository,
    ``blobs/sha256``...) and control files; sorted. Blob files inside ``blobs/ALG`` are not scanned.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in dirnames:
            if os.path.islink(here / name):
                found.append(here / name)
        found.extend(here / name for name in filenames
                     if (name in CONTROL_FILES or name == TMP_DIR) and os.path.islink(here / name))
        if here.name == BLOBS_DIR:
            dirnames[:] = []  # blobs/ALG holds only blob files, many; os.walk never descends into links anyway
    return sorted(found)


def refuse_links(root: Path) -> None:
    """StoreError (one line) when the store has a link trivy-mirror could follow out of it."""
    links = store_links(root)
    if not links:
        return
    first = links[0]
    more = f" (and {len(links) - 1} more)" if len(links) > 1 else ""
    raise StoreError(
        f"store {root} is unsafe: {first.relative_to(root)} is a symbolic link to {os.readlink(first)}{more}; "
        f"trivy-mirror never follows links out of the store: replace it with a real file or directory "
        f"(trivy-mirror verify lists them, verify --repair removes the links)"
    )
