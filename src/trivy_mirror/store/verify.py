"""Checking the OCI side of a store (``verify``): every blob re-hashed, every index entry resolving to a complete
manifest, no link in place of a control file or directory; with repair, removing what is corrupt so the next sync
restores it.

What is checked:

- no link stands in place of a control file or directory (:meth:`Store.links`);
- every file under a ``blobs/ALG/`` directory (a layout's or a VEX repository's) hashes to ``ALG:HEX``, stored,
  referenced or not;
- per OCI layout (``STORE/<repository>``): ``index.json`` parses; every entry's manifest is stored, matches its
  digest and size, parses, and every blob it references (config, layers, an index's children, recursively) is
  stored with the right digest and size.

Repair (the caller holds the store lock): a link is removed (the link itself, never its target), a corrupt blob
is deleted, an unreadable ``index.json`` is removed, and the index entries whose manifest closure is incomplete
are dropped (so the next sync sees the tag missing and copies it again instead of trusting the digest).

The VEX repositories are the ``vex`` package's to check (``vex.verify``); they share this pass's
:meth:`StoreVerifier.blob_ok`, so each blob file is hashed once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import InvalidDigest, InvalidManifest, StoreError
from trivy_mirror.fsutil import os_errors
from trivy_mirror.oci.digest import HEX_LENGTH, Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor, Index, parse_manifest
from trivy_mirror.store.index import references, tag_of
from trivy_mirror.store.layout import Layout
from trivy_mirror.store.store import Store


@dataclass
class Problem:
    """One thing wrong with the store."""

    kind: str
    """``link``, ``corrupt-blob``, ``bad-index``, ``incomplete-tag``, ``incomplete-manifest`` (here),
    ``bad-vex-state``, ``bad-vex-archive`` (``vex.verify``)."""
    path: str
    detail: str
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}" + (" (repaired)" if self.repaired else "")


@dataclass
class StoreFindings:
    """What one pass over the OCI side of a store counted and found."""

    repositories: int = 0
    tags: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


def hash_file(path: Path, algorithm: str) -> tuple[str, int]:
    """The hex digest and size of a file, read in bounded chunks."""
    hasher = hashlib.new(algorithm)
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


class StoreVerifier:
    """One pass over the OCI side of ``store``; call :meth:`run`, then (for the VEX archives) :meth:`blob_ok`."""

    def __init__(self, store: Store, *, repair: bool) -> None:
        self.store = store
        self.repair = repair
        self.findings = StoreFindings()
        self._good: dict[Path, bool] = {}
        """Blob path -> whether it hashed to its name (each file is hashed once)."""

    def run(self) -> StoreFindings:
        """StoreError when there is no store at all (a typo in ``--store`` must not pass as a clean store)."""
        if not self.store.root.is_dir():
            raise StoreError(f"no store at {self.store.root}")
        for path in self.store.links():
            self._remove_bad("link", path, f"a symbolic link to {os.readlink(path)}: trivy-mirror never follows "
                                           f"links out of the store")
        for path in self.store.blob_files():
            self.blob_ok(path)
        for repository in self.store.repositories():
            self._check_layout(self.store.layout(repository))
        return self.findings

    def _remove_bad(self, kind: str, path: Path, detail: str) -> None:
        """Report a file that cannot be trusted; with repair, remove it (a link itself, never its target)."""
        problem = Problem(kind, str(path), detail)
        self.findings.problems.append(problem)
        if self.repair:
            with contextlib.suppress(FileNotFoundError), os_errors(f"remove {path}"):
                path.unlink()
            problem.repaired = True

    # Blobs

    def blob_ok(self, path: Path) -> bool:
        """Whether ``path`` (``.../blobs/ALG/HEX``) exists and hashes to its name; a corrupt one is reported (and
        with repair, removed). Each file is hashed once per pass."""
        if path in self._good:
            return self._good[path]
        algorithm, name = path.parent.name, path.name
        ok = False
        if not path.is_file() or path.is_symlink():
            detail = "not a regular file"
        elif algorithm not in HEX_LENGTH or len(name) != HEX_LENGTH[algorithm]:
            detail = "not named ALGORITHM/HEX"
        else:
            try:
                actual, size = hash_file(path, algorithm)
            except FileNotFoundError:
                return False  # removed by a concurrent garbage collection: not a problem
            except OSError as err:
                detail = f"cannot read: {err.strerror or err}"
            else:
                self.findings.blobs += 1
                self.findings.bytes += size
                ok = actual == name
                detail = f"content hashes to {algorithm}:{actual[:12]}"
        self._good[path] = ok
        if not ok:
            self._remove_bad("corrupt-blob", path, detail)
        return ok

    def _descriptor_ok(self, layout: Layout, descriptor: Descriptor) -> str | None:
        """None when the blob is stored, intact and of the descriptor's size; else what is wrong."""
        path = layout.blob_path(descriptor.digest)
        if not path.exists():
            return f"blob {descriptor.digest.short} is missing"
        if not self.blob_ok(path):
            return f"blob {descriptor.digest.short} is corrupt"
        if path.stat().st_size != descriptor.size:
            return f"blob {descriptor.digest.short} has {path.stat().st_size} bytes, expected {descriptor.size}"
        return None

    # OCI layouts

    def _check_layout(self, layout: Layout) -> None:
        self.findings.repositories += 1
        try:
            entries = layout.manifests()
        except StoreError as err:
            self._remove_bad("bad-index", layout.index_path, str(err))
            return
        incomplete: list[Digest] = []
        for entry in entries:
            tag = tag_of(entry)
            if tag is not None:
                self.findings.tags += 1
            what = f"{layout.repository}:{tag}" if tag else f"{layout.repository}@{entry.digest.short}"
            detail = self._closure_problem(layout, entry, set())
            if detail is not None:
                incomplete.append(entry.digest)
                problem = Problem("incomplete-tag" if tag else "incomplete-manifest", what, detail,
                                  repaired=self.repair)
                self.findings.problems.append(problem)
        if self.repair:
            for digest in dict.fromkeys(incomplete):
                layout.delete_manifest(digest)  # every entry of it: they all share its incomplete closure

    def _closure_problem(self, layout: Layout, descriptor: Descriptor, seen: set[Digest]) -> str | None:
        """What makes ``descriptor``'s manifest and everything it references incomplete; None when complete."""
        if descriptor.digest in seen:
            return None
        seen.add(descriptor.digest)
        if descriptor.size > MAX_MANIFEST_SIZE:
            return f"manifest {descriptor.digest.short} is listed with a size too large for a manifest"
        detail = self._descriptor_ok(layout, descriptor)
        if detail is not None:
            return detail.replace("blob", "manifest", 1)
        try:
            parsed = parse_manifest(layout.blob_path(descriptor.digest).read_bytes(), descriptor.media_type)
        except (OSError, InvalidManifest, InvalidDigest) as err:
            return f"manifest {descriptor.digest.short} cannot be read: {err}"
        for ref in references(parsed):
            if isinstance(parsed, Index):
                detail = self._closure_problem(layout, ref, seen)
            elif ref.data is not None and self._descriptor_ok(layout, ref) is not None:
                detail = None  # embedded data: the blob need not be stored
            else:
                detail = self._descriptor_ok(layout, ref)
            if detail is not None:
                return f"manifest {descriptor.digest.short}: {detail}"
        return None
