"""The local store: OCI image layouts on disk, one per repository, written crash-safely under a writer lock."""

from trivy_mirror.store.layout import Layout
from trivy_mirror.store.paths import default_store_dir
from trivy_mirror.store.store import Store

__all__ = ["Layout", "Store", "default_store_dir"]
