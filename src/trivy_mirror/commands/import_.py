"""``trivy-mirror import``: a bundle into the store or a registry prefix, all of it verified before anything moves."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import BinaryIO

from rich.table import Table

from trivy_mirror.bundle.importer import BundleImport, ImportReport
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.bundle.vex_import import VexImport
from trivy_mirror.engine.events import NoProgress, Progress
from trivy_mirror.errors import UsageError
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.signing import PublicKey
from trivy_mirror.static import StaticDestination, check_keep
from trivy_mirror.store import Store
from trivy_mirror.store.retention import DEFAULT_KEEP, maintain
from trivy_mirror.timefmt import iso
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import make_progress

log = logging.getLogger("trivy_mirror.import")

OUTCOME_STYLE = {"updated": "green", "skipped": "yellow"}
STATIC_VEX_SKIP = "a static tree publishes VEX repositories only with --public-url (the URL it is served at)"
_SHA256 = re.compile(r"(?:sha256:)?([a-f0-9]{64})")


def parse_sha256(text: str | None) -> str | None:
    """``--sha256``: the hex digest export printed, with or without ``sha256:``, or the whole ``sha256sum`` line
    (``HEX  FILE``, what ``$(cat bundle.tar.sha256)`` gives): its first word is the digest."""
    if text is None:
        return None
    words = text.split()
    match = _SHA256.fullmatch(words[0].lower()) if words else None
    if match is None:
        raise UsageError(f"--sha256 {text[:80]!r} is not a sha256 digest (64 hex digits, optionally sha256:..., "
                         f"or a sha256sum line)")
    return match[1]


async def run_import(bundle: BinaryIO, store: Path | None, destination: str | None, options: ConnectionOptions, *,
                     allow_downgrade: bool, expected_sha256: str | None, as_json: bool, lock_timeout: float,
                     public_url: str | None = None, keep: int | None = None, verify_key: Path | None = None) -> int:
    """``verify_key``: refuse the bundle unless the holder of this public key signed exactly its contents."""
    key = PublicKey.load(verify_key) if verify_key is not None else None
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(RegistryPool(options))
        target = open_destination(store, destination, pool)
        static = target if isinstance(target, StaticDestination) else None
        versions = (keep or DEFAULT_KEEP) if isinstance(target, StoreDestination) else check_keep(keep, target)
        if public_url is not None and static is None:
            raise UsageError("--public-url applies to --to static:DIR only")
        vex_store: Store | None = None
        vex_url: str | None = None
        if isinstance(target, StoreDestination):
            await stack.enter_async_context(target.store.alock(lock_timeout, on_wait=log.warning, purpose="import"))
            staging = Staging.in_store(target.store.root)
            vex_store = target.store
        elif static is not None:
            vex_url = static.vex_public_url(public_url, required=False)
            await stack.enter_async_context(static.tree.alock(lock_timeout, on_wait=log.warning, purpose="import"))
            staging = Staging.in_store(static.tree.work.root)
            vex_store = static.tree.work if vex_url is not None else None
        else:
            staging = Staging.temporary()
        stack.callback(staging.remove)
        bars = make_progress(not as_json)
        if bars is not None:
            stack.enter_context(bars)
        progress: Progress = bars if bars is not None else NoProgress()
        skip = STATIC_VEX_SKIP if static is not None else None
        importer = BundleImport(staging, [OciImport(staging.root, target),
                                          VexImport(staging.root, vex_store, skip_reason=skip)], progress)
        report = await importer.run(bundle, allow_downgrade=allow_downgrade, expected_sha256=expected_sha256,
                                    verify_key=key)
        if isinstance(target, StoreDestination):
            await asyncio.to_thread(maintain, target.store, versions)
        if static is not None:
            await static.finish(versions, vex_url)
    _report(report, target.label, as_json)
    return 0


def _report(report: ImportReport, destination: str, as_json: bool) -> None:
    manifest = report.manifest
    if as_json:
        document = {"destination": destination, "sha256": report.sha256, "created_at": iso(manifest.created_at),
                    "tool_version": manifest.tool_version, "verified_key": report.verified_key,
                    "results": [r.to_json() for r in report.results]}
        print(json.dumps(document, indent=2))
        return
    table = Table(title=f"import into {destination}", title_justify="left")
    for column in ("asset", "reference", "result", "digest", "updated at", "copied"):
        table.add_column(column)
    for result in report.results:
        copied = f"{result.stats.bytes_copied / 1e6:.1f} MB" if result.stats.bytes_copied else "-"
        table.add_row(result.entry.asset, result.entry.reference, result.outcome, result.entry.digest[:19],
                      iso(result.updated_at) or "-", copied, style=OUTCOME_STYLE.get(result.outcome))
    console.stderr.print(table)
    signed = f", signature verified (key {report.verified_key})" if report.verified_key else ""
    console.stderr.print(f"bundle sha256:{report.sha256}, exported {iso(manifest.created_at)} by trivy-mirror "
                         f"{manifest.tool_version}{signed}")
