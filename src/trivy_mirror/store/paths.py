"""Where the store lives on disk and how repository names map to directories inside it."""

from __future__ import annotations

import os
from pathlib import Path

from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.reference import validate_repository

TMP_DIR = ".tmp"
"""Temp files live here, on the store's file system but outside every layout, so readers never see them."""
LOCK_FILE = ".lock"
INDEX_FILE = "index.json"
LAYOUT_FILE = "oci-layout"
STATE_FILE = "trivy-mirror.json"
GC_FILE = "trivy-mirror-gc.json"
"""When each unreferenced blob was first found so: garbage collection's grace period counts from then."""
BLOBS_DIR = "blobs"

# A repository is a directory of the store and may be nested in another ("a" and "a/b"), so no path component
# may be one of a layout's own entries: "a/blobs" or "a/index.json" would write inside layout "a".
# Names starting with "." (TMP_DIR, LOCK_FILE) are already invalid repository components.
RESERVED_COMPONENTS = frozenset({BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, STATE_FILE, GC_FILE})
VEX_DIR = "vex"
"""``STORE/vex/NAME`` holds mirrored VEX repositories, so no OCI repository may start with ``vex/``."""


def check_repository(repository: str) -> str:
    """Validate a repository name for use as a store directory; raises InvalidReference."""
    validate_repository(repository)
    reserved = RESERVED_COMPONENTS.intersection(repository.split("/"))
    if repository.split("/", 1)[0] == VEX_DIR:
        reserved = frozenset({VEX_DIR})
    if reserved:
        raise InvalidReference(
            f"repository name {repository!r} cannot be stored: {sorted(reserved)[0]!r} is a reserved path component"
        )
    return repository


def default_store_dir() -> Path:
    """``$TRIVY_MIRROR_STORE``, else ``$XDG_DATA_HOME/trivy-mirror/store``, else ``~/.local/share/...``."""
    explicit = os.environ.get("TRIVY_MIRROR_STORE")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says to ignore a relative XDG_DATA_HOME.
    base = Path(data_home) if data_home and os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "trivy-mirror" / "store"
