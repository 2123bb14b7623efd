"""kill -9 at any instant leaves a valid index whose every entry is complete, and no visible partial blob."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from trivy_mirror.oci.digest import Digest
from trivy_mirror.store import Layout, Store
from trivy_mirror.store.index import references

WRITER = """
import asyncio, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from store_helpers import artifact, push
from trivy_mirror.store import Store

async def main():
    store = Store(Path(sys.argv[1]))
    async with store.alock(timeout=30):
        layout = store.layout("aquasec/trivy-db")
        print("ready", flush=True)
        while True:
            for tag in ("2", "latest"):
                await push(layout, artifact(os.urandom(3 * 1024 * 1024)), tag)
            layout.prune(keep=2)
            layout.collect_garbage(grace_seconds=0)

asyncio.run(main())
"""


def check_consistent(layout: Layout) -> None:
    for entry in layout.manifests():
        manifest = layout.read_manifest(str(entry.digest))  # checks the manifest blob's digest and size
        assert manifest is not None
        for ref in references(manifest.parsed):
            data = layout.blob_path(ref.digest).read_bytes()
            assert Digest.of(data) == ref.digest and len(data) == ref.size
    for blob in (layout.path / "blobs" / "sha256").iterdir():
        assert Digest.of(blob.read_bytes()).hex == blob.name, "a partial blob became visible"


def test_kill_9_while_writing(store: Store) -> None:
    layout = store.layout("aquasec/trivy-db")
    chooser = random.Random(1234)
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), str(Path(__file__).parent)],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        time.sleep(chooser.uniform(0.05, 0.6))
        writer.kill()
        writer.wait()
        writer.stdout.close()
        check_consistent(layout)
    assert set(layout.tags()) <= {"2", "latest"}
    with store.lock():
        assert list((store.root / ".tmp").iterdir()) == []
