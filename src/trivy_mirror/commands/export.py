"""``trivy-mirror export``: the store's current assets as one bundle file (or a stream on stdout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from trivy_mirror.bundle.exporter import BundlePlan, plan_bundle, write_bundle
from trivy_mirror.bundle.oci_export import OciExport
from trivy_mirror.bundle.sections import ExportSection
from trivy_mirror.bundle.vex_export import VexExport
from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.engine.events import NoProgress, Progress
from trivy_mirror.errors import BundleError, StoreError, UsageError
from trivy_mirror.signing import SigningKey
from trivy_mirror.store import Store, default_store_dir
from trivy_mirror.timefmt import iso
from trivy_mirror.ui.progress import make_progress

log = logging.getLogger("trivy_mirror.export")

STDIO = "-"


@contextlib.contextmanager
def _write_errors(where: str) -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        # The reader went away (ssh died); keep Python from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise BundleError(f"cannot write the bundle to {where}: the reading end of the pipe closed") from None
    except OSError as err:
        raise BundleError(f"cannot write the bundle to {where}: {err.strerror or err}") from None


def _write_file(plan: BundlePlan, path: Path, progress: Progress) -> str:
    """Write next to ``path`` and rename: a failed export never leaves a partial bundle under its name."""
    with _write_errors(str(path)):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with _write_errors(str(path)), os.fdopen(fd, "wb") as handle:
            sha256 = write_bundle(plan, handle, progress)
            os.fchmod(handle.fileno(), 0o644 & ~_umask())
            os.fsync(handle.fileno())
        with _write_errors(str(path)):
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_stdout(plan: BundlePlan, progress: Progress) -> str:
    out: BinaryIO = sys.stdout.buffer
    with _write_errors("stdout"):
        sha256 = write_bundle(plan, out, progress)
    return sha256


async def run_export(output: str, store_dir: Path | None, specs: Sequence[AssetSpec], vex: bool | None, *,
                     as_json: bool, sign: Path | None = None) -> int:
    """``vex``: True to require the store's VEX repositories, None to add those there are, False for none;
    ``sign``: the private key file that signs the bundle."""
    key = SigningKey.load(sign) if sign is not None else None
    to_stdout = output == STDIO
    if to_stdout and sys.stdout.isatty():
        raise UsageError("refusing to write a bundle to a terminal: redirect stdout or give a file name")
    if to_stdout and as_json:
        raise UsageError("--json prints on stdout, which carries the bundle with '-': give a file name")
    store = Store(store_dir or default_store_dir())
    if not store.root.is_dir():
        raise StoreError(f"there is no store at {store.root}; run trivy-mirror sync first (or give --store)")
    sections: list[ExportSection] = [OciExport(store, specs)]
    if vex is not False:
        sections.append(VexExport(store, required=bool(vex)))
    plan = await plan_bundle(sections, key)
    bars = make_progress(not as_json)
    with bars if bars is not None else contextlib.nullcontext():
        progress: Progress = bars if bars is not None else NoProgress()
        if to_stdout:
            sha256 = await asyncio.to_thread(_write_stdout, plan, progress)
        else:
            sha256 = await asyncio.to_thread(_write_file, plan, Path(output), progress)
    manifest = plan.manifest
    names = ", ".join(dict.fromkeys(entry.asset for entry in manifest.assets))
    where = "stdout" if to_stdout else output
    log.info("exported %s (%d artifacts, %.1f MB) to %s", names, len(manifest.assets), manifest.total_size / 1e6,
             where)
    keyid = key.public.keyid if key is not None else None
    if keyid is not None:
        log.info("signed with key %s: import --verify-key checks it", keyid)
    if as_json:
        document = {"bundle": output, "sha256": sha256, "created_at": iso(manifest.created_at),
                    "size": manifest.total_size, "signed_by": keyid,
                    "assets": [entry.to_json() for entry in manifest.assets]}
        print(json.dumps(document, indent=2))
    elif to_stdout:
        print(f"bundle sha256:{sha256}", file=sys.stderr)
    else:
        # sha256sum's format, so `sha256sum -c` checks the file after the transfer.
        print(f"{sha256}  {output}")
    return 0
