"""``verify``: re-hash every blob of a store, check that every tag resolves to a complete manifest and that every
VEX archive matches its digest; optionally repair by removing what is corrupt so the next sync restores it.

What is checked, per OCI layout (``STORE/<repository>``):

- every file under ``blobs/ALG/HEX`` hashes to ``ALG:HEX`` (stored, referenced or not);
- ``index.json`` parses; every entry's manifest is stored, matches its digest and size, parses, and every blob it
  references (config, layers, an index's children, recursively) is stored with the right digest and size.

Per VEX repository (``STORE/vex/NAME``): ``repository.json`` parses, the current archive is stored and matches its
digest and size, and every archive file hashes to its name.

Repair (under the store lock): corrupt blobs are deleted, index entries whose manifest closure is incomplete are
dropped from ``index.json`` (so the next sync sees the tag missing and copies it again instead of trusting the
digest), an unreadable ``index.json`` or ``repository.json`` is removed, and a VEX repository whose current
archive is gone forgets it (the next sync downloads it without ``If-None-Match``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import InvalidDigest, InvalidManifest, MirrorError, StoreError
from trivy_mirror.fsutil import os_errors, write_atomic
from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci.digest import HEX_LENGTH, Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor, Index, parse_manifest
from trivy_mirror.store import Store
from trivy_mirror.store.index import parse_index, references, serialize_index, tag_of
from trivy_mirror.store.links import store_links
from trivy_mirror.store.paths import BLOBS_DIR, TMP_DIR
from trivy_mirror.vex.storage import STATE_FILE as VEX_STATE_FILE
from trivy_mirror.vex.storage import VEX_DIR, VexRepository, VexState
from trivy_mirror.vex.storage import stored_names as vex_names


@dataclass
class Problem:
    """One thing wrong with the store."""

    kind: str
    """``link``, ``corrupt-blob``, ``missing-blob``, ``bad-index``, ``incomplete-tag``, ``bad-vex-state``,
    ``bad-vex-archive``."""
    path: str
    detail: str
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}" + (" (repaired)" if self.repaired else "")


@dataclass
class Report:
    store: Path
    repositories: int = 0
    tags: int = 0
    blobs: int = 0
    bytes: int = 0
    vex_repositories: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(problem.repaired for problem in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"store": str(self.store), "ok": self.ok, "repositories": self.repositories, "tags": self.tags,
                "blobs": self.blobs, "bytes": self.bytes, "vex_repositories": self.vex_repositories,
                "problems": [problem.to_json() for problem in self.problems]}


def hash_file(path: Path, algorithm: str) -> tuple[str, int]:
    """The hex digest and size of a file, read in bounded chunks."""
    hasher = hashlib.new(algorithm)
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _blob_files(blobs_dir: Path) -> Iterator[Path]:
    with contextlib.suppress(FileNotFoundError):
        for algorithm_dir in sorted(blobs_dir.iterdir()):
            if algorithm_dir.is_dir() and not algorithm_dir.is_symlink():
                yield from sorted(p for p in algorithm_dir.iterdir())


class Verifier:
    """One run of ``verify`` over ``store``; call :meth:`run`."""

    def __init__(self, store: Store, *, repair: bool) -> None:
        self.store = store
        self.repair = repair
        self.report = Report(store.root)
        self._good: dict[Path, bool] = {}
        """Blob path -> whether it hashed to its name (each file is hashed once)."""

    def run(self) -> Report:
        root = self.store.root
        if not root.is_dir():
            raise StoreError(f"no store at {root}")
        self._check_links()
        for blobs_dir in self._blob_dirs():
            self._check_blob_dir(blobs_dir)
        for repository in self.store.repositories():
            self._check_layout(repository)
        for name in self._vex_candidates():
            self._check_vex(name)
        return self.report

    # Links

    def _check_links(self) -> None:
        """Report (and with repair, remove) links in place of control files and directories; the checks below
        never look through them."""
        for path in store_links(self.store.root):
            self._remove_bad("link", path, f"a symbolic link to {os.readlink(path)}: trivy-mirror never follows "
                                           f"links out of the store")  # the link itself, never its target

    def _remove_bad(self, kind: str, path: Path, detail: str) -> None:
        """Report a file that cannot be trusted; with repair, remove it (a link itself, never its target)."""
        problem = Problem(kind, str(path), detail)
        self.report.problems.append(problem)
        if self.repair:
            with contextlib.suppress(FileNotFoundError), os_errors(f"remove {path}"):
                path.unlink()
            problem.repaired = True

    # Blobs

    def _blob_dirs(self) -> list[Path]:
        found = []
        for dirpath, dirnames, _ in os.walk(self.store.root):
            if BLOBS_DIR in dirnames and not os.path.islink(Path(dirpath) / BLOBS_DIR):
                found.append(Path(dirpath) / BLOBS_DIR)
            dirnames[:] = [d for d in dirnames if d != BLOBS_DIR and not d.startswith(".")]
        return sorted(found)

    def _check_blob_dir(self, blobs_dir: Path) -> None:
        for path in _blob_files(blobs_dir):
            self._blob_ok(path)

    def _blob_ok(self, path: Path) -> bool:
        """Whether ``path`` (``.../blobs/ALG/HEX``) exists and hashes to its name; a corrupt one is reported."""
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
                self.report.blobs += 1
                self.report.bytes += size
                ok = actual == name
                detail = f"content hashes to {algorithm}:{actual[:12]}"
        self._good[path] = ok
        if not ok:
            self._remove_bad("corrupt-blob", path, detail)
        return ok

    def _descriptor_ok(self, layout_dir: Path, descriptor: Descriptor) -> str | None:
        """None when the blob is stored, intact and of the descriptor's size; else what is wrong."""
        path = layout_dir / BLOBS_DIR / descriptor.digest.algorithm / descriptor.digest.hex
        if not path.exists():
            return f"blob {descriptor.digest.short} is missing"
        if not self._blob_ok(path):
            return f"blob {descriptor.digest.short} is corrupt"
        if path.stat().st_size != descriptor.size:
            return f"blob {descriptor.digest.short} has {path.stat().st_size} bytes, expected {descriptor.size}"
        return None

    # OCI layouts

    def _check_layout(self, repository: str) -> None:
        layout = self.store.layout(repository)
        self.report.repositories += 1
        try:
            entries = parse_index(layout.index_path.read_bytes(), layout.index_path)
        except (OSError, StoreError) as err:
            self._remove_bad("bad-index", layout.index_path, str(err))
            return
        kept = []
        for entry in entries:
            tag = tag_of(entry)
            if tag is not None:
                self.report.tags += 1
            what = f"{repository}:{tag}" if tag else f"{repository}@{entry.digest.short}"
            detail = self._closure_problem(layout.path, entry, set())
            if detail is None:
                kept.append(entry)
                continue
            problem = Problem("incomplete-tag" if tag else "incomplete-manifest", what, detail, repaired=self.repair)
            self.report.problems.append(problem)
        if self.repair and len(kept) != len(entries):
            with os_errors(f"repair {layout.index_path}"):
                write_atomic(self.store.root / TMP_DIR, layout.index_path, serialize_index(kept))

    def _closure_problem(self, layout_dir: Path, descriptor: Descriptor, seen: set[Digest]) -> str | None:
        """What makes ``descriptor``'s manifest and everything it references incomplete; None when complete."""
        if descriptor.digest in seen:
            return None
        seen.add(descriptor.digest)
        if descriptor.size > MAX_MANIFEST_SIZE:
            return f"manifest {descriptor.digest.short} is listed with a size too large for a manifest"
        detail = self._descriptor_ok(layout_dir, descriptor)
        if detail is not None:
            return detail.replace("blob", "manifest", 1)
        path = layout_dir / BLOBS_DIR / descriptor.digest.algorithm / descriptor.digest.hex
        try:
            parsed = parse_manifest(path.read_bytes(), descriptor.media_type)
        except (OSError, InvalidManifest, InvalidDigest) as err:
            return f"manifest {descriptor.digest.short} cannot be read: {err}"
        for ref in references(parsed):
            if isinstance(parsed, Index):
                detail = self._closure_problem(layout_dir, ref, seen)
            elif ref.data is not None and self._descriptor_ok(layout_dir, ref) is not None:
                detail = None  # embedded data: the blob need not be stored
            else:
                detail = self._descriptor_ok(layout_dir, ref)
            if detail is not None:
                return f"manifest {descriptor.digest.short}: {detail}"
        return None

    # VEX repositories

    def _vex_candidates(self) -> list[str]:
        names = set(vex_names(self.store.root))
        with contextlib.suppress(OSError):
            names.update(e.name for e in os.scandir(self.store.root / VEX_DIR)
                         if e.is_dir(follow_symlinks=False) and (Path(e.path) / VEX_STATE_FILE).exists())
        return sorted(names)

    def _check_vex(self, name: str) -> None:
        try:
            repository = VexRepository(self.store.root, name)
        except StoreError:
            return
        self.report.vex_repositories += 1
        try:
            document = load_object(repository.state_path.read_bytes(), "", ValueError, not_json="{detail}",
                                   not_object="not a JSON object", too_deep="nested too deeply")
        except (OSError, ValueError) as err:
            self._remove_bad("bad-vex-state", repository.state_path, f"cannot be read: {err}")
            return
        state = VexState.from_json(name, document)
        if document.get("current") is not None and state.current is None:
            self._vex_problem(repository, state, "the current version's record is invalid")
            return
        current = state.current
        if current is None:
            return
        try:
            path = repository.blob_path(current.digest)
        except MirrorError as err:
            self._vex_problem(repository, state, str(err))
            return
        if not path.is_file():
            self._vex_problem(repository, state, f"archive {current.digest[:19]} is missing")
        elif not self._blob_ok(path):
            self._vex_problem(repository, state, f"archive {current.digest[:19]} is corrupt")
        elif path.stat().st_size != current.size:
            self._vex_problem(repository, state, f"archive {current.digest[:19]} has {path.stat().st_size} bytes, "
                                                 f"expected {current.size}")

    def _vex_problem(self, repository: VexRepository, state: VexState, detail: str) -> None:
        problem = Problem("bad-vex-archive", f"vex/{repository.name}", detail)
        self.report.problems.append(problem)
        if self.repair:
            repository.save(dataclasses.replace(state, current=None))
            problem.repaired = True


def verify_store(store: Store, *, repair: bool = False, lock_timeout: float = 600) -> Report:
    """Check (and with ``repair``, fix) ``store``; a repair holds the store lock, a check needs none."""
    if not repair:
        return Verifier(store, repair=False).run()
    if not store.root.is_dir():
        raise StoreError(f"no store at {store.root}")
    with store.lock(lock_timeout, purpose="verify --repair", allow_links=True):
        report = Verifier(store, repair=True).run()
        # Whatever a repair changed is checked again: the answer is about the store as it is now.
        after = Verifier(store, repair=False).run()
    for problem in after.problems:
        problem.repaired = False
    report.problems += [p for p in after.problems if p.path not in {q.path for q in report.problems}]
    if after.problems:
        for problem in report.problems:
            if problem.path in {p.path for p in after.problems}:
                problem.repaired = False
    return report
