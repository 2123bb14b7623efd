"""The ``vex`` section on export: each mirrored VEX repository as its served archive and its state.

``vex/NAME/repository.json`` is the repository's state as the store keeps it (upstream manifest, current
version), without the last sync attempt; ``vex/NAME/archive.tar.gz`` is the repacked archive the server sends.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from trivy_mirror.bundle.format import AssetEntry, BundleFile
from trivy_mirror.bundle.sections import ExportPart, SourceFile
from trivy_mirror.catalog.attempt import NO_ATTEMPT
from trivy_mirror.errors import BundleError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.store import Store
from trivy_mirror.vex.status import ASSET, dates, reference
from trivy_mirror.vex.storage import VexRepository, stored_names

log = logging.getLogger(__name__)

ROOT = "vex"
ARCHIVE_FILE = "archive.tar.gz"
STATE_FILE = "repository.json"


def member(name: str, file: str) -> str:
    return f"{ROOT}/{name}/{file}"


class VexExport:
    """Collects every VEX repository of the store; ``required``: fail when there is none (``--assets vex``)."""

    kind = ASSET

    def __init__(self, store: Store, required: bool = False) -> None:
        self.store = store
        self.required = required

    async def collect(self) -> ExportPart:
        entries: list[AssetEntry] = []
        files: list[SourceFile] = []
        for name in stored_names(self.store.root):
            repository = VexRepository(self.store.root, name)
            state = repository.load()
            current = state.current
            if current is None or state.manifest is None or not repository.has_blob(current.digest):
                log.warning("%s: not exported: the store has no usable version of it", reference(name))
                continue
            document = replace(state, attempt=NO_ATTEMPT, history=()).to_json()
            data = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
            files += [SourceFile(BundleFile(member(name, STATE_FILE), Digest.of(data), len(data)), data=data),
                      SourceFile(BundleFile(member(name, ARCHIVE_FILE), Digest.parse(current.digest), current.size),
                                 path=repository.blob_path(current.digest))]
            updated_at, next_update = dates(state)
            entries.append(AssetEntry(ASSET, self.kind, reference(name), current.digest, current.size,
                                      current.source, updated_at, next_update))
        if self.required and not entries:
            raise BundleError(f"the store {self.store.root} has no VEX repository to export; sync one first, or "
                              f"leave vex out of --assets")
        return ExportPart(tuple(entries), tuple(files))
