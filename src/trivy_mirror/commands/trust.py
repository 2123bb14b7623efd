"""``trivy-mirror pin``, ``unpin``, ``rollback`` and ``approve``: the facade's trust functions, printed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from trivy_mirror.facade import ClientOptions, async_approve, async_pin, async_rollback, async_unpin
from trivy_mirror.ui import console

if TYPE_CHECKING:
    from trivy_mirror import PinResult, Place

Action = Literal["pin", "unpin", "rollback"]


async def run_pin(action: Action, asset: str, options: ClientOptions, store: Path | None,
                  destination: str | None, *, digest: str = "", by: str | None = None, reason: str = "",
                  as_json: bool = False, lock_timeout: float = 600.0) -> int:
    """Apply ``action`` to one asset tag of the store (under its lock) or a registry; print what was done."""
    result: PinResult
    if action == "pin":
        result = await async_pin(asset, digest, store=store, to=destination, options=options, by=by, reason=reason,
                                 lock_timeout=lock_timeout)
    elif action == "unpin":
        result = await async_unpin(asset, store=store, to=destination, options=options, lock_timeout=lock_timeout)
    else:
        result = await async_rollback(asset, store=store, to=destination, options=options, by=by, reason=reason,
                                      lock_timeout=lock_timeout)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        console.stdout.print(result.message, markup=False, highlight=False)
    return 0


async def run_approve(asset: str, digest: str | None, sources: Sequence[Place], source_options: ClientOptions,
                      dest_options: ClientOptions, store: Path | None, destination: str | None, *,
                      as_json: bool, lock_timeout: float) -> int:
    """Approve the held candidate and sync that one asset tag; 0 when the approved digest is then served, or
    when an import or a push must bring it again (nothing a sync can do)."""
    result = await async_approve(asset, digest, store=store, to=destination, sources=sources,
                                 source_options=source_options, dest_options=dest_options,
                                 lock_timeout=lock_timeout)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    done = result.published or result.delivered is not None
    if done and not as_json:
        console.stdout.print(result.message, markup=False, highlight=False)
    if not done:
        console.error(result.message)
    return 0 if done else 1
