"""Writing a bundle: the manifest, then every section's members, streamed from the store to one output.

Blobs are re-verified against their digests as they are read, so a store damaged on disk never produces a
bundle that looks fine; the output is never held in memory or copied twice. The writing reports on the engine's
event stream as one named item: ``start``, a ``bytes`` event per chunk of every member, ``done`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from trivy_mirror.bundle.attestation import ENVELOPE_NAME, sign_bundle
from trivy_mirror.bundle.format import MANIFEST_NAME, AssetEntry, BundleManifest
from trivy_mirror.bundle.sections import ExportSection, SourceFile
from trivy_mirror.bundle.tarwrite import TarWriter
from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.engine.events import Event, Item
from trivy_mirror.errors import StoreError, VerificationError
from trivy_mirror.oci.digest import DigestVerifier
from trivy_mirror.signing import SigningKey
from trivy_mirror.version import __version__

Emit = Callable[[Event], None]
"""Receives the events of a bundle being written, in the writing thread."""


@dataclass(frozen=True)
class BundlePlan:
    """Everything a bundle will hold, known before the first byte is written."""

    manifest: BundleManifest
    files: tuple[SourceFile, ...]
    manifest_data: bytes
    """The manifest exactly as written (and, when signed, as its digest is signed)."""
    envelope: bytes | None = None
    """The signature member (:mod:`~trivy_mirror.bundle.attestation`), written right after the manifest."""


async def plan_bundle(sections: Sequence[ExportSection], key: SigningKey | None = None) -> BundlePlan:
    assets: list[AssetEntry] = []
    files: list[SourceFile] = []
    for section in sections:
        part = await section.collect()
        assets.extend(part.assets)
        files.extend(part.files)
    created = datetime.now(UTC).replace(microsecond=0)
    manifest = BundleManifest(__version__, created, tuple(assets), tuple(f.file for f in files))
    data = manifest.serialize()
    envelope = sign_bundle(manifest, data, key) if key is not None else None
    return BundlePlan(manifest, tuple(files), data, envelope)


def _chunks(source: SourceFile, item: Item, emit: Emit) -> Iterator[bytes]:
    if source.data is not None:
        emit(Event("bytes", item, source.data))
        yield source.data
        return
    assert source.path is not None
    verifier = DigestVerifier(source.file.digest, source.file.size)
    try:
        with source.path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                verifier.update(chunk)
                emit(Event("bytes", item, chunk))
                yield chunk
        verifier.verify()
    except VerificationError as err:
        raise StoreError(f"store is damaged: {source.path}: {err}; not exporting it") from None
    except OSError as err:
        raise StoreError(f"cannot read {source.path}: {err.strerror or err}") from None


def write_bundle(plan: BundlePlan, out: BinaryIO, emit: Emit | None = None, name: str = "bundle") -> str:
    """Write the whole bundle to ``out`` (blocking: run it in a thread); returns its sha256 in hex. ``emit``
    receives the events of the item ``name``."""
    send = emit or _ignore
    item = Item(name, plan.manifest.total_size)
    writer = TarWriter(out, int(plan.manifest.created_at.timestamp()))
    writer.add(MANIFEST_NAME, len(plan.manifest_data), [plan.manifest_data])
    if plan.envelope is not None:
        writer.add(ENVELOPE_NAME, len(plan.envelope), [plan.envelope])
    send(Event("start", item))
    try:
        for source in plan.files:
            writer.add(source.file.path, source.file.size, _chunks(source, item, send))
        writer.close()
    except BaseException:
        send(Event("failed", item))
        raise
    send(Event("done", item))
    return writer.sha256


def _ignore(_event: Event) -> None:
    pass
