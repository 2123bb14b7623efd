"""One artifact between two places (``trivy-mirror copy``, ``trivy_mirror.copy``): a registry or an OCI layout at
either end, byte for byte, its referrers too on request (as ``oras cp -r``)."""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Literal

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.engine import copier
from trivy_mirror.engine.events import NoProgress, Progress, progress_listener
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool
from trivy_mirror.oci.place import REGISTRY, Place
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store.layout import Layout
from trivy_mirror.store.paths import TMP_DIR
from trivy_mirror.target import WriteTarget


@dataclass(frozen=True)
class CopyResult:
    """What one copy did: the artifact's digest, ``copied`` or ``unchanged`` (the target already had it under
    that tag), and the engine's counts (blobs copied, skipped, mounted; bytes; referrers)."""

    source: str
    target: str
    digest: str
    outcome: Literal["copied", "unchanged"]
    stats: copier.CopyStats

    def to_json(self) -> dict[str, object]:
        """The summary ``copy --json`` prints."""
        return {"source": self.source, "target": self.target, "digest": self.digest, "outcome": self.outcome,
                **self.stats.to_json()}


async def copy_artifact(source: str, target: str, source_options: ConnectionOptions,
                        dest_options: ConnectionOptions, *, referrers: bool = False,
                        progress: Progress | None = None) -> CopyResult:
    """Copy the artifact ``source`` names to ``target`` (places as :meth:`Place.parse` reads them with
    ``artifact``), and with ``referrers`` the manifests referring to it."""
    src_place, dst_place = Place.parse(source, artifact=True), Place.parse(target, artifact=True)
    async with AsyncExitStack() as stack:
        src_pool = await stack.enter_async_context(RegistryPool(_with_transport(src_place, source_options)))
        dst_pool = await stack.enter_async_context(RegistryPool(_with_transport(dst_place, dest_options)))
        src = await open_target(src_place, src_pool, stack)
        dst = await open_target(dst_place, dst_pool, stack)
        with copier.side("source", src):
            manifest = await src.get_manifest(src_place.manifest_reference)
        with copier.side("destination", dst):
            current = await dst.resolve(dst_place.push_tag or str(manifest.digest))
        if current is not None and current.digest == manifest.digest:
            stats = copier.CopyStats()
            if referrers:
                await copier.copy_referrers(src, dst, manifest.digest, stats)
            return CopyResult(source, target, str(manifest.digest), "unchanged", stats)
        events = progress_listener(progress or NoProgress(), str(manifest.digest), source,
                                   lambda blob: blob.size >= CHUNK_SIZE)
        hooks = copier.CopyHooks(events, referrer_depth=MAX_DEPTH if referrers else 0)
        stats = await copier.copy(src, manifest, dst, dst_place.push_tag, hooks)
        return CopyResult(source, target, str(manifest.digest), "copied", stats)


def _with_transport(place: Place, options: ConnectionOptions) -> ConnectionOptions:
    """``options`` with the place's transport for its registry, when it named one."""
    if place.transport is None or place.scheme != REGISTRY:
        return options
    return dataclasses.replace(options, schemes={**options.schemes, place.registry: place.transport})


async def open_target(place: Place, pool: RegistryPool, stack: AsyncExitStack) -> WriteTarget:
    """A registry repository, or a plain OCI layout directory: any name, and nothing left beside it (its temp
    directory, inside it, is removed when the copy ends)."""
    if place.scheme == REGISTRY:
        client = await pool.client(place.registry)
        return client.repository(place.artifact().repository)
    layout = Layout.plain(place.directory.absolute())
    stack.callback(shutil.rmtree, layout.path / TMP_DIR, ignore_errors=True)
    return layout
