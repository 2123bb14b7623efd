"""``status``: what a destination holds for each asset, and whether it is fresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from trivy_mirror.assets import AssetSpec
from trivy_mirror.errors import MirrorError
from trivy_mirror.freshness import AssetStatus, state_of
from trivy_mirror.oci.manifest import Manifest
from trivy_mirror.sync.endpoints import Destination
from trivy_mirror.sync.layerinfo import LayerInfoError
from trivy_mirror.sync.mirror import read_layer_metadata
from trivy_mirror.sync.state import last_attempt, tag_record


async def asset_statuses(destination: Destination, specs: Sequence[AssetSpec],
                         now: datetime | None = None) -> list[AssetStatus]:
    """One row per required tag, plus optional tags the destination holds."""
    rows: list[AssetStatus] = []
    for spec in specs:
        target = await destination.target(spec.mirror_repository)
        state = destination.state.load(spec.mirror_repository)
        for tag_spec in spec.tags:
            tag = tag_spec.tag
            reference = f"{spec.mirror_repository}:{tag}"
            attempted_at, result = last_attempt(state, tag)
            current = await target.resolve(tag)
            if current is None:
                if tag_spec.required:
                    rows.append(AssetStatus(spec.name, reference, last_attempt=attempted_at, last_result=result))
                continue
            record = tag_record(state, tag)
            if record is not None and record.digest != str(current.digest):
                record = None
            metadata = record.metadata if record else None
            size = record.size if record else None
            if (spec.has_metadata and metadata is None) or size is None:
                try:
                    manifest = (await target.get_manifest(str(current.digest))).parsed
                    if isinstance(manifest, Manifest):
                        size = sum(blob.size for blob in manifest.blobs)
                        if spec.has_metadata and len(manifest.layers) == 1:
                            metadata = await read_layer_metadata(target, manifest.layers[0])
                except (MirrorError, LayerInfoError):
                    metadata = None
            next_update = metadata.next_update if metadata else None
            rows.append(AssetStatus(
                spec.name, reference, str(current.digest), size,
                metadata.updated_at if metadata else None, next_update,
                record.source if record else None, attempted_at, result,
                state_of(True, next_update, now),
            ))
    return rows
