"""``status``: what a destination holds for each asset, and whether it is fresh."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from trivy_mirror.catalog.assets import AssetSpec, LayerMetadata, TagSpec
from trivy_mirror.catalog.freshness import AssetStatus, state_of
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.catalog.state import (
    Destination,
    TagRecord,
    candidate_of,
    last_attempt,
    pin_of,
    provenance_of,
    tag_record,
)
from trivy_mirror.errors import MirrorError, StoreError
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.store import Store
from trivy_mirror.target import ReadTarget


def _row(spec: AssetSpec, tag_spec: TagSpec, state: dict[str, Any], current: Descriptor | None,
         metadata: LayerMetadata | None, size: int | None, now: datetime | None) -> AssetStatus | None:
    """One status row; None for an optional tag the destination does not hold."""
    reference = f"{spec.mirror_repository}:{tag_spec.tag}"
    attempt = last_attempt(state, tag_spec.tag)
    if current is None:
        if not tag_spec.required:
            return None
        return AssetStatus(spec.name, reference, last_attempt=attempt.at, last_result=attempt.result,
                           last_message=attempt.message)
    record = _matching_record(state, tag_spec.tag, current)
    next_update = metadata.next_update if metadata else None
    pin, candidate = pin_of(state, tag_spec.tag), candidate_of(state, tag_spec.tag)
    return AssetStatus(spec.name, reference, str(current.digest), size, metadata.updated_at if metadata else None,
                       next_update, record.source if record else None, attempt.at, attempt.result,
                       state_of(True, next_update, now), attempt.message,
                       pinned=pin.to_json() if pin is not None else None,
                       candidate=candidate.to_json() if candidate is not None else None,
                       held=candidate.held or None if candidate is not None else None,
                       provenance=provenance_of(state, tag_spec.tag, str(current.digest)))


def _matching_record(state: dict[str, Any], tag: str, current: Descriptor) -> TagRecord | None:
    record = tag_record(state, tag)
    return record if record is not None and record.digest == str(current.digest) else None


async def _read_unknown(spec: AssetSpec, target: ReadTarget,
                        current: Descriptor) -> tuple[LayerMetadata | None, int | None]:
    """Size and metadata of an artifact the state does not describe (pushed by another tool): read the layer."""
    try:
        manifest = (await target.get_manifest(str(current.digest))).parsed
        if not isinstance(manifest, Manifest):
            return None, None
        size = sum(blob.size for blob in manifest.blobs)
        if spec.has_metadata and len(manifest.layers) == 1:
            return await read_layer_metadata(target, manifest.layers[0]), size
        return None, size
    except (MirrorError, LayerInfoError):
        return None, None


async def asset_statuses(destination: Destination, specs: Sequence[AssetSpec],
                         now: datetime | None = None) -> list[AssetStatus]:
    """One row per required tag, plus optional tags the destination holds (reads layers the state lacks)."""
    rows: list[AssetStatus] = []
    for spec in specs:
        target = await destination.target(spec.mirror_repository)
        state = destination.state.load(spec.mirror_repository)
        for tag_spec in spec.tags:
            try:
                current = await target.resolve(tag_spec.tag)
            except StoreError as err:
                rows += _broken(spec, tag_spec, err)
                continue
            record = _matching_record(state, tag_spec.tag, current) if current else None
            metadata, size = (record.metadata, record.size) if record else (None, None)
            if current is not None and (size is None or (spec.has_metadata and metadata is None)):
                metadata, size = await _read_unknown(spec, target, current)
            row = _row(spec, tag_spec, state, current, metadata, size, now)
            if row is not None:
                rows.append(row)
    return rows


def _broken(spec: AssetSpec, tag_spec: TagSpec, err: StoreError) -> list[AssetStatus]:
    """The row of a tag whose index cannot be read: shown (as missing, with the error) among the others."""
    if not tag_spec.required:
        return []
    return [AssetStatus(spec.name, f"{spec.mirror_repository}:{tag_spec.tag}", error=str(err))]


UNKNOWN_CACHE_SIZE = 16
"""Versions without a state record (pushed) whose layer metadata ``store_statuses`` remembers."""
_unknown: OrderedDict[tuple[Path, str], tuple[LayerMetadata | None, int | None]] = OrderedDict()
_unknown_lock = threading.Lock()


def _stored_unknown(spec: AssetSpec, layout: ReadTarget, path: Path,
                    current: Descriptor) -> tuple[LayerMetadata | None, int | None]:
    """:func:`_read_unknown` for a store version, read once per digest (a bounded cache): pushed versions are
    then as fresh or stale for ``/readyz`` and ``/metrics`` as for ``status``. Runs its own event loop in a
    helper thread, so it may be called from any thread, the server's loop included.
    """
    key = (path, str(current.digest))
    with _unknown_lock:
        if key in _unknown:
            _unknown.move_to_end(key)
            return _unknown[key]
        with ThreadPoolExecutor(1, thread_name_prefix="trivy-mirror-metadata") as pool:
            found = pool.submit(asyncio.run, _read_unknown(spec, layout, current)).result()
        metadata, size = found
        if size is not None and (metadata is not None or not spec.has_metadata):  # a failed read is retried
            _unknown[key] = found
            while len(_unknown) > UNKNOWN_CACHE_SIZE:
                _unknown.popitem(last=False)
        return found


def store_statuses(store: Store, specs: Sequence[AssetSpec], now: datetime | None = None) -> list[AssetStatus]:
    """The store's rows from its index and state files, cheap enough for every /readyz and /metrics; a version
    the state does not describe (pushed) has its layer read once, as ``status`` does (same freshness)."""
    rows: list[AssetStatus] = []
    for spec in specs:
        layout = store.layout(spec.mirror_repository)
        try:
            tags = layout.read_index().tags
        except StoreError as err:
            rows += [row for tag_spec in spec.tags for row in _broken(spec, tag_spec, err)]
            continue
        state = layout.read_state()
        for tag_spec in spec.tags:
            current = tags.get(tag_spec.tag)
            record = _matching_record(state, tag_spec.tag, current) if current else None
            metadata, size = (record.metadata, record.size) if record else (None, None)
            if current is not None and (size is None or (spec.has_metadata and metadata is None)):
                metadata, size = _stored_unknown(spec, layout, layout.path, current)
            row = _row(spec, tag_spec, state, current, metadata, size, now)
            if row is not None:
                rows.append(row)
    return rows
