"""The local store: OCI image layouts on disk, one per repository, written crash-safely under a writer lock."""

from trivy_mirror.store.layout import Layout, LayoutSubset
from trivy_mirror.store.paths import default_store_dir
from trivy_mirror.store.retention import maintain
from trivy_mirror.store.store import Store
from trivy_mirror.store.stream import write_file

__all__ = ["Layout", "LayoutSubset", "Store", "default_store_dir", "maintain", "write_file"]
