"""``trivy-mirror pin``, ``unpin``, ``rollback`` and ``approve``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Literal

from trivy_mirror.catalog.policy import TrustSettings
from trivy_mirror.errors import UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.mirror.pins import AssetTag, PinResult, approve, delivered_candidate, pin, rollback, unpin
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import sync_destination
from trivy_mirror.static import StaticDestination
from trivy_mirror.ui import console

Action = Literal["pin", "unpin", "rollback"]
APPROVED_ONLY = timedelta(days=36500)
"""The hold ``approve``'s sync runs with: only the approved digest passes it."""


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


async def run_approve(asset_text: str, digest: str | None, sources: Sequence[Place], source_options: ConnectionOptions,
                      dest_options: ConnectionOptions, store: Path | None, destination: str | None, *,
                      as_json: bool, lock_timeout: float) -> int:
    """Approve the held candidate and sync that one asset tag; 0 when the approved digest is then served."""
    asset = AssetTag.parse(asset_text)
    async with RegistryPool(dest_options) as pool:
        target = open_destination(store, destination, pool)
        locked = target.store.alock(lock_timeout) if isinstance(target, StoreDestination) \
            else contextlib.nullcontext()
        async with locked:
            approved = approve(target, asset, digest)
            delivered = delivered_candidate(target, asset, approved)
    if delivered is not None:  # no sync would fetch it: the import or push that brought it publishes it now
        again = "import the bundle" if delivered.startswith("bundle") else "push it"
        if as_json:
            print(json.dumps({"approved": approved, "published": False, "source": delivered}, indent=2))
        else:
            console.stdout.print(f"{asset.reference}: approved {approved} (held from {delivered}); {again} again "
                                 "to publish it", markup=False, highlight=False)
        return 0
    spec = replace(asset.spec, tags=tuple(t for t in asset.spec.tags if t.tag == asset.tag))
    only_approved = TrustSettings(holds={spec.name: APPROVED_ONLY})  # never another candidate than the approved
    report = await sync_destination([spec], sources, source_options, dest_options, store, destination,
                                    lock_timeout=lock_timeout, trust=only_approved)
    [result] = report.results
    published = result.digest == approved and result.outcome in ("updated", "unchanged")
    if as_json:
        print(json.dumps({"approved": approved, "published": published, "result": result.to_json()}, indent=2))
    elif published:
        console.stdout.print(f"{asset.reference}: approved {approved} and published it", markup=False,
                             highlight=False)
    if not published:
        console.error(f"{asset.reference}: approved {approved}, not published yet: {result.outcome}: {result.message}")
    return 0 if published else 1
