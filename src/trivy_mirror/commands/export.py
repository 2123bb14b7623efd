"""``trivy-mirror export``: the store's current assets as one bundle file (or a stream on stdout)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trivy_mirror import facade
from trivy_mirror.errors import UsageError
from trivy_mirror.ui.progress import progress_display

STDIO = "-"


async def run_export(output: str, store_dir: Path | None, asset_names: Sequence[str], *, as_json: bool,
                     sign: Path | None = None) -> int:
    """``asset_names``: as ``--assets`` gives them (all the OCI assets and the store's VEX repositories when
    empty); ``sign``: the private key file that signs the bundle."""
    to_stdout = output == STDIO
    if to_stdout and sys.stdout.isatty():
        raise UsageError("refusing to write a bundle to a terminal: redirect stdout or give a file name")
    if to_stdout and as_json:
        raise UsageError("--json prints on stdout, which carries the bundle with '-': give a file name")
    with progress_display(not as_json) as progress:
        try:
            report = await facade.async_export_bundle(
                sys.stdout.buffer if to_stdout else Path(output), store=store_dir, assets=asset_names, sign=sign,
                progress=progress)
        except BaseException:
            if to_stdout:
                _silence_stdout()
            raise
    if as_json:
        print(json.dumps(report.to_json() | {"bundle": output}, indent=2))
    elif to_stdout:
        print(f"bundle sha256:{report.sha256}", file=sys.stderr)
    else:
        # sha256sum's format, so `sha256sum -c` checks the file after the transfer.
        print(f"{report.sha256}  {output}")
    return 0


def _silence_stdout() -> None:
    """The reader of the bundle may have gone away (ssh died): keep Python from complaining again when it
    flushes stdout at exit."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
