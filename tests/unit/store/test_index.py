"""index.json logic without the file system."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import describe

from trivy_mirror.errors import StoreError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.store.index import (
    ANNOTATION_PREVIOUS_TAG,
    REF_NAME,
    parse_index,
    prune_entries,
    serialize_index,
    tag_entries,
    tagged,
)


def entry(name: str, **annotations: str) -> Descriptor:
    return describe(name.encode(), mediatype.OCI_MANIFEST, **annotations)


def test_serialize_parse_round_trip() -> None:
    entries = [entry("a", **{REF_NAME: "2"}), entry("b", **{ANNOTATION_PREVIOUS_TAG: "2"})]
    assert [(e.digest, e.annotations) for e in parse_index(serialize_index(entries), Path("i"))] == [
        (e.digest, e.annotations) for e in entries
    ]


def test_parse_error_names_the_file() -> None:
    with pytest.raises(StoreError, match=r"^/x/index.json is not a valid OCI image index \(.*\); repair or remove it$"):
        parse_index(b'{"manifests": 3}', Path("/x/index.json"))


def test_foreign_untagged_entries_are_kept_by_prune() -> None:
    foreign = entry("foreign")
    old = entry("old", **{ANNOTATION_PREVIOUS_TAG: "2"})
    current = entry("current", **{REF_NAME: "2"})
    kept, removed = prune_entries([foreign, old, current], keep=1)
    assert kept == [foreign, current]
    assert removed == [old]


def test_tag_entries_moves_the_tag_and_marks_history() -> None:
    first = entry("first", **{REF_NAME: "2", "other": "kept"})
    second = entry("second", **{REF_NAME: "2"})
    updated = tag_entries([first], second, "2")
    assert updated is not None
    assert [e.annotations for e in updated] == [{"other": "kept", ANNOTATION_PREVIOUS_TAG: "2"}, {REF_NAME: "2"}]
    assert tagged(updated) == {"2": second}
    assert tag_entries(updated, second, "2") is None
