"""Hostile archives are refused with one clear line and leave nothing outside the work directory; honest ones
(GitHub tarballs, zips, links inside the tree) unpack, and the repository root and index are checked."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import lzma
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.vex_repo import DOCUMENT, flat_tarball, github_tarball, repository_files, zip_archive
from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.vex.extract import Extracted, Limits, _Tree, extract_archive
from trivy_mirror.vex.tree import check_repository, select_root

Member = Callable[[tarfile.TarFile], None]


def regular(name: str, data: bytes = b"{}") -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def special(name: str, kind: bytes, target: str = "") -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)

    return add


def tar_gz(*members: Member) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            member(tar)
    return gzip.compress(buffer.getvalue())


class Workspace:
    """A work directory inside a parent that must stay untouched, as the sync's ``STORE/.tmp/vex-*``."""

    def __init__(self, root: Path) -> None:
        self.parent = root / "parent"
        self.work = self.parent / "work"
        self.dest = self.work / "tree"
        self.dest.mkdir(parents=True)

    def extract(self, data: bytes, kind: str = "tar.gz", limits: Limits | None = None) -> Extracted:
        archive = self.work / f"download.{kind}"
        archive.write_bytes(data)
        return extract_archive(archive, kind, self.dest, limits or Limits())

    def outside(self) -> list[str]:
        """Everything that exists outside the work directory."""
        return sorted(str(p.relative_to(self.parent)) for p in self.parent.rglob("*")
                      if self.work not in (p, *p.parents))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


HOSTILE_TARS = {
    "traversal": (tar_gz(regular("index.json"), regular("../escaped.json")), r"leaves the archive \(\.\.\)"),
    "deep traversal": (tar_gz(regular("a/b/../../../escaped.json")), r"leaves the archive"),
    "absolute": (tar_gz(regular("/tmp/absolute-escape.json")), "absolute member name"),
    "symlink escape": (tar_gz(special("link.json", tarfile.SYMTYPE, "../../../etc/passwd")), "points outside"),
    "absolute symlink": (tar_gz(special("link.json", tarfile.SYMTYPE, "/etc/passwd")), "points to the absolute"),
    "symlink then write through it": (
        tar_gz(special("dir", tarfile.SYMTYPE, "/tmp"), regular("dir/x.json")), "both a file and a directory"),
    "hardlink escape": (tar_gz(special("hard.json", tarfile.LNKTYPE, "../outside.json")), "leaves the archive"),
    "absolute hardlink": (tar_gz(special("hard.json", tarfile.LNKTYPE, "/etc/passwd")), "absolute member name"),
    "character device": (tar_gz(special("dev", tarfile.CHRTYPE)), "device, FIFO or other special"),
    "block device": (tar_gz(special("blk", tarfile.BLKTYPE)), "device, FIFO or other special"),
    "fifo": (tar_gz(special("fifo", tarfile.FIFOTYPE)), "device, FIFO or other special"),
    "duplicate member": (tar_gz(regular("index.json"), regular("index.json", b"[]")), "duplicate member"),
    "file then directory": (tar_gz(regular("a"), regular("a/b.json")), "both a file and a directory"),
    "directory then file": (tar_gz(special("a", tarfile.DIRTYPE), regular("a")), "both a file and a directory"),
    "link loop": (tar_gz(special("a", tarfile.SYMTYPE, "b"), special("b", tarfile.SYMTYPE, "a")), "loop"),
    "backslash": (tar_gz(regular("..\\..\\x.json")), "not a plain relative path"),
    "not gzip": (b"PK\x03\x04 definitely not gzip", "damaged or not a tar.gz archive"),
    "truncated": (flat_tarball(repository_files())[:200], "damaged or not a tar.gz archive"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_and_nothing_escapes(ws: Workspace, case: str) -> None:
    data, message = HOSTILE_TARS[case]
    with pytest.raises(RefusedCandidate, match=message) as caught:
        ws.extract(data)
    assert "\n" not in str(caught.value)
    assert ws.outside() == []
    assert not list(ws.dest.rglob("*")) or all(not p.is_symlink() for p in ws.dest.rglob("*"))


def test_decompression_bomb_is_refused_early(ws: Workspace) -> None:
    bomb = tar_gz(regular("index.json"), regular("zeros.json", bytes(20 << 20)))
    limits = Limits(max_ratio=50, ratio_floor_bytes=1 << 20)
    with pytest.raises(RefusedCandidate, match="a decompression bomb"):
        ws.extract(bomb, limits=limits)
    assert sum(p.stat().st_size for p in ws.dest.rglob("*") if p.is_file()) < 2 << 20


def test_xz_bomb_is_refused(ws: Workspace) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        regular("zeros.json", bytes(10 << 20))(tar)
    with pytest.raises(RefusedCandidate, match="decompression bomb"):
        ws.extract(lzma.compress(buffer.getvalue()), "tar.xz", Limits(max_ratio=20, ratio_floor_bytes=1 << 20))


def test_total_size_limit(ws: Workspace) -> None:
    data = tar_gz(*(regular(f"f{i}.json", os.urandom(100_000)) for i in range(5)))
    with pytest.raises(RefusedCandidate, match="unpacks to more than 300000 bytes"):
        ws.extract(data, limits=Limits(max_total_bytes=300_000))


def test_too_many_files(ws: Workspace) -> None:
    data = tar_gz(*(regular(f"pkg/{i}.json") for i in range(11)))
    with pytest.raises(RefusedCandidate, match="more than 10 members"):
        ws.extract(data, limits=Limits(max_files=10))


def zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zip_device(name: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o600) << 16
    return info, b""


@pytest.mark.parametrize(("entries", "message"), [
    ([("../zip-escape.json", b"{}")], "leaves the archive"),
    ([("/abs.json", b"{}")], "absolute member name"),
    ([zip_symlink("l.json", "../../x")], "points outside"),
    ([zip_symlink("l.json", "/etc/passwd")], "points to the absolute"),
    ([zip_device("dev")], "device, FIFO or other special"),
    ([("a.json", b"{}"), ("a.json", b"[]")], "duplicate member"),
    ([("z.json", bytes(8 << 20))], "decompression bomb"),
])
def test_hostile_zip_is_refused(ws: Workspace, entries: list[tuple[zipfile.ZipInfo | str, bytes]],
                                message: str) -> None:
    with pytest.warns(UserWarning) if message == "duplicate member" else contextlib.nullcontext():
        data = zip_with(entries)
    with pytest.raises(RefusedCandidate, match=message):
        ws.extract(data, "zip", Limits(max_ratio=50, ratio_floor_bytes=1 << 20))
    assert ws.outside() == []


def test_links_inside_the_tree_become_copies(ws: Workspace) -> None:
    data = tar_gz(regular("real/doc.json", b'{"a": 1}'), special("sym.json", tarfile.SYMTYPE, "real/doc.json"),
                  special("real/up.json", tarfile.SYMTYPE, "../sym.json"),
                  special("hard.json", tarfile.LNKTYPE, "real/doc.json"),
                  special("dangling.json", tarfile.SYMTYPE, "nowhere.json"),
                  special("to-dir", tarfile.SYMTYPE, "real"))
    extracted = ws.extract(data)
    assert extracted.files == {"real/doc.json", "sym.json", "real/up.json", "hard.json"}
    for name in extracted.files:
        path = ws.dest / name
        assert not path.is_symlink() and path.read_bytes() == b'{"a": 1}'
    assert not (ws.dest / "to-dir").exists() and not (ws.dest / "dangling.json").exists()


@pytest.mark.parametrize(("kind", "data"), [
    ("tar.gz", github_tarball(repository_files())),
    ("zip", zip_archive(repository_files(), top="vexhub-main")),
])
def test_github_shape_needs_its_subdir(ws: Workspace, kind: str, data: bytes) -> None:
    extracted = ws.extract(data, kind)
    with pytest.raises(RefusedCandidate, match="needs //vexhub-main"):
        check_repository(extracted, "")
    for pattern in ("vexhub-main", "vexhub-*", "vexhub-[^x]ain", "*"):
        tree = check_repository(extracted, pattern)
        assert tree.base == ws.dest / "vexhub-main"
        assert tree.files == ("README.md", "index.json", DOCUMENT)


def test_plain_compressors_hold_a_tar(ws: Workspace) -> None:
    raw = gzip.decompress(flat_tarball(repository_files()))
    assert check_repository(ws.extract(lzma.compress(raw), "xz"), "").index.entries
    with pytest.raises(RefusedCandidate, match="damaged or not a gz archive"):
        Workspace(ws.parent.parent / "other").extract(gzip.compress(b'{"single": "file"}'), "gz")


def test_subdir_must_match_exactly_one_directory(ws: Workspace) -> None:
    files = repository_files()
    extracted = ws.extract(tar_gz(*(regular(f"{top}/{name}", data) for top in ("a-main", "a-dev")
                                    for name, data in files.items())))
    with pytest.raises(RefusedCandidate, match="matches several directories: a-dev, a-main"):
        select_root(extracted, "a-*")
    with pytest.raises(RefusedCandidate, match=r"//b-main is not in the archive \(its top level: a-dev, a-main\)"):
        select_root(extracted, "b-main")
    with pytest.raises(RefusedCandidate, match=r"//a-main/index\.json is not in the archive"):
        select_root(extracted, "a-main/index.json")


def repository_with(index: object, documents: dict[str, bytes]) -> bytes:
    return tar_gz(regular("index.json", json.dumps(index).encode()),
                  *(regular(name, data) for name, data in documents.items()))


@pytest.mark.parametrize(("data", "message"), [
    (tar_gz(regular("README.md")), "no index.json in the archive root"),
    (tar_gz(regular("index.json", b"{not json")), "invalid index.json: not JSON"),
    (repository_with({"packages": [{"id": "pkg:pypi/requests", "location": "../../etc/passwd.json"}]}, {}),
     "points outside the repository"),
    (repository_with({"packages": [{"id": "pkg:pypi/requests", "location": "missing.json"}]}, {}),
     "lists missing.json, which is not in the archive"),
    (repository_with({"packages": [{"id": "pkg:pypi/requests", "location": "doc.json"}]}, {"doc.json": b"{x"}),
     "VEX document doc.json is not valid JSON"),
    (repository_with({"packages": [{"id": "pkg:pypi/requests", "location": "doc.json"}]}, {"doc.json": b"[]"}),
     "VEX document doc.json is not a JSON object"),
    (repository_with({"packages": [{"id": "pkg:pypi/requests@1.0", "location": "doc.json"}]}, {"doc.json": b"{}"}),
     "is not a package URL without version"),
])
def test_repository_checks(ws: Workspace, data: bytes, message: str) -> None:
    with pytest.raises(RefusedCandidate, match=message):
        check_repository(ws.extract(data), "")


def test_document_behind_a_dropped_link_is_reported_missing(ws: Workspace) -> None:
    data = tar_gz(regular("index.json", json.dumps({"packages": [{"id": "pkg:pypi/r", "location": "d/x.json"}]})
                          .encode()), regular("real/x.json"), special("d", tarfile.SYMTYPE, "real"))
    with pytest.raises(RefusedCandidate, match=r"lists d/x\.json, which is not in the archive"):
        check_repository(ws.extract(data), "")


@given(st.text(max_size=40))
def test_member_names_never_leave_the_tree(raw: str) -> None:
    tree = _Tree(Path("/nonexistent"), Limits())
    try:
        name = tree.name(raw)
    except RefusedCandidate:
        return
    parts = name.split("/") if name else []
    assert not name.startswith("/") and ".." not in parts and "" not in parts and "." not in parts
