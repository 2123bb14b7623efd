"""``trivy-mirror copy SRC DST``: the engine on any single artifact, registry or OCI layout at either end."""

from __future__ import annotations

import dataclasses
import json
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.engine import copier
from trivy_mirror.engine.events import NoProgress, progress_listener
from trivy_mirror.errors import UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool
from trivy_mirror.oci.reference import Reference, validate_tag
from trivy_mirror.oci.referrers import MAX_DEPTH
from trivy_mirror.store.layout import Layout
from trivy_mirror.store.paths import TMP_DIR
from trivy_mirror.target import WriteTarget
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import make_progress

LAYOUT_SCHEME = "oci-layout:"


@dataclass(frozen=True)
class Endpoint:
    """One end of a copy: a registry reference, or an OCI layout directory and a tag."""

    reference: Reference | None = None
    layout_dir: Path | None = None
    tag: str | None = None
    scheme: str | None = None
    """``https`` or ``http`` when the reference named one: its registry is reached over that scheme only."""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        if text.startswith(LAYOUT_SCHEME):
            rest = text[len(LAYOUT_SCHEME):]
            directory, sep, tag = rest.rpartition(":")
            if not sep or "/" in tag or not directory:
                raise UsageError(f"{text!r}: an OCI layout end is oci-layout:DIR:TAG")
            return cls(layout_dir=Path(directory), tag=validate_tag(tag))
        scheme, sep, rest = text.partition("://")
        if sep and scheme in ("https", "http", "docker"):
            return cls(reference=Reference.parse(rest), scheme=None if scheme == "docker" else scheme)
        return cls(reference=Reference.parse(text))

    def options(self, options: ConnectionOptions) -> ConnectionOptions:
        """``options`` with this end's scheme for its registry, when it named one."""
        if self.scheme is None or self.reference is None:
            return options
        return dataclasses.replace(options, schemes={**options.schemes, self.reference.registry: self.scheme})

    @property
    def manifest_reference(self) -> str:
        return self.reference.reference if self.reference else str(self.tag)

    @property
    def push_tag(self) -> str | None:
        if self.reference is not None:
            return self.reference.tag if self.reference.digest is None else None
        return self.tag


async def open_target(endpoint: Endpoint, pool: RegistryPool, stack: AsyncExitStack) -> WriteTarget:
    """A registry repository, or a plain OCI layout directory: any name, and nothing left beside it (its temp
    directory, inside it, is removed when the copy ends)."""
    if endpoint.reference is not None:
        client = await pool.client(endpoint.reference.registry)
        return client.repository(endpoint.reference.repository)
    assert endpoint.layout_dir is not None
    layout = Layout.plain(endpoint.layout_dir.absolute())
    stack.callback(shutil.rmtree, layout.path / TMP_DIR, ignore_errors=True)
    return layout


async def run_copy(source: str, target: str, source_options: ConnectionOptions, dest_options: ConnectionOptions,
                   *, as_json: bool, referrers: bool = False) -> int:
    """Copy one artifact (and with ``referrers`` the manifests referring to it, as ``oras cp -r``)."""
    src_end, dst_end = Endpoint.parse(source), Endpoint.parse(target)
    async with AsyncExitStack() as stack:
        src_pool = await stack.enter_async_context(RegistryPool(src_end.options(source_options)))
        dst_pool = await stack.enter_async_context(RegistryPool(dst_end.options(dest_options)))
        src = await open_target(src_end, src_pool, stack)
        dst = await open_target(dst_end, dst_pool, stack)
        with copier.side("source", src):
            manifest = await src.get_manifest(src_end.manifest_reference)
        with copier.side("destination", dst):
            current = await dst.resolve(dst_end.push_tag or str(manifest.digest))
        if current is not None and current.digest == manifest.digest:
            stats, outcome = copier.CopyStats(), "unchanged"
            if referrers:
                await copier.copy_referrers(src, dst, manifest.digest, stats)
        else:
            progress = make_progress(not as_json)
            if progress is not None:
                stack.enter_context(progress)
            events = progress_listener(progress or NoProgress(), str(manifest.digest), source,
                                       lambda blob: blob.size >= CHUNK_SIZE)
            hooks = copier.CopyHooks(events, referrer_depth=MAX_DEPTH if referrers else 0)
            stats, outcome = await copier.copy(src, manifest, dst, dst_end.push_tag, hooks), "copied"
    summary = {"source": source, "target": target, "digest": str(manifest.digest), "outcome": outcome,
               **stats.to_json()}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        extra = f", {stats.referrers_copied} referrers" if referrers else ""
        console.stderr.print(f"{outcome} {manifest.digest} {source} -> {target} "
                             f"({stats.blobs_copied} blobs, {stats.bytes_copied / 1e6:.1f} MB{extra})")
    return 0
