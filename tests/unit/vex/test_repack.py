"""The served archive is a flat, reproducible tar.gz: same repository, same bytes, whatever the upstream shape."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from support.vex_repo import DOCUMENT, flat_tarball, github_tarball, repository_files, zip_archive
from trivy_mirror.vex.extract import Limits, extract_archive
from trivy_mirror.vex.repack import repack
from trivy_mirror.vex.tree import check_repository


def repacked(tmp_path: Path, label: str, data: bytes, kind: str, subdir: str) -> bytes:
    work = tmp_path / label
    (work / "tree").mkdir(parents=True)
    archive = work / "download"
    archive.write_bytes(data)
    tree = check_repository(extract_archive(archive, kind, work / "tree", Limits()), subdir)
    out = io.BytesIO()
    repack(tree, out)
    return out.getvalue()


def test_repack_is_deterministic_across_runs_and_upstream_shapes(tmp_path: Path) -> None:
    files = repository_files(extra={"pkg/a/z.json": b"{}", "pkg/a/b/c.json": b"{}", "é/ünïcode.json": b"{}",
                                    "pkg/" + "x" * 120 + "/long.json": b"{}"})
    first = repacked(tmp_path, "1", github_tarball(files), "tar.gz", "vexhub-main")
    second = repacked(tmp_path, "2", github_tarball(files), "tar.gz", "vexhub-main")
    other_times = repacked(tmp_path, "3", github_tarball(files, mtime=1), "tar.gz", "vexhub-*")
    flat = repacked(tmp_path, "4", flat_tarball(files), "tar.gz", "")
    zipped = repacked(tmp_path, "5", zip_archive(files, top="r-main"), "zip", "r-main")
    assert first == second == other_times == flat == zipped


def test_repacked_archive_is_flat_sorted_and_anonymous(tmp_path: Path) -> None:
    data = repacked(tmp_path, "x", github_tarball(repository_files()), "tar.gz", "vexhub-main")
    assert data[4:8] == b"\0\0\0\0"  # gzip MTIME
    assert not data[3] & 0x08  # no FNAME in the gzip header
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["README.md", "index.json", DOCUMENT]
        assert {(m.type, m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == \
            {(tarfile.REGTYPE, 0o644, 0, 0, 0, "", "")}
        extracted = tar.extractfile(DOCUMENT)
        assert extracted is not None and extracted.read() == repository_files()[DOCUMENT]


def test_different_content_gives_different_bytes(tmp_path: Path) -> None:
    affected = repacked(tmp_path, "a", flat_tarball(repository_files("affected")), "tar.gz", "")
    not_affected = repacked(tmp_path, "b", flat_tarball(repository_files()), "tar.gz", "")
    assert affected != not_affected
