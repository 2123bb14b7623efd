"""Choosing the repository root inside an unpacked archive and checking it is a usable VEX repository.

The root is the archive itself or the directory the location's ``//SUBDIR`` glob names (exactly one match, as
go-getter requires). It must hold ``index.json``, and every document the index lists must be a regular file of
the tree that parses as a JSON object. The usual mistake, a GitHub archive served without ``//REPO-BRANCH``, is
named in the refusal.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.jsonutil import load_object
from trivy_mirror.vex.extract import Extracted
from trivy_mirror.vex.index import VexIndex

INDEX_FILE = "index.json"


@dataclass(frozen=True)
class RepositoryTree:
    """A checked repository: its directory, its files (relative to it, sorted) and its index."""

    base: Path
    files: tuple[str, ...]
    index: VexIndex


def _component_matches(pattern: str, name: str) -> bool:
    # Go's filepath.Match negates a class with [^...]; fnmatch spells it [!...].
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))


def select_root(extracted: Extracted, pattern: str) -> str:
    """The directory (relative, '' for the root) that ``pattern`` names in the archive."""
    if not pattern:
        return ""
    wanted = pattern.split("/")
    matches = sorted(
        directory for directory in extracted.dirs
        if len(parts := directory.split("/")) == len(wanted)
        and all(_component_matches(p, n) for p, n in zip(wanted, parts, strict=True))
    )
    if not matches:
        top = sorted({entry.split("/")[0] for entry in (*extracted.dirs, *extracted.files)})
        shown = ", ".join(top[:5]) + (", ..." if len(top) > 5 else "") if top else "nothing"
        raise RefusedCandidate(f"subdirectory //{pattern} is not in the archive (its top level: {shown})")
    if len(matches) > 1:
        raise RefusedCandidate(f"subdirectory //{pattern} matches several directories: {', '.join(matches[:3])}")
    return matches[0]


def check_repository(extracted: Extracted, pattern: str) -> RepositoryTree:
    """Select the root and check it: index.json, then every document it lists. Raises RefusedCandidate."""
    root = select_root(extracted, pattern)
    prefix = f"{root}/" if root else ""
    files = tuple(sorted(name[len(prefix):] for name in extracted.files if name.startswith(prefix)))
    base = extracted.root / root if root else extracted.root
    if INDEX_FILE not in files:
        raise RefusedCandidate(_missing_index(extracted, root))
    index = VexIndex.parse((base / INDEX_FILE).read_bytes())
    present = frozenset(files)
    for location in index.documents:
        if location not in present:
            raise RefusedCandidate(f"index.json lists {location}, which is not in the archive")
        load_object((base / location).read_bytes(), f"VEX document {location}", RefusedCandidate,
                    not_json="{what} is not valid JSON ({detail})")
    return RepositoryTree(base, files, index)


def _missing_index(extracted: Extracted, root: str) -> str:
    where = f"subdirectory {root}" if root else "the archive root"
    nested = sorted(name for name in extracted.files if name.endswith(f"/{INDEX_FILE}") and name.count("/") == 1)
    if not root and nested:
        directory = nested[0].split("/")[0]
        return (f"no {INDEX_FILE} at the archive root, but {nested[0]} exists: the location needs "
                f"//{directory} (a GitHub archive has a top-level directory)")
    return f"no {INDEX_FILE} in {where}"
