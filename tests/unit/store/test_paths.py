"""Repository names map to directories inside the store and nowhere else; the default store location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from store_helpers import artifact, push

from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.reference import REPOSITORY_RE
from trivy_mirror.store import Store, default_store_dir
from trivy_mirror.store.paths import RESERVED_COMPONENTS

ROOT = Path("/srv/store")  # layout() does not touch the disk


# Built from parts (from_regex on the whole pattern is slow): alphanumeric runs joined by the allowed separators.
ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
COMPONENT = st.tuples(ALNUM, st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), ALNUM), max_size=3))
NAMES = st.lists(COMPONENT.map(lambda c: c[0] + "".join(sep + part for sep, part in c[1]))
                 | st.sampled_from(sorted(RESERVED_COMPONENTS)), min_size=1, max_size=30).map("/".join)


@given(NAMES)
@example("aquasec/trivy-db")
@example("a/b.c/d__e/f-g")
def test_valid_names_stay_inside_the_store(name: str) -> None:
    try:
        layout = Store(ROOT).layout(name)
    except InvalidReference:
        assert len(name) > 255 or RESERVED_COMPONENTS.intersection(name.split("/"))
        return
    resolved = Path(os.path.normpath(layout.path))
    assert resolved.is_relative_to(ROOT) and resolved != ROOT
    assert resolved.relative_to(ROOT).as_posix() == name
    assert layout.repository == name
    assert layout.location == f"oci-layout:{ROOT / name}"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40).filter(lambda s: not REPOSITORY_RE.fullmatch(s)))
@example("")
@example("..")
@example("../etc")
@example("a/../../b")
@example("/abs")
@example("a//b")
@example("a/")
@example(".tmp")
@example("Upper/case")
@example("a\0b")
def test_invalid_names_raise(name: str) -> None:
    with pytest.raises(InvalidReference):
        Store(ROOT).layout(name)


@pytest.mark.parametrize("name", ["a/blobs", "blobs", "a/index.json", "x/oci-layout/y", "a/trivy-mirror.json"])
def test_names_that_collide_with_layout_files_are_refused(name: str) -> None:
    with pytest.raises(InvalidReference, match="reserved path component"):
        Store(ROOT).layout(name)


async def test_repositories_lists_nested_layouts(store: Store) -> None:
    for name in ["aquasec/trivy-db", "aquasec", "aquasec/trivy-java-db", "z/y/x"]:
        await push(store.layout(name), artifact(name.encode()), "1")
    store.layout("only/state").write_state({"a": 1})
    (store.root / "Not-Valid").mkdir()
    (store.root / "Not-Valid" / "index.json").write_text("{}")
    assert store.repositories() == ["aquasec", "aquasec/trivy-db", "aquasec/trivy-java-db", "z/y/x"]


def test_repositories_of_a_missing_store(tmp_path: Path) -> None:
    assert Store(tmp_path / "nowhere").repositories() == []


def test_default_store_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRIVY_MIRROR_STORE", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_store_dir() == tmp_path / "home/.local/share/trivy-mirror/store"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_store_dir() == tmp_path / "home/.local/share/trivy-mirror/store"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_dir() == tmp_path / "data/trivy-mirror/store"
    monkeypatch.setenv("TRIVY_MIRROR_STORE", "~/mirror")
    assert default_store_dir() == tmp_path / "home/mirror"
