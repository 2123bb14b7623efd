"""The artifact-store interface: every place an artifact can be (a registry repository, a local OCI layout).

Modelled on oras-go's ``content.Storage`` + ``Target``: resolve a reference to a manifest, fetch blobs as
streams, check existence, push blobs, push a manifest and tag it. The copy engine works over this interface
only, so ``sync``, ``copy``, ``import`` and ``export`` are the same engine with different ends.

Contract for implementations:

- ``fetch_blob`` yields the raw bytes; verification is the caller's job (one hashing pass per copy).
- ``push_blob`` consumes an iterator that raises if the content is bad; an implementation must make nothing
  visible unless the iterator was exhausted without error.
- ``push_manifest`` with a tag moves the tag only after the manifest is stored; callers push every blob first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor


class ReadTarget(Protocol):
    """Somewhere artifacts can be read from."""

    @property
    def location(self) -> str:
        """Human-readable name for messages, e.g. ``127.0.0.1:5000/aquasec/trivy-db``."""
        ...

    async def resolve(self, reference: str) -> Descriptor | None:
        """The manifest descriptor a tag or digest points at, or None when it does not exist (cheap: HEAD)."""
        ...

    async def get_manifest(self, reference: str) -> ManifestBytes:
        """The exact manifest bytes for a tag or digest; raises NotFound. Digest references are verified."""
        ...

    def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        """Stream a blob's bytes; raises NotFound when it does not exist."""
        ...

    async def blob_exists(self, descriptor: Descriptor) -> bool: ...


class WriteTarget(ReadTarget, Protocol):
    """Somewhere artifacts can be written to."""

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Store a blob from a stream that raises on bad content; visible only once complete and verified."""
        ...

    async def mount_blob(self, descriptor: Descriptor, source: ReadTarget) -> bool:
        """Copy a blob server-side from ``source`` when both live on one registry; False when not possible."""
        ...

    async def push_manifest(self, manifest: ManifestBytes, tag: str | None) -> None:
        """Store the exact manifest bytes, then point ``tag`` at them (when given)."""
        ...


@runtime_checkable
class ReferrerSource(Protocol):
    """A place that can list the referrers of a manifest (signatures, attestations: manifests whose ``subject``
    is it). A place without this ability has none to give."""

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The descriptors of the manifests whose subject is ``subject`` (none: an empty list)."""
        ...


__all__ = ["Digest", "ReadTarget", "ReferrerSource", "WriteTarget"]
