"""``trivy-mirror import``: a bundle into the store or a registry prefix, all of it verified before anything moves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import BinaryIO

from rich.table import Table

from trivy_mirror import facade
from trivy_mirror.bundle.importer import ImportReport
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.errors import UsageError
from trivy_mirror.facade import ClientOptions
from trivy_mirror.timefmt import iso
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import progress_display

OUTCOME_STYLE = {"updated": "green", "skipped": "yellow"}
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


async def run_import(bundle: BinaryIO, store: Path | None, destination: str | None, options: ClientOptions, *,
                     allow_downgrade: bool, expected_sha256: str | None, as_json: bool, lock_timeout: float,
                     public_url: str | None = None, keep: int | None = None, verify_key: Path | None = None,
                     trust: TrustSettings = DEFAULT_TRUST) -> int:
    """``verify_key``: refuse the bundle unless the holder of this public key signed exactly its contents;
    ``trust``: the sanity checks (``--max-shrink``, ``--check-archive``)."""
    with progress_display(not as_json) as progress:
        report = await facade.async_import_bundle(
            bundle, store=store, to=destination, options=options, allow_downgrade=allow_downgrade,
            sha256=expected_sha256, verify_key=verify_key, lock_timeout=lock_timeout, public_url=public_url,
            keep=keep, trust=trust, progress=progress)
    _report(report, as_json)
    return 0


def _report(report: ImportReport, as_json: bool) -> None:
    manifest = report.manifest
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    table = Table(title=f"import into {report.destination}", title_justify="left")
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
