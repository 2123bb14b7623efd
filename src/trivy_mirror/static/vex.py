"""Publishing VEX repositories into a static tree: ``DIR/vex/NAME/`` from the work store's ``vex/NAME``.

``sync`` and ``import`` store and check VEX repositories exactly as for the local store, in the tree's work store
(``DIR/.trivy-mirror/vex``); publishing then places, for each one, the archive at ``vex/NAME/archive.tar.gz``
(a hard link of the stored archive renamed into place) and last its manifest, whose one location is
``PUBLIC_URL/vex/NAME/archive.tar.gz``. That URL never changes, as Trivy caches a manifest for ever: new
versions appear behind it by rename. An unchanged archive keeps its file (and so the ETag a server derives).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from trivy_mirror.errors import MirrorError
from trivy_mirror.fsutil import commit, ensure_dir, os_errors, write_atomic
from trivy_mirror.static.sidecar import VEX_ARCHIVE, VEX_MANIFEST
from trivy_mirror.static.tree import StaticTree
from trivy_mirror.vex.manifest import RepositoryManifest
from trivy_mirror.vex.serve import archive_url
from trivy_mirror.vex.storage import VexRepository, stored_names


def stored_vex(tree: StaticTree) -> list[str]:
    """The VEX repositories the work store holds."""
    return stored_names(tree.work.root)


def publish_vex(tree: StaticTree, public_url: str) -> list[str]:
    """Publish every stored VEX repository that has a version; the names published (call holding the lock)."""
    published = []
    for name in stored_vex(tree):
        repository = VexRepository(tree.work.root, name)
        state = repository.load()
        if state.current is None or state.manifest is None or not repository.has_blob(state.current.digest):
            continue
        try:
            document = RepositoryManifest.from_json(state.manifest).served(archive_url(public_url, name))
        except MirrorError:
            continue  # a manifest stored by other rules; sync refuses such manifests, so it is never a new one
        directory = tree.vex / name
        with os_errors(f"publish VEX repository {name} into {directory}"):
            _place_archive(tree, repository.blob_path(state.current.digest), directory / VEX_ARCHIVE)
            data = json.dumps(document, indent=2).encode() + b"\n"
            manifest = directory / VEX_MANIFEST
            if not manifest.is_file() or manifest.read_bytes() != data:
                write_atomic(tree.tmp, manifest, data)
        published.append(name)
    return published


def _place_archive(tree: StaticTree, blob: Path, target: Path) -> None:
    """``target`` becomes ``blob`` by one rename: a hard link when possible, else a copy."""
    try:
        if os.path.samefile(blob, target):
            return
    except FileNotFoundError:
        pass
    ensure_dir(tree.tmp)
    tmp = tree.tmp / f".vex-archive.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(blob, tmp)
    except OSError:  # a file system without hard links
        shutil.copyfile(blob, tmp)
        with tmp.open("rb") as file:
            os.fsync(file.fileno())
    try:
        commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
