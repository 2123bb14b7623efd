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
    add_untagged,
    parse_index,
    prune_entries,
    serialize_index,
    tag_entries,
    tagged,
    untag,
    without_digest,
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


def test_prune_takes_the_referrers_of_a_pruned_version_and_keeps_the_rest() -> None:
    """Retention: a pruned version's signature (and the signature's own referrer) go with it; a referrer of a
    kept version, an untagged manifest without a subject and one whose subject was never here stay."""
    old = entry("old", **{ANNOTATION_PREVIOUS_TAG: "2"})
    current = entry("current", **{REF_NAME: "2"})
    old_signature, old_sbom_signature = entry("old-sig"), entry("old-sig-sig")
    current_signature, pushed, orphan = entry("current-sig"), entry("pushed"), entry("orphan")
    subjects = {old_signature.digest: old.digest, old_sbom_signature.digest: old_signature.digest,
                current_signature.digest: current.digest, orphan.digest: entry("never-here").digest}
    entries = [old, old_signature, old_sbom_signature, current, current_signature, pushed, orphan]
    kept, removed = prune_entries(entries, 1, lambda e: subjects.get(e.digest))
    assert kept == [current, current_signature, pushed, orphan]
    assert removed == [old, old_signature, old_sbom_signature]
    assert prune_entries(entries, 2, lambda e: subjects.get(e.digest)) == (entries, [])


def test_untagged_entries_tags_and_digests() -> None:
    first = entry("first", **{REF_NAME: "2"})
    loose = entry("loose")
    assert add_untagged([first], loose) == [first, loose]
    assert add_untagged([first, loose], loose) is None
    assert add_untagged([first], entry("first")) is None  # already served by digest through its tag
    history = entry("old", **{ANNOTATION_PREVIOUS_TAG: "2"})
    assert add_untagged([history, first], entry("old")) == [entry("old"), first]
    assert [e.annotations for e in add_untagged([history, first], entry("old")) or []] == [{}, {REF_NAME: "2"}]
    untagged = untag([first, loose], "2")
    assert untagged is not None and [e.annotations for e in untagged] == [{}, {}]
    assert untag([first], "3") is None
    twice = [first, entry("first", **{REF_NAME: "3"})]
    assert [tagged(e) for e in [untag(twice, "2") or []]] == [{"3": twice[1]}]
    assert without_digest([first, loose, twice[1]], first.digest) == [loose]
    assert without_digest([loose], first.digest) is None


def test_prune_takes_the_dated_tag_of_a_pruned_version_only() -> None:
    entries = [describe(b"v1", mediatype.OCI_MANIFEST, **{ANNOTATION_PREVIOUS_TAG: "2"}),
               describe(b"v1", mediatype.OCI_MANIFEST, **{REF_NAME: "2-20261128.0600"}),
               describe(b"v2", mediatype.OCI_MANIFEST, **{ANNOTATION_PREVIOUS_TAG: "2"}),
               describe(b"v2", mediatype.OCI_MANIFEST, **{REF_NAME: "2-20261129.0600"}),
               describe(b"v3", mediatype.OCI_MANIFEST, **{REF_NAME: "2"}),
               describe(b"v3", mediatype.OCI_MANIFEST, **{REF_NAME: "2-20261130.0600"}),
               describe(b"x", mediatype.OCI_MANIFEST, **{REF_NAME: "7-20200101.0000"})]  # no tag 7: ordinary
    kept, removed = prune_entries(entries, keep=2)
    assert set(tagged(kept)) == {"2", "2-20261130.0600", "2-20261129.0600", "7-20200101.0000"}
    assert removed == entries[:2]
    kept, removed = prune_entries(entries, keep=1)
    assert set(tagged(kept)) == {"2", "2-20261130.0600", "7-20200101.0000"}
    assert removed == entries[:4]
