"""A whole export as the facade runs it: the store's assets and VEX repositories, signed when a key is given,
written to a file or a stream, reporting on the engine's event stream.

A file is written next to its name and renamed at the end, so a failed export never leaves a partial bundle
under that name. The writing is blocking file I/O in a thread; its events reach the caller's listener in the
caller's event loop, in order, the writer waiting for each (a slow listener slows the export, as in a copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from trivy_mirror.bundle.exporter import BundlePlan, Emit, plan_bundle, write_bundle
from trivy_mirror.bundle.format import BundleManifest
from trivy_mirror.bundle.members import stream_name
from trivy_mirror.bundle.oci_export import OciExport
from trivy_mirror.bundle.sections import ExportSection
from trivy_mirror.bundle.vex_export import VexExport
from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.engine.events import Event, Listener
from trivy_mirror.errors import BundleError, StoreError
from trivy_mirror.signing import SigningKey
from trivy_mirror.store import Store
from trivy_mirror.timefmt import iso

log = logging.getLogger("trivy_mirror.export")


@dataclass(frozen=True)
class ExportReport:
    """What one export wrote: the bundle's manifest (an entry per OCI asset tag and VEX repository), its sha256
    and the id of the key that signed it."""

    bundle: str
    """Where the bundle went: its file, or the stream's name (``stdout``)."""
    manifest: BundleManifest
    sha256: str
    signed_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The document of ``export --json``."""
        return {"bundle": self.bundle, "sha256": self.sha256, "created_at": iso(self.manifest.created_at),
                "size": self.manifest.total_size, "signed_by": self.signed_by,
                "assets": [entry.to_json() for entry in self.manifest.assets]}


async def export_bundle(output: Path | BinaryIO, store: Store, specs: Sequence[AssetSpec], vex: bool | None, *,
                        key: SigningKey | None = None, events: Listener | None = None) -> ExportReport:
    """Write the current version of ``specs`` (and, ``vex`` None: the VEX repositories the store has, True: at
    least one, False: none) from ``store`` to ``output``; signed with ``key`` when given."""
    if not store.root.is_dir():
        raise StoreError(f"there is no store at {store.root}; run trivy-mirror sync first (or give --store)")
    sections: list[ExportSection] = [OciExport(store, specs)]
    if vex is not False:
        sections.append(VexExport(store, required=bool(vex)))
    plan = await plan_bundle(sections, key)
    emit = _in_loop(events, asyncio.get_running_loop()) if events is not None else None
    if isinstance(output, Path):
        where = str(output)
        sha256 = await asyncio.to_thread(_write_file, plan, output, emit)
    else:
        where = stream_name(output, "stream")
        sha256 = await asyncio.to_thread(_write_stream, plan, output, where, emit)
    manifest = plan.manifest
    names = ", ".join(dict.fromkeys(entry.asset for entry in manifest.assets))
    log.info("exported %s (%d artifacts, %.1f MB) to %s", names, len(manifest.assets), manifest.total_size / 1e6,
             where)
    keyid = key.public.keyid if key is not None else None
    if keyid is not None:
        log.info("signed with key %s: import --verify-key checks it", keyid)
    return ExportReport(where, manifest, sha256, keyid)


def _in_loop(events: Listener, loop: asyncio.AbstractEventLoop) -> Emit:
    """The writer thread's events handed to ``events`` in ``loop``, one at a time."""

    async def deliver(event: Event) -> None:
        await events(event)

    def emit(event: Event) -> None:
        asyncio.run_coroutine_threadsafe(deliver(event), loop).result()

    return emit


@contextlib.contextmanager
def _write_errors(where: str) -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise BundleError(f"cannot write the bundle to {where}: the reading end of the pipe closed") from None
    except OSError as err:
        raise BundleError(f"cannot write the bundle to {where}: {err.strerror or err}") from None


def _write_file(plan: BundlePlan, path: Path, emit: Emit | None) -> str:
    """Write next to ``path`` and rename: a failed export never leaves a partial bundle under its name."""
    with _write_errors(str(path)):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with _write_errors(str(path)), os.fdopen(fd, "wb") as handle:
            sha256 = write_bundle(plan, handle, emit, f"bundle {path}")
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


def _write_stream(plan: BundlePlan, out: BinaryIO, where: str, emit: Emit | None) -> str:
    with _write_errors(where):
        sha256 = write_bundle(plan, out, emit, f"bundle to {where}")
        out.flush()
    return sha256
