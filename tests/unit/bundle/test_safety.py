"""Member names and types: what may come out of an archive."""

from __future__ import annotations

import posixpath
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.bundle.safety import check_member, check_path
from trivy_mirror.errors import UnsafeMember


@pytest.mark.parametrize("name", ["oci/aquasec/trivy-db/index.json", "a", "./a/b", "a.b/c-d_e"])
def test_safe_paths(name: str) -> None:
    assert check_path(name) == name.removeprefix("./")


@pytest.mark.parametrize("name", [
    "", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "./", "..", "a\\b", "C:evil", "c:/x",
    "a\x00b", "a\nb", "x" * 2000,
])
def test_unsafe_paths(name: str) -> None:
    with pytest.raises(UnsafeMember) as raised:
        check_path(name)
    assert "\n" not in str(raised.value)


@given(st.text(alphabet=st.sampled_from("ab./\\:\x00\n"), max_size=12))
def test_an_accepted_path_stays_inside_its_directory(name: str) -> None:
    try:
        path = check_path(name)
    except UnsafeMember:
        return
    joined = posixpath.normpath(posixpath.join("/base", path))
    assert joined.startswith("/base/") and path == posixpath.normpath(path)


def _member(kind: bytes, name: str = "oci/x", linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("kind", [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE])
def test_files_and_directories_are_accepted(kind: bytes) -> None:
    assert check_member(_member(kind)) == "oci/x"


@pytest.mark.parametrize(("kind", "said"), [
    (tarfile.SYMTYPE, "symbolic link (to '/etc/passwd')"), (tarfile.LNKTYPE, "hard link (to '/etc/passwd')"),
    (tarfile.CHRTYPE, "device file"), (tarfile.BLKTYPE, "device file"), (tarfile.FIFOTYPE, "FIFO"),
    (tarfile.GNUTYPE_SPARSE, "not a regular file"), (tarfile.CONTTYPE, "not a regular file"),
])
def test_links_devices_and_special_files_are_refused(kind: bytes, said: str) -> None:
    with pytest.raises(UnsafeMember, match="refusing") as raised:
        check_member(_member(kind, linkname="/etc/passwd"), "layer member")
    assert said in str(raised.value) and str(raised.value).startswith("layer member 'oci/x'")
