"""The ``vex`` section on import: each VEX repository re-checked as ``sync`` checks a download, then stored.

The archive is unpacked with the VEX module's hostile-archive rules and its ``index.json`` and documents are
checked again: a bundle is trusted no more than an upstream. A repository becomes visible as ``sync`` makes it
visible: the archive under its digest first, then one atomic replacement of ``repository.json``. A registry
holds no VEX repositories, so an import ``--to`` a registry skips them and says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.bundle.sections import ImportResult, MemberObserver, PlannedAsset
from trivy_mirror.bundle.vex_export import ARCHIVE_FILE, ROOT, STATE_FILE, member
from trivy_mirror.catalog import policy
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.errors import BundleError, RefusedCandidate
from trivy_mirror.store import Store
from trivy_mirror.timefmt import iso
from trivy_mirror.vex.extract import Limits, extract_archive
from trivy_mirror.vex.manifest import RepositoryManifest
from trivy_mirror.vex.source import NAME_RE
from trivy_mirror.vex.status import ASSET, dates, reference
from trivy_mirror.vex.storage import VexRepository, VexState
from trivy_mirror.vex.tree import check_repository

log = logging.getLogger(__name__)

_MEMBER = re.compile(rf"{ROOT}/(?P<name>[^/]+)/(?:{re.escape(ARCHIVE_FILE)}|{re.escape(STATE_FILE)})")
CHECK_DIR = ".vex-check"


class VexImport:
    """Imports the bundle's VEX repositories into ``store``; with None (a registry destination) skips them."""

    kind = ASSET
    root = ROOT

    def __init__(self, staging_root: Path, store: Store | None, *, skip_reason: str | None = None) -> None:
        self.staging_root = staging_root
        self.store = store
        self.skip_reason = skip_reason or ("a registry holds no VEX repositories; import the bundle into a store "
                                           "and serve it to give Trivy its VEX repositories")
        self._files: dict[str, BundleFile] = {}

    def check_files(self, files: Sequence[BundleFile]) -> None:
        for file in files:
            match = _MEMBER.fullmatch(file.path)
            if match is None or not NAME_RE.fullmatch(match["name"]):
                raise BundleError(f"bundle member {file.path!r} is not part of a VEX repository; refusing the bundle")
            self._files[file.path] = file

    async def needs_staging(self, file: BundleFile) -> bool:
        return self.store is not None

    def observer(self, file: BundleFile) -> MemberObserver | None:
        return None

    def close(self) -> None:
        pass

    async def plan(self, entries: Sequence[AssetEntry]) -> list[PlannedAsset]:
        if self.store is None:
            if entries:
                log.warning("not importing %s: %s", ", ".join(entry.reference for entry in entries), self.skip_reason)
            return [SkippedVex(entry) for entry in entries]
        store = self.store
        return [await asyncio.to_thread(self._plan, entry, store) for entry in entries]

    def _plan(self, entry: AssetEntry, store: Store) -> PlannedAsset:
        """Check one staged repository (blocking: unpacks the archive)."""
        name = entry.reference.removeprefix(f"{ASSET}/")
        archive, state_file = member(name, ARCHIVE_FILE), member(name, STATE_FILE)
        if entry.reference != reference(name) or archive not in self._files or state_file not in self._files:
            raise BundleError(f"bundle carries {entry.reference!r} without its {ARCHIVE_FILE} and {STATE_FILE}")
        try:
            document = json.loads((self.staging_root / state_file).read_bytes())
        except (OSError, ValueError) as err:
            raise BundleError(f"bundle member {state_file!r} is not a VEX repository state: {err}") from None
        state = VexState.from_json(name, document)
        current = state.current
        if (current is None or state.manifest is None or current.digest != entry.digest
                or current.digest != str(self._files[archive].digest) or current.size != entry.size):
            raise BundleError(f"bundle is inconsistent: {state_file} does not describe the {entry.reference} "
                              f"archive {entry.digest} its manifest lists")
        try:
            RepositoryManifest.from_json(state.manifest).version()
            work = self.staging_root / CHECK_DIR / name
            work.mkdir(parents=True)
            tree = check_repository(extract_archive(self.staging_root / archive, "tar.gz", work, Limits()), "")
        except RefusedCandidate as err:
            raise RefusedCandidate(f"{entry.reference}: {err}") from None
        finally:
            shutil.rmtree(self.staging_root / CHECK_DIR / name, ignore_errors=True)
        if tree.index.updated_at != current.index_updated_at:
            raise BundleError(f"bundle manifest does not match the {entry.reference} archive it carries (index "
                              f"updated_at {iso(current.index_updated_at)} != {iso(tree.index.updated_at)}); the "
                              f"bundle was altered")
        target = VexRepository(store.root, name)
        served = target.load().current
        if served is not None and not target.has_blob(served.digest):
            served = None
        planned = VexPlanned(entry, state, self.staging_root / archive, target,
                             changed=served is None or served.digest != current.digest)
        found = policy.vex_regression(name, current.index_updated_at,
                                      served.index_updated_at if served is not None else None)
        if planned.changed and found is not None:
            planned.downgrade = (f"{entry.reference} in the bundle was updated {found.candidate}, before the one "
                                 f"served ({found.served})")
        return planned


class VexPlanned:
    """One checked VEX repository; :meth:`publish` stores it as ``sync`` would."""

    def __init__(self, entry: AssetEntry, state: VexState, archive: Path, target: VexRepository, *,
                 changed: bool) -> None:
        self.entry = entry
        self.state = state
        self.archive = archive
        self.target = target
        self.changed = changed
        self.downgrade: str | None = None

    async def publish(self) -> ImportResult:
        updated_at, next_update = dates(self.state)
        if self.changed:
            await asyncio.to_thread(self._store)
        return ImportResult(self.entry, "updated" if self.changed else "unchanged", updated_at, next_update)

    def _store(self) -> None:
        current = self.state.current
        assert current is not None
        # The staging directory is in the store's .tmp: the checked archive moves into place, no second copy.
        self.target.add_blob(self.archive, current.digest)
        old = self.target.load()
        previous = old.current.digest if old.current is not None and old.current.digest != current.digest \
            else old.previous
        self.target.save(replace(self.state, previous=previous).with_attempt(Attempt.now("imported", "from a bundle")))
        self.target.prune({current.digest, *([previous] if previous else [])})


class SkippedVex:
    """A VEX repository an import into a registry leaves out."""

    downgrade: str | None = None

    def __init__(self, entry: AssetEntry) -> None:
        self.entry = entry

    @property
    def changed(self) -> bool:
        return False

    async def publish(self) -> ImportResult:
        return ImportResult(self.entry, "skipped", self.entry.updated_at, self.entry.next_update)
