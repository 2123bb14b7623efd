"""The VEX part of ``trivy-mirror sync`` (and of the ``serve`` sync loop): which repositories, and the run."""

from __future__ import annotations

from collections.abc import Sequence

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.vex import DEFAULT_SOURCE, VexSource, vex_statuses
from trivy_mirror.vex.source import check_unique
from trivy_mirror.vex.storage import StoreRoot

VEX_ASSET = "vex"


def vex_sources(values: Sequence[str], asset_names: Sequence[str]) -> list[VexSource]:
    """The repositories of ``--vex-from`` (``[NAME=]URL``, in order); VEX Hub when ``vex`` is among ``--assets``
    without ``--vex-from``; none otherwise. Raises UsageError for a malformed value."""
    if values:
        sources = [VexSource.parse(value) for value in values]
        check_unique(sources)
        return sources
    return [DEFAULT_SOURCE] if VEX_ASSET in asset_names else []


def vex_status_rows(store: StoreRoot, asset_names: Sequence[str], values: Sequence[str] = ()) -> list[AssetStatus]:
    """``status`` rows: none when ``--assets`` names only OCI assets; otherwise every stored repository, plus a
    missing row for each configured one not stored yet (``--vex-from``, or VEX Hub for ``--assets vex``)."""
    if asset_names and VEX_ASSET not in asset_names and not values:
        return []
    return vex_statuses(store.root, [source.name for source in vex_sources(values, asset_names)])
