"""Checking the VEX repositories of a store (``verify``): ``STORE/vex/NAME/repository.json`` parses, the current
archive is stored and matches its digest and size, and every archive hashes to its name.

The archives are blob files the store's own pass (:class:`~trivy_mirror.store.verify.StoreVerifier`) has already
hashed, reported and, with repair, removed when corrupt; this pass asks it (``blob_ok``) rather than hashing them
again. Repair (the caller holds the store lock): an unreadable ``repository.json`` is removed, and a repository
whose current archive is gone or damaged forgets it, so the next sync downloads it again (without
``If-None-Match``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trivy_mirror.errors import MirrorError, StoreError
from trivy_mirror.store.verify import Problem
from trivy_mirror.vex.storage import VexRepository, VexState, present_names


@dataclass
class VexFindings:
    """What one pass over a store's VEX repositories counted and found."""

    repositories: int = 0
    problems: list[Problem] = field(default_factory=list)


class VexVerifier:
    """One pass over the VEX repositories under ``store_root``; call :meth:`run`."""

    def __init__(self, store_root: Path, *, repair: bool, blob_ok: Callable[[Path], bool]) -> None:
        self.store_root = store_root
        self.repair = repair
        self.blob_ok = blob_ok
        """The store pass's check of one blob file (hashed once, reported and repaired there when corrupt)."""
        self.findings = VexFindings()

    def run(self) -> VexFindings:
        for name in present_names(self.store_root):
            self._check(name)
        return self.findings

    def _check(self, name: str) -> None:
        try:
            repository = VexRepository(self.store_root, name)
        except StoreError:
            return
        self.findings.repositories += 1
        try:
            document = repository.read_document()
        except (OSError, ValueError) as err:
            problem = Problem("bad-vex-state", str(repository.state_path), f"cannot be read: {err}")
            self.findings.problems.append(problem)
            if self.repair:
                repository.remove_state()
                problem.repaired = True
            return
        state = VexState.from_json(name, document)
        if document.get("current") is not None and state.current is None:
            self._problem(repository, state, "the current version's record is invalid")
            return
        current = state.current
        if current is None:
            return
        try:
            path = repository.blob_path(current.digest)
        except MirrorError as err:
            self._problem(repository, state, str(err))
            return
        if not path.is_file():
            self._problem(repository, state, f"archive {current.digest[:19]} is missing")
        elif not self.blob_ok(path):
            self._problem(repository, state, f"archive {current.digest[:19]} is corrupt")
        elif path.stat().st_size != current.size:
            self._problem(repository, state, f"archive {current.digest[:19]} has {path.stat().st_size} bytes, "
                                             f"expected {current.size}")

    def _problem(self, repository: VexRepository, state: VexState, detail: str) -> None:
        """The current archive cannot be served; with repair, the repository forgets it."""
        problem = Problem("bad-vex-archive", f"vex/{repository.name}", detail)
        self.findings.problems.append(problem)
        if self.repair:
            repository.save(dataclasses.replace(state, current=None))
            problem.repaired = True
