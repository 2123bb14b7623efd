"""Importing a bundle: read and verify every member into a staging directory, check every asset, then publish.

Nothing reaches the destination until the whole bundle has been read, every member matched its listed digest
and size, the bundle's sha256 matched (when given) and every asset passed the Trivy checks and the downgrade
check. A truncated, tampered or hostile bundle therefore leaves the destination exactly as it was. With a
verification key, the signature and the signed statement are checked against the manifest before any other
member is read (:mod:`~trivy_mirror.bundle.attestation`); the members are then checked against the manifest.
"""

from __future__ import annotations

import asyncio
import logging
import tarfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from trivy_mirror.bundle.attestation import ENVELOPE_NAME, MAX_ENVELOPE_BYTES, signer_hint, verify_bundle
from trivy_mirror.bundle.format import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    AssetEntry,
    BundleFile,
    BundleManifest,
    parse_manifest,
)
from trivy_mirror.bundle.members import HashingReader, MemberStream
from trivy_mirror.bundle.safety import check_member
from trivy_mirror.bundle.sections import ImportResult, ImportSection, MemberObserver, PlannedAsset
from trivy_mirror.bundle.stage import Staging
from trivy_mirror.engine.events import Event, Item, Listener
from trivy_mirror.errors import BundleError, RefusedCandidate, VerificationError
from trivy_mirror.oci.digest import verified
from trivy_mirror.signing import PublicKey
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ImportReport:
    manifest: BundleManifest
    sha256: str
    results: tuple[ImportResult, ...]
    verified_key: str | None = None
    """The key id whose signature over the bundle's contents was verified (--verify-key)."""
    destination: str = ""
    """Where the assets went: the store's directory, the registry prefix or ``static:DIR``."""

    def to_json(self) -> dict[str, Any]:
        """The document of ``import --json``."""
        return {"destination": self.destination, "sha256": self.sha256, "created_at": iso(self.manifest.created_at),
                "tool_version": self.manifest.tool_version, "verified_key": self.verified_key,
                "results": [r.to_json() for r in self.results]}


class _Routing:
    """Which section owns each listed file and asset entry."""

    def __init__(self, manifest: BundleManifest, sections: Sequence[ImportSection]) -> None:
        by_root = {section.root: section for section in sections}
        by_kind = {section.kind: section for section in sections}
        self.files: dict[str, tuple[BundleFile, ImportSection]] = {}
        for file in manifest.files:
            section = by_root.get(file.path.split("/", 1)[0])
            if section is None:
                raise BundleError(f"bundle member {file.path!r} is of a kind this trivy-mirror cannot import "
                                  f"(it knows {', '.join(sorted(by_root))}/)")
            self.files[file.path] = (file, section)
        self.entries: dict[str, list[AssetEntry]] = {kind: [] for kind in by_kind}
        for entry in manifest.assets:
            if entry.kind not in by_kind:
                raise BundleError(f"bundle carries {entry.asset} assets of kind {entry.kind!r}, which this "
                                  f"trivy-mirror cannot import")
            self.entries[entry.kind].append(entry)
        self.directories = {str(parent) for path in self.files for parent in PurePosixPath(path).parents}
        for section in sections:
            section.check_files([f for f, s in self.files.values() if s is section])


async def _observed(chunks: AsyncIterator[bytes], observer: MemberObserver | None, item: Item,
                    events: Listener) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if observer is not None:
            await observer(chunk)
        await events(Event("bytes", item, chunk))
        yield chunk


async def _ignore(_event: Event) -> None:
    pass


class BundleImport:
    """One import of one bundle stream into the destinations behind ``sections``; reading the members reports on
    the engine's event stream as the item ``name`` (a ``bytes`` event per chunk of every member)."""

    def __init__(self, staging: Staging, sections: Sequence[ImportSection], events: Listener | None = None,
                 name: str = "bundle") -> None:
        self.staging = staging
        self.sections = list(sections)
        self.events = events or _ignore
        self.name = name

    async def run(self, raw: BinaryIO, *, allow_downgrade: bool, expected_sha256: str | None,
                  verify_key: PublicKey | None = None) -> ImportReport:
        reader = HashingReader(raw)
        members = await MemberStream.open(reader)
        try:
            manifest_data = await self._read_manifest(members)
            manifest = parse_manifest(manifest_data)
            envelope = await self._read_envelope(members)
            if verify_key is not None:
                verify_bundle(envelope, manifest, manifest_data, verify_key)
                log.info("bundle signature verified: key %s signed its manifest and its %d assets; each member "
                         "is checked against the manifest as it is read", verify_key.keyid, len(manifest.assets))
            elif envelope is not None:
                log.info("bundle is signed (%s); the signature is not checked: import --verify-key PUBFILE "
                         "refuses it unless it verifies", signer_hint(envelope))
            routing = _Routing(manifest, self.sections)
            staged = {path for path, (file, section) in routing.files.items() if await section.needs_staging(file)}
            self.staging.check_space(sum(routing.files[path][0].size for path in staged))
            item = Item(self.name, manifest.total_size)
            await self.events(Event("start", item))
            try:
                await self._read_members(members, routing, staged, item)
            except BaseException:
                await self.events(Event("failed", item))
                raise
            await self.events(Event("done", item))
            await asyncio.to_thread(reader.drain)
            if expected_sha256 is not None and reader.sha256 != expected_sha256:
                raise BundleError(f"bundle sha256 is {reader.sha256}, not the expected {expected_sha256}; "
                                  f"it was damaged or altered in transfer")
            plans: list[PlannedAsset] = []
            for section in self.sections:
                plans.extend(await section.plan(routing.entries[section.kind]))
            refused = [plan.downgrade for plan in plans if plan.changed and plan.downgrade]
            if refused and not allow_downgrade:
                raise RefusedCandidate(f"bundle refused, nothing imported: {'; '.join(refused)} "
                                       f"(--allow-downgrade imports it anyway)")
            results = tuple([await plan.publish() for plan in plans])
        finally:
            members.close()
            for section in self.sections:
                section.close()
        return ImportReport(manifest, reader.sha256, results, verify_key.keyid if verify_key else None)

    @staticmethod
    async def _read_manifest(members: MemberStream) -> bytes:
        member = await members.next()
        if member is None:
            raise BundleError("not a bundle: the tar archive is empty")
        if member.name != MANIFEST_NAME or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise BundleError(f"not a trivy-mirror bundle: its first member is {member.name[:200]!r}, "
                              f"not {MANIFEST_NAME}")
        if member.size > MAX_MANIFEST_BYTES:
            raise BundleError(f"bundle manifest is {member.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
        return await members.read_all(member)

    @staticmethod
    async def _read_envelope(members: MemberStream) -> bytes | None:
        """The signature member when the bundle has one: it comes right after the manifest."""
        member = await members.next()
        if member is None or member.name != ENVELOPE_NAME:
            if member is not None:
                members.unread(member)
            return None
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise BundleError(f"bundle member {ENVELOPE_NAME} is not a regular file; refusing the bundle")
        if member.size > MAX_ENVELOPE_BYTES:
            raise BundleError(f"bundle member {ENVELOPE_NAME} is {member.size} bytes, over the "
                              f"{MAX_ENVELOPE_BYTES}-byte limit; refusing the bundle")
        return await members.read_all(member)

    async def _read_members(self, members: MemberStream, routing: _Routing, staged: set[str], item: Item) -> None:
        seen: set[str] = set()
        while (member := await members.next()) is not None:
            path = check_member(member)
            if member.isdir():
                if path not in routing.directories:
                    raise BundleError(f"bundle member {path!r} is a directory the bundle manifest does not list")
                continue
            if path == ENVELOPE_NAME:
                raise BundleError(f"bundle member {path!r} is out of place: a signature comes right after "
                                  f"{MANIFEST_NAME}; refusing the bundle")
            if path in seen or path == MANIFEST_NAME:
                raise BundleError(f"bundle member {path!r} appears twice; refusing the bundle")
            if path not in routing.files:
                raise BundleError(f"bundle member {path!r} is not listed in the bundle manifest; refusing the bundle")
            file, section = routing.files[path]
            if member.size != file.size:
                raise BundleError(f"bundle member {path!r} is {member.size} bytes, the bundle manifest says "
                                  f"{file.size}; refusing the bundle")
            seen.add(path)
            chunks = verified(_observed(members.chunks(member), section.observer(file), item, self.events),
                              file.digest, file.size)
            try:
                if path in staged:
                    await self.staging.write(file, chunks)
                else:
                    async for _ in chunks:
                        pass
            except VerificationError as err:
                raise BundleError(f"bundle member {path!r} is damaged: {err}") from None
        missing = [path for path in routing.files if path not in seen]
        if missing:
            raise BundleError(f"bundle is truncated or damaged: {len(missing)} of {len(routing.files)} listed "
                              f"members are missing (the first is {missing[0]!r})")
