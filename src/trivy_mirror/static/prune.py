"""Pruning a static tree: keep each tag's newest ``keep`` versions (manifests and their blobs), delete the rest;
a dated tag (``2-20261130.0600``) goes with its version.

Runs after a sync or import has written everything, holding the writer lock. The version before the current one
stays by default (``keep=2``), so a client that read the previous manifest a moment before a tag moved still
finds every blob it names; a file a server already has open is unaffected by its deletion anyway.
"""

from __future__ import annotations

import contextlib
import os

from trivy_mirror.errors import MirrorError, StoreError
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Index
from trivy_mirror.static.paths import BLOBS_DIR, MANIFESTS_DIR, is_digest_name
from trivy_mirror.static.repository import StaticRepository
from trivy_mirror.static.tree import StaticTree
from trivy_mirror.store.index import DATED_TAG


def prune_repository(tree: StaticTree, repository: str, keep: int) -> int:
    """Delete what no kept version references; the number of files deleted. StoreError (and nothing deleted)
    when a kept manifest cannot be read, since what it references would then be unknown."""
    target = tree.repository(repository)
    history = tree.history(repository)
    wanted: list[str] = []
    tags = _names(target, MANIFESTS_DIR, digests=False)
    dated = {tag for tag in tags if (match := DATED_TAG.match(tag)) and match["base"] in tags}
    for tag in (tag for tag in tags if tag not in dated):
        current = target.read_manifest(tag)
        if current is not None:
            wanted.append(str(current.digest))
        wanted.extend(history.get(tag, [])[-keep:])
    deleted = 0
    for tag in sorted(dated):  # a dated tag goes with its version
        version = target.read_manifest(tag)
        if version is not None and str(version.digest) not in wanted:
            deleted += _unlink(target.path / MANIFESTS_DIR / tag)
        elif version is not None:
            wanted.append(str(version.digest))
    manifests, blobs = _reachable(target, wanted)
    for name in _names(target, MANIFESTS_DIR, digests=True):
        if name not in manifests:
            deleted += _unlink(target.path / MANIFESTS_DIR / name)
    for name in _names(target, BLOBS_DIR, digests=True):
        if name not in blobs:
            deleted += _unlink(target.path / BLOBS_DIR / name)
    tree.save_history(repository, {tag: digests[-keep:] for tag, digests in history.items() if tag in tags})
    return deleted


def _reachable(target: StaticRepository, roots: list[str]) -> tuple[set[str], set[str]]:
    """The manifests and blobs that ``roots`` reach (through indexes); roots whose file is gone are skipped."""
    manifests: set[str] = set()
    blobs: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in manifests:
            continue
        try:
            manifest = target.read_manifest(str(Digest.parse(digest)))
        except MirrorError as err:
            raise StoreError(f"not pruning {target.location}: {err}") from None
        if manifest is None:
            continue
        manifests.add(digest)
        parsed = manifest.parsed
        if isinstance(parsed, Index):
            stack.extend(str(child.digest) for child in parsed.manifests)
        else:
            blobs.update(str(blob.digest) for blob in parsed.blobs)
    return manifests, blobs


def _names(target: StaticRepository, directory: str, *, digests: bool) -> list[str]:
    try:
        entries = list(os.scandir(target.path / directory))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if e.is_file(follow_symlinks=False) and is_digest_name(e.name) == digests)


def _unlink(path: os.PathLike[str]) -> int:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        return 1
    return 0


def prune(tree: StaticTree, keep: int) -> int:
    """:func:`prune_repository` for every repository of the tree; files deleted."""
    return sum(prune_repository(tree, repository, keep) for repository in tree.repositories())
