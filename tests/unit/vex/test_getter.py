"""go-getter URL forms of locations, and ``--vex-from [NAME=]URL``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import RefusedCandidate, UsageError
from trivy_mirror.vex.getter import ARCHIVE_TYPES, display_location, parse_location, split_subdir
from trivy_mirror.vex.source import DEFAULT_SOURCE, VexSource, derive_name, manifest_url

VEXHUB_LOCATION = "https://github.com/aquasecurity/vexhub/archive/refs/heads/main.tar.gz//vexhub-main"


def test_vexhub_location() -> None:
    location = parse_location(VEXHUB_LOCATION)
    assert location.url == "https://github.com/aquasecurity/vexhub/archive/refs/heads/main.tar.gz"
    assert (location.subdir, location.archive, location.checksum) == ("vexhub-main", "tar.gz", None)
    assert location.raw == VEXHUB_LOCATION


@pytest.mark.parametrize(("raw", "url", "subdir", "archive"), [
    ("https://h/main.zip//vexhub-*", "https://h/main.zip", "vexhub-*", "zip"),
    ("https://h/blob//vexhub-main?archive=tar.gz", "https://h/blob", "vexhub-main", "tar.gz"),
    ("https://h/a.tgz", "https://h/a.tgz", "", "tgz"),
    ("https://h/a.tar.bz2", "https://h/a.tar.bz2", "", "tar.bz2"),
    ("https://h/a.tar.xz//x/y/", "https://h/a.tar.xz", "x/y", "tar.xz"),
    ("https://h/a.gz", "https://h/a.gz", "", "gz"),
    ("https://h/a.bz2", "https://h/a.bz2", "", "bz2"),
    ("http://10.0.0.5:8080/a.xz", "http://10.0.0.5:8080/a.xz", "", "xz"),
    ("https://h/dl?sig=a%2Fb&archive=zip&x=1", "https://h/dl?sig=a%2Fb&x=1", "", "zip"),
    ("https://u:p@h/a.tar.gz//./sub//", "https://u:p@h/a.tar.gz", "sub", "tar.gz"),
])
def test_location_forms(raw: str, url: str, subdir: str, archive: str) -> None:
    location = parse_location(raw)
    assert (location.url, location.subdir, location.archive) == (url, subdir, archive)


def test_checksum_parameter() -> None:
    digest = "ab" * 32
    assert parse_location(f"https://h/a.zip?checksum=sha256:{digest}").checksum == ("sha256", digest)
    assert parse_location(f"https://h/a.zip?checksum={'CD' * 20}").checksum == ("sha1", "cd" * 20)
    with pytest.raises(RefusedCandidate, match="unsupported checksum"):
        parse_location("https://h/a.zip?checksum=file:https://h/SUMS")
    with pytest.raises(RefusedCandidate, match="is not sha256:HEX"):
        parse_location("https://h/a.zip?checksum=sha256:abc")


@pytest.mark.parametrize(("raw", "message"), [
    ("https://server.local/main", "no archive extension"),
    ("https://h/blob?archive=tar.gz//vexhub-main", r"put //SUBDIR before \?archive="),
    ("https://h/a.zip?archive=false", "archive=false"),
    ("https://h/a.zip?archive=rar", "unsupported archive type 'rar'"),
    ("https://h/a.zip//../etc", "leaves the archive"),
    ("git::https://github.com/o/r.git", "go-getter git:: form is not supported"),
    ("ftp://h/a.zip", "not an http\\(s\\) URL"),
    ("github.com/o/r/a.zip", "not an http\\(s\\) URL"),
    ("https://[::1/a.zip", "not an http\\(s\\) URL"),
])
def test_unusable_locations_are_refused(raw: str, message: str) -> None:
    with pytest.raises(RefusedCandidate, match=message):
        parse_location(raw)


def test_split_subdir_is_go_getters() -> None:
    assert split_subdir("https://h/a.tar.gz//sub?archive=tar.gz") == ("https://h/a.tar.gz?archive=tar.gz", "sub")
    assert split_subdir("https://h/a?x=//y") == ("https://h/a?x=//y", "")
    assert split_subdir("h/a//b") == ("h/a", "b")


def test_display_hides_credentials_and_signatures() -> None:
    shown = display_location("https://user:secret@h:8443/a.tar.gz//sub?sig=SECRET&archive=tar.gz")
    assert shown == "https://h:8443/a.tar.gz//sub?archive=tar.gz"


@given(st.text(max_size=80))
def test_any_text_is_a_location_or_refused(raw: str) -> None:
    try:
        location = parse_location(raw)
    except RefusedCandidate as err:
        assert "\n" not in str(err) or "\n" in raw
        return
    assert location.archive in ARCHIVE_TYPES
    assert ".." not in location.subdir.split("/")
    assert location.url.startswith(("http://", "https://"))


def test_default_source_is_vexhub_from_raw_github() -> None:
    assert DEFAULT_SOURCE.name == "vexhub"
    assert DEFAULT_SOURCE.manifest_url == \
        "https://raw.githubusercontent.com/aquasecurity/vexhub/HEAD/vex-repository.json"


@pytest.mark.parametrize(("text", "name", "manifest"), [
    ("https://github.com/aquasecurity/vexhub", "vexhub",
     "https://raw.githubusercontent.com/aquasecurity/vexhub/HEAD/vex-repository.json"),
    ("mine=https://github.com/Org/My.Repo.git/", "mine",
     "https://raw.githubusercontent.com/Org/My.Repo/HEAD/vex-repository.json"),
    ("https://vex.example.com", "vex.example.com", "https://vex.example.com/.well-known/vex-repository.json"),
    ("internal=http://127.0.0.1:8080/prefix/", "internal",
     "http://127.0.0.1:8080/prefix/.well-known/vex-repository.json"),
    ("https://example.com/vex/Team_VEX?token=a=b", "team_vex",
     "https://example.com/vex/Team_VEX/.well-known/vex-repository.json?token=a=b"),
    ("https://github.example.com/o/r", "r", "https://github.example.com/o/r/.well-known/vex-repository.json"),
])
def test_vex_from(text: str, name: str, manifest: str) -> None:
    source = VexSource.parse(text)
    assert (source.name, source.manifest_url) == (name, manifest)


@pytest.mark.parametrize(("text", "message"), [
    ("VexHub=https://github.com/aquasecurity/vexhub", "invalid VEX repository name 'VexHub'"),
    ("x=ftp://h/", "invalid VEX repository URL"),
    ("x=", "invalid VEX repository URL"),
    ("https://github.com/aquasecurity/vexhub/tree/main", "expected https://github.com/OWNER/REPO"),
    ("https://h/#frag", "invalid VEX repository URL"),
])
def test_bad_vex_from(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        VexSource.parse(text)


def test_derived_name_needs_something_usable() -> None:
    assert derive_name("https://h/--x--") == "x--"
    with pytest.raises(UsageError, match="give one as NAME=URL"):
        derive_name("https://h/___/")
    assert manifest_url("https://h/") == "https://h/.well-known/vex-repository.json"
