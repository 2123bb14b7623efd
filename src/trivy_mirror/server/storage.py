"""The part of the local store the server uses, as protocols, so the server depends on behaviour, not a class;
and the store lock a push holds."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from trivy_mirror.errors import StoreError
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.server.errors import OciError
from trivy_mirror.store.layout import IndexView
from trivy_mirror.target import Mounter, WriteTarget

log = logging.getLogger(__name__)


class ServedLayout(WriteTarget, Mounter, Protocol):
    """One repository of the store (an OCI image layout); a write target like any other, and a :class:`Mounter`
    (a blob another repository of the store holds is hard-linked)."""

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

    def read_state(self) -> dict[str, Any]:
        """The repository's state (held candidates, pins, provenance); {} when there is none."""
        ...

    def write_state(self, state: dict[str, Any]) -> None: ...

    def manifests(self) -> list[Descriptor]: ...

    def blob_path(self, digest: Digest) -> Path: ...

    def read_manifest(self, reference: str) -> ManifestBytes | None: ...

    async def push_untagged(self, manifest: ManifestBytes) -> None:
        """Store a manifest pushed by digest as an untagged entry of the index (served by digest, kept)."""
        ...

    def delete_manifest(self, digest: Digest) -> bool:
        """Remove every index entry of ``digest`` (under the store lock); False when there is none."""
        ...

    def delete_tag(self, tag: str) -> bool:
        """Remove a tag, keeping its manifest by digest (under the store lock); False when absent."""
        ...

    def referencing_manifest(self, digest: Digest) -> Digest | None:
        """A manifest in the index that references blob ``digest`` (or is it), or None."""
        ...

    def delete_blob(self, digest: Digest) -> bool:
        """Unlink a blob (under the store lock); False when absent."""
        ...

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

    def stored_repositories(self) -> list[str]:
        """Every layout directory, including those holding only blobs (no manifest pushed yet)."""
        ...

    def alock(self, timeout: float = ..., on_wait: Callable[[str], None] | None = ..., *,
              purpose: str = ..., shared: bool = ...) -> AbstractAsyncContextManager[None]:
        """The store's writer lock (another process may be syncing): exclusive, or ``shared`` among pushes."""
        ...


PUSH_LOCK_TIMEOUT = 120.0
"""How long a push waits for a sync or a prune holding the store lock before it is refused (503)."""


@contextlib.asynccontextmanager
async def push_lock(store: ServedStore, *, commit: bool = False) -> AsyncIterator[None]:
    """The store lock around one push step, so a sync, prune or repair never runs beside it.

    Writing a blob holds it shared (pushes run side by side; a writer taking the lock exclusively would delete
    the blob's temp file); committing a manifest holds it exclusively (index.json has one writer at a time,
    across processes). A lock not obtained in :data:`PUSH_LOCK_TIMEOUT` is a 503 the client may retry.
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(store.alock(PUSH_LOCK_TIMEOUT, purpose="push", shared=not commit))
        except StoreError as err:
            log.warning("push refused: %s", err)
            raise OciError("UNAVAILABLE", "the store is busy (a sync or a prune holds its lock); try again later",
                           status=503) from None
        yield
