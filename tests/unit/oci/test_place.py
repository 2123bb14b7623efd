"""The one place type: every accepted form, the refusals with their messages, and the label round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.place import OCI_LAYOUT, REGISTRY, STATIC, STORE, Place, scheme_of
from trivy_mirror.oci.reference import Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "registry", "path", "transport", "label"), [
    ("127.0.0.1:5077/aquasec", "127.0.0.1:5077", "aquasec", None, "127.0.0.1:5077/aquasec"),
    ("registry.internal", "registry.internal", "", None, "registry.internal"),
    ("https://registry.internal/team/", "registry.internal", "team", "https", "registry.internal/team"),
    ("HTTP://10.0.0.5:5000", "10.0.0.5:5000", "", "http", "10.0.0.5:5000"),
    ("docker://registry.internal/a/b", "registry.internal", "a/b", None, "registry.internal/a/b"),
    ("aquasec", "docker.io", "aquasec", None, "docker.io/aquasec"),
    ("index.docker.io/aquasec", "docker.io", "aquasec", None, "docker.io/aquasec"),
    ("localhost/x", "localhost", "x", None, "localhost/x"),
    ("[::1]:5000/x", "[::1]:5000", "x", None, "[::1]:5000/x"),
])
def test_registry_prefixes(text: str, registry: str, path: str, transport: str | None, label: str) -> None:
    place = Place.parse(text)
    assert (place.scheme, place.registry, place.path, place.transport) == (REGISTRY, registry, path, transport)
    assert str(place) == label and Place.parse(label) == place
    assert place.url == (f"{transport}://{label}" if transport else label)


def test_prefix_repositories_and_references() -> None:
    prefix = Place.parse("127.0.0.1:5077/aquasec")
    assert prefix.reference("trivy-db", "2") == Reference("127.0.0.1:5077", "aquasec/trivy-db", "2")
    assert Place.parse("registry.internal").repository("aquasec/trivy-db") == "aquasec/trivy-db"
    assert Place.parse("https://registry.internal/team") == Place.parse("registry.internal/team")


@pytest.mark.parametrize(("text", "reference", "manifest", "push_tag"), [
    ("ghcr.io/aquasecurity/trivy-db:2", "ghcr.io/aquasecurity/trivy-db:2", "2", "2"),
    ("ubuntu", "docker.io/library/ubuntu:latest", "latest", "latest"),
    (f"https://r.internal/a@{DIGEST}", f"r.internal/a@{DIGEST}", DIGEST, None),
    (f"r.internal/a:2@{DIGEST}", f"r.internal/a:2@{DIGEST}", DIGEST, None),
    ("localhost:5000/a/b", "localhost:5000/a/b:latest", "latest", "latest"),
])
def test_registry_artifacts(text: str, reference: str, manifest: str, push_tag: str | None) -> None:
    place = Place.parse(text, artifact=True)
    assert place.scheme == REGISTRY
    assert str(place.artifact()) == reference
    assert (place.manifest_reference, place.push_tag) == (manifest, push_tag)
    assert place.transport == ("https" if text.startswith("https://") else None)


def test_file_places() -> None:
    layout = Place.parse("oci-layout:/media/usb/Trivy DB:2", artifact=True)
    assert (layout.scheme, layout.directory, layout.tag) == (OCI_LAYOUT, Path("/media/usb/Trivy DB"), "2")
    assert (layout.manifest_reference, layout.push_tag, str(layout)) == ("2", "2", "oci-layout:/media/usb/Trivy DB:2")
    assert Place.parse("oci-layout:rel/dir").directory == Path("rel/dir")
    static = Place.parse("static:/srv/trivy")
    assert (static.scheme, static.directory, str(static)) == (STATIC, Path("/srv/trivy"), "static:/srv/trivy")
    assert Place.parse("static:~/t").directory == Path.home() / "t"
    store = Place.store(Path("/var/lib/store"))
    assert (store.scheme, str(store), store.directory) == (STORE, "/var/lib/store", Path("/var/lib/store"))


@pytest.mark.parametrize(("text", "artifact", "message"), [
    ("", False, "empty registry prefix"),
    ("https://", False, "empty registry prefix"),
    ("registry.internal/Bad Path", False, "invalid repository name"),
    ("bad_host:x/a", False, "invalid registry host"),
    ("static:", False, "static: needs a directory"),
    ("oci-layout:", False, "an OCI layout is oci-layout:DIR"),
    ("oci-layout:/dir", True, "oci-layout:DIR:TAG"),
    ("oci-layout::2", True, "oci-layout:DIR:TAG"),
    ("oci-layout:/dir:a/b", True, "oci-layout:DIR:TAG"),
    ("oci-layout:/dir:-x", True, "invalid tag"),
    ("static:/srv", True, "not one artifact's place"),
    ("UPPER/case:1", True, "invalid repository name"),
    ("a@sha256:abc", True, "invalid reference"),
])
def test_refusals(text: str, artifact: bool, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        Place.parse(text, artifact=artifact)


def test_sources_are_registry_prefixes() -> None:
    assert Place.parse_registry("http://10.0.0.5:5000/aquasec").transport == "http"
    for text in ("static:/srv", "oci-layout:/dir"):
        with pytest.raises(InvalidReference, match="is not a registry prefix"):
            Place.parse_registry(text)


_COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True).filter(lambda c: len(c) <= 20)


@given(host=st.sampled_from(["r.internal", "10.0.0.5:5000", "localhost:5000", "[::1]:443"]),
       components=st.lists(_COMPONENT, min_size=0, max_size=3),
       tag=st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
       digest=st.booleans())
def test_label_round_trip(host: str, components: list[str], tag: str | None, digest: bool) -> None:
    prefix = Place.parse("/".join([host, *components]))
    assert Place.parse(str(prefix)) == prefix
    if not components:
        return
    artifact = Place(host, "/".join(components), tag=tag, digest=Digest.parse(DIGEST) if digest else None)
    assert Place.parse(str(artifact), artifact=True) == artifact


def test_scheme_of_reads_the_prefix_alone() -> None:
    assert [scheme_of(t) for t in ("static:", "oci-layout:/x", "r.internal/static:1", "https://r")] == [
        STATIC, OCI_LAYOUT, REGISTRY, REGISTRY]
