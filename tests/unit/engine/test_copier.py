"""The copy engine over in-memory targets (fakes of the target interface, for this module only)."""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import AsyncIterator

import pytest

from trivy_mirror.engine import copier
from trivy_mirror.engine.events import Event
from trivy_mirror.errors import AuthError, CopyError, NotFound, RefusedCandidate, VerificationError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor


class MemoryTarget:
    def __init__(self, chunk: int = 3) -> None:
        self.blobs: dict[Digest, bytes] = {}
        self.manifests: dict[str, ManifestBytes] = {}
        self.tags: dict[str, Digest] = {}
        self.fetches = 0
        self.chunk = chunk
        self.location = "memory"

    async def resolve(self, reference: str) -> Descriptor | None:
        digest = self.tags.get(reference) or (Digest.parse(reference) if ":" in reference else None)
        return self.manifests[str(digest)].descriptor if digest and str(digest) in self.manifests else None

    async def get_manifest(self, reference: str) -> ManifestBytes:
        descriptor = await self.resolve(reference)
        if descriptor is None:
            raise NotFound(reference)
        return self.manifests[str(descriptor.digest)]

    async def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        self.fetches += 1
        data = self.blobs[descriptor.digest]
        for i in range(0, len(data), self.chunk):
            yield data[i : i + self.chunk]

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        return descriptor.digest in self.blobs

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        data = b"".join([c async for c in chunks])
        self.blobs[descriptor.digest] = data

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        for blob in manifest.parsed.blobs:  # type: ignore[union-attr]
            assert blob.digest in self.blobs, "manifest pushed before its blobs"
        self.manifests[str(manifest.digest)] = manifest

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        assert str(manifest.digest) in self.manifests, "tagged before it was pushed"
        self.tags[tag] = manifest.digest


def artifact(target: MemoryTarget, layer: bytes, corrupt: bool = False) -> ManifestBytes:
    config = b"{}"
    stored = layer[:-1] + b"X" if corrupt else layer
    target.blobs[Digest.of(config)] = config
    target.blobs[Digest.of(layer)] = stored
    data = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(config)), "size": 2},
                       "layers": [{"mediaType": mediatype.TRIVY_DB_LAYER, "digest": str(Digest.of(layer)),
                                   "size": len(layer)}]}).encode()
    manifest = ManifestBytes.of(data, mediatype.OCI_MANIFEST)
    target.manifests[str(manifest.digest)] = manifest
    target.tags["2"] = manifest.digest
    return manifest


async def test_copies_blobs_then_manifest_and_skips_existing() -> None:
    src, dst = MemoryTarget(), MemoryTarget()
    manifest = artifact(src, b"layer-bytes")
    stats = await copier.copy(src, manifest, dst, "2")
    assert (stats.blobs_copied, stats.bytes_copied, stats.manifests_pushed) == (2, 13, 1)
    assert dst.manifests[str(manifest.digest)].data == manifest.data
    again = await copier.copy(src, manifest, dst, "2")
    assert (again.blobs_copied, again.blobs_skipped) == (0, 2)


async def test_corrupt_source_never_publishes() -> None:
    src, dst = MemoryTarget(), MemoryTarget()
    manifest = artifact(src, b"layer-bytes", corrupt=True)
    with pytest.raises(CopyError) as raised:
        await copier.copy(src, manifest, dst, "2")
    assert (raised.value.side, raised.value.location) == ("source", "memory")
    assert isinstance(raised.value.cause, VerificationError)
    assert dst.tags == {}


class FullDisk(MemoryTarget):
    """A destination whose disk is full, or whose registry refuses the credentials."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.location = "dest"
        self.error = error

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        async for _chunk in chunks:
            raise self.error


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   AuthError("push blob: 401 unauthorized", 401)])
async def test_a_destination_failure_names_the_destination(error: Exception) -> None:
    src = MemoryTarget()
    manifest = artifact(src, b"layer-bytes")
    with pytest.raises(CopyError) as raised:
        await copier.copy(src, manifest, FullDisk(error), "2")
    assert raised.value.side == "destination" and raised.value.cause is error
    assert str(raised.value).startswith("cannot write to dest: ")


async def test_before_publish_refusal_keeps_tag_and_the_listener_sees_bytes() -> None:
    src, dst = MemoryTarget(), MemoryTarget()
    manifest = artifact(src, b"layer-bytes")
    seen: list[bytes] = []

    async def listen(event: Event) -> None:
        if event.kind == "bytes" and event.blob.media_type == mediatype.TRIVY_DB_LAYER:
            seen.append(event.data)

    async def refuse(_m: ManifestBytes) -> None:
        raise RefusedCandidate("no")

    hooks = copier.CopyHooks(listen, before_publish=refuse)
    with pytest.raises(RefusedCandidate):
        await copier.copy(src, manifest, dst, "2", hooks)
    assert b"".join(seen) == b"layer-bytes"
    assert dst.tags == {}


async def test_one_event_stream_start_bytes_done_skipped() -> None:
    src, dst = MemoryTarget(), MemoryTarget()
    manifest = artifact(src, b"layer-bytes")
    events: list[tuple[str, str]] = []

    async def listen(event: Event) -> None:
        events.append((event.kind, event.blob.media_type))

    await copier.copy(src, manifest, dst, "2", copier.CopyHooks(listen))
    layer = [kind for kind, media_type in events if media_type == mediatype.TRIVY_DB_LAYER]
    assert layer[0] == "start" and layer[-1] == "done" and set(layer[1:-1]) == {"bytes"}
    events.clear()
    await copier.copy(src, manifest, dst, "2", copier.CopyHooks(listen))
    assert {kind for kind, _ in events} == {"skipped"}


async def test_a_failed_blob_ends_with_failed_not_done() -> None:
    src = MemoryTarget()
    manifest = artifact(src, b"layer-bytes", corrupt=True)
    kinds: list[str] = []

    async def listen(event: Event) -> None:
        if event.blob.media_type == mediatype.TRIVY_DB_LAYER:
            kinds.append(event.kind)

    with pytest.raises(CopyError):
        await copier.copy(src, manifest, MemoryTarget(), "2", copier.CopyHooks(listen))
    assert kinds[0] == "start" and kinds[-1] == "failed" and "done" not in kinds


class SlowTarget(MemoryTarget):
    """Counts blobs being pushed at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0)
        await super().push_blob(descriptor, chunks)
        self.active -= 1


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_concurrency_bounds_blobs_in_flight(concurrency: int) -> None:
    src, dst = MemoryTarget(), SlowTarget()
    manifest = artifact(src, b"layer-bytes")
    await copier.copy(src, manifest, dst, "2", copier.CopyHooks(concurrency=concurrency))
    assert dst.peak == concurrency and len(dst.blobs) == 2


async def test_embedded_config_data_needs_no_fetch() -> None:
    src, dst = MemoryTarget(), MemoryTarget()
    data = json.dumps({"schemaVersion": 2, "mediaType": mediatype.OCI_MANIFEST,
                       "config": {"mediaType": mediatype.OCI_EMPTY, "digest": str(Digest.of(b"{}")), "size": 2,
                                  "data": "e30="}, "layers": []}).encode()
    manifest = ManifestBytes.of(data, None)
    await copier.copy(src, manifest, dst, "x")
    assert src.fetches == 0 and dst.blobs[Digest.of(b"{}")] == b"{}"


class MountingTarget(MemoryTarget):
    """A destination with the optional :class:`~trivy_mirror.target.Mounter` ability (blobs of the source it
    shares storage with arrive without a fetch) and :class:`~trivy_mirror.target.TagPusher` (one step)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def mount_blob(self, descriptor: Descriptor, source: object) -> bool:
        if not isinstance(source, MemoryTarget) or descriptor.digest not in source.blobs:
            return False
        self.blobs[descriptor.digest] = source.blobs[descriptor.digest]
        return True

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        self.calls.append("push_manifest")
        await super().push_manifest(manifest)

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        self.calls.append("tag")
        await super().tag(tag, manifest)

    async def push_tagged(self, manifest: ManifestBytes, tag: str) -> None:
        self.calls.append("push_tagged")
        await super().push_manifest(manifest)
        await super().tag(tag, manifest)


async def test_mounting_is_used_only_where_the_destination_can() -> None:
    src = MemoryTarget()
    manifest = artifact(src, b"layer-bytes")
    mounted = await copier.copy(src, manifest, MountingTarget(), "2")
    assert (mounted.blobs_mounted, mounted.blobs_copied, src.fetches) == (2, 0, 0)
    copied = await copier.copy(src, manifest, MemoryTarget(), "2")  # no mount_blob: the bytes are copied
    assert (copied.blobs_mounted, copied.blobs_copied, src.fetches) == (0, 2, 2)


async def test_the_root_is_pushed_then_tagged_in_one_step_where_the_destination_can() -> None:
    src, plain, one_step = MemoryTarget(), MemoryTarget(), MountingTarget()
    manifest = artifact(src, b"layer-bytes")
    await copier.copy(src, manifest, plain, "2")
    assert plain.tags == {"2": manifest.digest}  # push_manifest, then tag (the fake asserts the order)
    await copier.copy(src, manifest, one_step, "2")
    assert one_step.calls == ["push_tagged"] and one_step.tags == {"2": manifest.digest}
    await copier.copy(src, manifest, one_step, None)
    assert one_step.calls == ["push_tagged", "push_manifest"]
