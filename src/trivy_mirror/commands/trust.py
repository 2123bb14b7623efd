"""``trivy-mirror pin``, ``unpin`` and ``rollback``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Literal

from trivy_mirror.errors import UsageError
from trivy_mirror.static import StaticDestination
from trivy_mirror.sync.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.sync.pins import AssetTag, PinResult, pin, rollback, unpin
from trivy_mirror.ui import console

Action = Literal["pin", "unpin", "rollback"]


async def run_pin(action: Action, asset_text: str, options: ConnectionOptions, store: Path | None,
                  destination: str | None, *, digest: str = "", by: str = "", reason: str = "",
                  as_json: bool = False, lock_timeout: float = 600.0) -> int:
    """Apply ``action`` to one asset tag of the store (under its lock) or a registry; print what was done."""
    asset = AssetTag.parse(asset_text)
    async with RegistryPool(options) as pool:
        target = open_destination(store, destination, pool)
        if isinstance(target, StaticDestination):
            raise UsageError(f"{action} applies to the store (--store) or a registry (--to REGISTRY), not to a "
                             "static tree: sync the tree from a pinned store instead")
        locked = target.store.alock(lock_timeout) if isinstance(target, StoreDestination) \
            else contextlib.nullcontext()
        async with locked:
            result: PinResult
            if action == "pin":
                result = await pin(target, asset, digest, by, reason)
            elif action == "unpin":
                result = await unpin(target, asset)
            else:
                result = await rollback(target, asset, by, reason)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        console.stdout.print(result.message, markup=False, highlight=False)
    return 0
