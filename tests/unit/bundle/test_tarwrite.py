"""The streaming tar writer: tarfile and tar(1) read what it writes, and its sha256 is the file's."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from trivy_mirror.bundle.tarwrite import RECORD, TarWriter

LONG = "oci/aquasec/trivy-java-db/blobs/sha256/" + "a" * 64 + "/" + "b" * 90


def _write(members: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    out = io.BytesIO()
    writer = TarWriter(out, 1_700_000_000)
    for name, data in members:
        writer.add(name, len(data), [data[i:i + 7] for i in range(0, len(data), 7)])
    writer.close()
    return out.getvalue(), writer.sha256


def test_tarfile_reads_every_member_back(tmp_path: Path) -> None:
    members = [("trivy-mirror-bundle.json", b"{}\n"), (LONG, b"x" * 1000), ("empty", b""), ("block", b"y" * 512)]
    data, sha256 = _write(members)
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert len(data) % RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        read = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
        assert all(m.mode == 0o644 and m.mtime == 1_700_000_000 and m.isreg() for m in tar.getmembers())
    assert read == members
    (tmp_path / "b.tar").write_bytes(data)
    listing = subprocess.run(["tar", "-tf", str(tmp_path / "b.tar")], capture_output=True, text=True, check=True)
    assert listing.stdout.splitlines() == [name for name, _ in members]


@pytest.mark.parametrize("chunks", [[b"abc"], [b"a"]])
def test_a_size_that_does_not_match_is_an_error(chunks: list[bytes]) -> None:
    with pytest.raises(ValueError, match="expected 2"):
        TarWriter(io.BytesIO(), 0).add("x", 2, chunks)
