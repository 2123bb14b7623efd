"""``trivy-mirror copy SRC DST``: the facade's :func:`~trivy_mirror.facade.async_copy`, with progress and a summary."""

from __future__ import annotations

import json

from trivy_mirror.facade import ClientOptions, async_copy
from trivy_mirror.ui import console
from trivy_mirror.ui.progress import progress_display


async def run_copy(source: str, target: str, source_options: ClientOptions, dest_options: ClientOptions,
                   *, as_json: bool, referrers: bool = False) -> int:
    """Copy one artifact (and with ``referrers`` the manifests referring to it, as ``oras cp -r``)."""
    with progress_display(not as_json) as progress:
        result = await async_copy(source, target, source_options=source_options, dest_options=dest_options,
                                  referrers=referrers, progress=progress)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        stats = result.stats
        extra = f", {stats.referrers_copied} referrers" if referrers else ""
        console.stderr.print(f"{result.outcome} {result.digest} {source} -> {target} "
                             f"({stats.blobs_copied} blobs, {stats.bytes_copied / 1e6:.1f} MB{extra})")
    return 0
