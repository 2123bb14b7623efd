"""The staging directory: bundle members land here, verified, before anything is published.

Members keep their bundle paths, so ``STAGING/oci/aquasec/trivy-db`` is an OCI layout the copy engine reads
like any other. For an import into the store the staging directory lives in the store's temp area
(:meth:`~trivy_mirror.store.Store.scratch_dir`, same file system): publishing then hard-links blobs instead of
copying them a second time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from trivy_mirror.bundle.format import BundleFile
from trivy_mirror.errors import StoreError
from trivy_mirror.fsutil import os_errors
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store import Store, write_file

PARTIAL_DIR = ".partial"
STORE_PREFIX = "import-"
SPACE_MARGIN = 64 * 1024 * 1024
"""Left free on top of the staged bytes, so staging does not fill the disk the store or /tmp needs."""


class Staging:
    """Members written under ``root`` by their bundle path, each visible only once complete and verified."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def in_store(cls, store: Store) -> Staging:
        """A new staging directory in the store's temp area; call it holding the store lock, since it removes
        the staging directories that crashed imports left there.
        """
        return cls(store.scratch_dir(STORE_PREFIX))

    @classmethod
    def temporary(cls) -> Staging:
        """A new staging directory under ``$TMPDIR``, for imports into a registry."""
        return cls(Path(tempfile.mkdtemp(prefix="trivy-mirror-import-")))

    def path(self, member: str) -> Path:
        """Where a member is staged; ``member`` was checked by :func:`~trivy_mirror.bundle.safety.check_path`."""
        return self.root / member

    def check_space(self, needed: int) -> None:
        """Refuse (StoreError) before reading when the staged members cannot fit."""
        with os_errors(f"create {self.root}"):
            self.root.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.root).free
        if needed + SPACE_MARGIN > free:
            raise StoreError(f"not enough space in {self.root} to stage the bundle: it needs "
                             f"{needed / 1e6:.1f} MB, {free / 1e6:.1f} MB are free")

    async def write(self, file: BundleFile, chunks: AsyncIterator[bytes]) -> None:
        """Write a member from a stream that raises on bad content; nothing is left behind when it does."""
        descriptor = Descriptor("application/octet-stream", file.digest, file.size)
        await write_file(self.path(file.path), self.root / PARTIAL_DIR, descriptor, chunks,
                         f"stage {file.path} in {self.root}")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
