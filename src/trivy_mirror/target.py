"""The artifact-store interface: every place an artifact can be (a registry repository, a local OCI layout).

Modelled on oras-go's ``content.Storage`` + ``TagResolver`` and regclient's optional capabilities: a small
required interface, and abilities only some places have, checked with ``isinstance`` where they are used. The
copy engine works over these interfaces only, so ``sync``, ``copy``, ``import`` and ``export`` are the same
engine with different ends.

- :class:`ReadTarget` (every place): ``resolve`` a reference, ``get_manifest``, ``fetch_blob`` as a stream,
  ``blob_exists``.
- :class:`WriteTarget` (every writable place): ``push_blob``, ``push_manifest`` (store the bytes, reachable by
  digest) and ``tag`` (point a tag at a manifest), two verbs as oras-go's ``Push`` and ``Tag``.
- :class:`Mounter` (optional: a registry, the store's layouts): ``mount_blob`` copies a blob from another
  repository of the same registry or file system without moving its bytes through this process.
- :class:`TagPusher` (optional: a registry, the store's layouts): ``push_tagged`` stores and tags in one step,
  as oras-go's ``ReferencePusher`` (a registry: one PUT under the tag instead of one by digest and one by tag).
  :func:`push_and_tag` is how callers store a tagged manifest: one step where the target can, else the two verbs.
- :class:`ReferrerSource` (optional: a registry, the store's layouts): lists a manifest's referrers.

Contract for implementations:

- ``fetch_blob`` yields the raw bytes; verification is the caller's job (one hashing pass per copy).
- ``push_blob`` consumes an iterator that raises if the content is bad; an implementation must make nothing
  visible unless the iterator was exhausted without error.
- ``push_manifest`` refuses a manifest whose blobs (or children) are not stored; callers push those first.
- ``tag(tag, manifest)`` moves the tag only once ``manifest`` is stored; it is given the bytes (not just a
  descriptor) so that a registry can PUT them under the tag in one request, and a local place may store them if
  ``push_manifest`` has not.
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

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        """Store the exact manifest bytes, reachable by digest (a referrer: listed under its subject too)."""
        ...

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        """Point ``tag`` at ``manifest`` (stored by :meth:`push_manifest`, or stored now where that is free)."""
        ...


@runtime_checkable
class Mounter(Protocol):
    """A place that can take a blob from another place without the bytes passing through this process (a
    registry's cross-repository mount, a hard link between layouts). The engine copies the bytes otherwise."""

    async def mount_blob(self, descriptor: Descriptor, source: ReadTarget) -> bool:
        """Mount the blob from ``source``; False when not possible (another registry, unknown there, refused)."""
        ...


@runtime_checkable
class TagPusher(Protocol):
    """A place that stores and tags a manifest in one step (oras-go's ``ReferencePusher``)."""

    async def push_tagged(self, manifest: ManifestBytes, tag: str) -> None:
        """:meth:`WriteTarget.push_manifest` then :meth:`WriteTarget.tag`, as one operation."""
        ...


async def push_and_tag(target: WriteTarget, manifest: ManifestBytes, tag: str | None) -> None:
    """Store ``manifest`` and point ``tag`` at it (when given): in one step where the target can (a registry's
    one PUT under the tag, as before the verbs were split), else ``push_manifest`` then ``tag``."""
    if tag is None:
        await target.push_manifest(manifest)
    elif isinstance(target, TagPusher):
        await target.push_tagged(manifest, tag)
    else:
        await target.push_manifest(manifest)
        await target.tag(tag, manifest)


@runtime_checkable
class ReferrerSource(Protocol):
    """A place that can list the referrers of a manifest (signatures, attestations: manifests whose ``subject``
    is it). A place without this ability has none to give."""

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The descriptors of the manifests whose subject is ``subject`` (none: an empty list)."""
        ...


__all__ = ["Digest", "Mounter", "ReadTarget", "ReferrerSource", "TagPusher", "WriteTarget", "push_and_tag"]
