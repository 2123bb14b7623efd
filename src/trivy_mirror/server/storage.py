"""The part of the local store the server uses, as protocols, so the server depends on behaviour, not a class."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store.layout import IndexView
from trivy_mirror.target import WriteTarget


class ServedLayout(WriteTarget, Protocol):
    """One repository of the store (an OCI image layout); a write target like any other."""

    @property
    def repository(self) -> str: ...

    @property
    def index_path(self) -> Path:
        """Replaced atomically on every change; its stat tells another process's writes apart."""
        ...

    def read_index(self) -> IndexView:
        """One read of index.json: a reader that needs several answers takes them all from one version."""
        ...

    def manifest_at(self, descriptor: Descriptor) -> ManifestBytes:
        """The manifest an index entry (or an index manifest's child) names; StoreError when missing or damaged."""
        ...

    def tags(self) -> dict[str, Descriptor]: ...

    def manifests(self) -> list[Descriptor]: ...

    def blob_path(self, digest: Digest) -> Path: ...

    def read_manifest(self, reference: str) -> ManifestBytes | None: ...

    def prune(self, keep: int) -> list[Digest]:
        """Keep each tag and its ``keep - 1`` newest older versions in the index (under the store lock)."""
        ...

    def collect_garbage(self, grace_seconds: float, now: float | None = ...) -> int:
        """Delete blobs unreferenced for the grace period (under the store lock); the bytes freed."""
        ...


class ServedStore(Protocol):
    """The store: a root directory holding one layout per repository."""

    @property
    def root(self) -> Path: ...

    def layout(self, repository: str) -> ServedLayout: ...

    def repositories(self) -> list[str]: ...

    def alock(self, timeout: float = ..., on_wait: Callable[[str], None] | None = ..., *,
              purpose: str = ...) -> AbstractAsyncContextManager[None]:
        """The store's exclusive writer lock (another process may be syncing)."""
        ...
