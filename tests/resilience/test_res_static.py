"""Crash consistency of a static tree (``sync --to static:DIR``): ``kill -9`` at random instants while a 16 MB DB
lands. After each kill the tag file is the old or the new manifest, whole, and everything it references is in
the tree with its size; the sidecar parses; the next sync converges, cleans its temp files and prunes what the
killed runs left behind.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import MirrorCli, kill_at_random
from support.faultproxy import FAST
from support.registry import RegistryProcess, push_artifact
from support.trivy_assets import DB_REPOSITORY, Artifact, AssetSet, build_vuln_db, sha256_digest

pytestmark = pytest.mark.resilience

KILLS = 15
REPOSITORY = Path("v2") / DB_REPOSITORY


@pytest.fixture(scope="module")
def newer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Artifact, RegistryProcess]]:
    new = build_vuln_db(updated_at=datetime.now(UTC) + timedelta(minutes=5), filler_bytes=16_000_000)
    with RegistryProcess(tmp_path_factory.mktemp("static-source")) as source:
        push_artifact(source.host, DB_REPOSITORY, "2", new)
        yield new, source


def blobs_of(manifest: bytes) -> list[tuple[str, int]]:
    document = json.loads(manifest)
    return [(d["digest"], d["size"]) for d in [document["config"], *document["layers"]]]


def served(tree: Path) -> tuple[str, list[tuple[str, int]]]:
    """The tag's manifest digest, and the (digest, size) of every blob it references."""
    body = (tree / REPOSITORY / "manifests" / "2").read_bytes()
    return f"sha256:{hashlib.sha256(body).hexdigest()}", blobs_of(body)


def assert_complete(tree: Path, blobs: list[tuple[str, int]]) -> None:
    for digest, size in blobs:
        path = tree / REPOSITORY / "blobs" / digest
        assert path.stat().st_size == size, digest
        assert sha256_digest(path.read_bytes()) == digest


def test_kill_9_during_sync_into_a_static_tree(newer: tuple[Artifact, RegistryProcess], upstream: RegistryProcess,
                                               assets: AssetSet, mirror: MirrorCli, tmp_path: Path) -> None:
    new, source = newer
    rng = random.Random(11)
    base, tree = tmp_path / "base", tmp_path / "tree"
    first = mirror.run(["sync", "--to", f"static:{base}", "--from", f"{upstream.host}/aquasec", "--assets", "db"])
    assert first.returncode == 0, first.stderr
    shutil.copytree(base, tree, symlinks=True)
    args = ["sync", "--to", f"static:{tree}", "--from", f"{source.host}/aquasec", "--assets", "db"]
    started = time.monotonic()
    assert mirror.run(args, env=FAST).returncode == 0
    window = time.monotonic() - started  # kills land anywhere from start-up to the tag move
    for _ in range(KILLS):
        if served(tree)[0] == new.digest:  # the last run finished: start again from the old version
            shutil.rmtree(tree)
            shutil.copytree(base, tree, symlinks=True)
        kill_at_random(mirror, args, FAST, window, rng)
        digest, blobs = served(tree)
        assert digest in (assets.db.digest, new.digest)
        assert (tree / REPOSITORY / "manifests" / digest).read_bytes() == (tree / REPOSITORY / "manifests" / "2"
                                                                             ).read_bytes()
        assert_complete(tree, blobs)
        json.loads((tree / ".trivy-mirror" / "headers.json").read_bytes())
    result = mirror.run(args, env=FAST)
    assert result.returncode == 0, result.stderr
    digest, blobs = served(tree)
    assert digest == new.digest
    assert_complete(tree, blobs)
    assert not list((tree / ".trivy-mirror" / ".tmp").glob("*"))
    kept = {d for d, _ in blobs} | {d for d, _ in blobs_of(assets.db.manifest)}
    assert {p.name for p in (tree / REPOSITORY / "blobs").iterdir()} == kept  # --keep 2: old and new only
