"""The VEX rows of ``trivy-mirror status``; ``vex_sources`` is the library's choice of repositories."""

from __future__ import annotations

from collections.abc import Sequence

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.orchestrate import select_vex_sources
from trivy_mirror.vex import vex_statuses
from trivy_mirror.vex.status import ASSET as VEX_ASSET
from trivy_mirror.vex.storage import StoreRoot


def vex_status_rows(store: StoreRoot, asset_names: Sequence[str], values: Sequence[str] = ()) -> list[AssetStatus]:
    """``status`` rows: none when ``--assets`` names only OCI assets; otherwise every stored repository, plus a
    missing row for each configured one not stored yet (``--vex-from``, or VEX Hub for ``--assets vex``)."""
    if asset_names and VEX_ASSET not in asset_names and not values:
        return []
    return vex_statuses(store.root, [source.name for source in select_vex_sources(values, asset_names)])
