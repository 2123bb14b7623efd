import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.reference import Reference, is_plain_http_allowed

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("aquasec/trivy-db", "docker.io", "aquasec/trivy-db", "latest", None),
        ("ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("index.docker.io/aquasec/trivy-db:2", "docker.io", "aquasec/trivy-db", "2", None),
        ("mirror.gcr.io/aquasec/trivy-db:2", "mirror.gcr.io", "aquasec/trivy-db", "2", None),
        ("localhost/foo", "localhost", "foo", "latest", None),
        ("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", None),
        ("127.0.0.1:5000/aquasec/trivy-db:2", "127.0.0.1:5000", "aquasec/trivy-db", "2", None),
        (f"ghcr.io/aquasecurity/trivy-db@{DIGEST}", "ghcr.io", "aquasecurity/trivy-db", None, DIGEST),
        (f"ghcr.io/aquasecurity/trivy-db:2@{DIGEST}", "ghcr.io", "aquasecurity/trivy-db", "2", DIGEST),
        ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None),
    ],
)
def test_parse_docker_rules(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert ref.reference == (digest or tag)


@pytest.mark.parametrize("text", ["", " x", "UPPER/case", "a//b", "a/b:", "a/b:-tag", "a@sha256:abc",
                                  "a/b@md5:" + "a" * 32, "-a/b", "a/../b"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidReference):
        Reference.parse(text)


def test_reference_roundtrip_string() -> None:
    ref = Reference.parse("127.0.0.1:5000/aquasec/trivy-db:2")
    assert Reference.parse(str(ref)) == ref


@given(st.text(max_size=300))
def test_parse_never_crashes(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except InvalidReference:
        return
    assert ".." not in ref.repository.split("/")
    assert not ref.repository.startswith("/")


_component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}", fullmatch=True)


@given(st.lists(_component, min_size=1, max_size=4), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
def test_valid_names_roundtrip(components: list[str], tag: str) -> None:
    text = "registry.example:5000/" + "/".join(components) + ":" + tag
    ref = Reference.parse(text)
    assert str(ref) == text
    assert ref.tag == tag


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("localhost:5000", True), ("127.0.0.1:5000", True), ("127.0.0.2", True), ("[::1]:5000", True),
     ("10.1.2.3:443", True), ("172.16.0.1", True), ("172.32.0.1", False), ("192.168.1.1:5000", True),
     ("registry.localhost", True), ("registry.example:5000", False), ("8.8.8.8", False)],
)
def test_plain_http_hosts(host: str, allowed: bool) -> None:
    assert is_plain_http_allowed(host) is allowed


def test_digest_parse_and_str() -> None:
    digest = Digest.parse(DIGEST)
    assert str(digest) == DIGEST
    assert Digest.of(b"{}") == Digest.parse("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
