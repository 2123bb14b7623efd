"""Structural tests of the bbolt writer in ``support.bbolt``.

The reader below is written from bbolt's page layout, independently of the writer's helpers, and is strict the way
``tx.Check()`` is: every page id below the high-water mark is used exactly once, page headers carry their own id,
keys are sorted, branch keys are the first key of their child. The final proof that Trivy accepts the files is
``tests/e2e/test_fixture_assets.py``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.bbolt import fnv1a64, write_bbolt
from support.trivy_assets import FILLER_BUCKET, vuln_db_buckets

PAGE = 4096


@dataclass
class Layout:
    """What the reader saw besides the content."""

    page_count: int
    txids: list[int]
    inline_buckets: set[tuple[bytes, ...]] = field(default_factory=set)
    paged_buckets: set[tuple[bytes, ...]] = field(default_factory=set)
    overflow_pages: int = 0
    max_depth: int = 0


class Reader:
    """A strict reader of a whole bbolt file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.used: set[int] = set()
        self.layout = Layout(page_count=0, txids=[])
        metas = [self._meta(pgid) for pgid in (0, 1)]
        root, freelist, self.high_water, _ = max(metas, key=lambda meta: meta[3])
        assert len(data) == self.high_water * PAGE
        for pgid in (0, 1):
            self._header(pgid, 0x04)
        self.layout.page_count, self.layout.txids = self.high_water, [meta[3] for meta in metas]
        assert self._header(freelist, 0x10)[1] == 0, "freelist must be empty"
        self.content = self._bucket(self._tree(root, 1), ())
        assert self.used == set(range(self.high_water)), "every page must be used exactly once"

    def _meta(self, pgid: int) -> tuple[int, int, int, int]:
        fields = self.data[pgid * PAGE + 16 : pgid * PAGE + 16 + 56]
        magic, version, page_size, _flags, root, _seq, freelist, high_water, txid = struct.unpack("<IIIIQQQQQ", fields)
        (checksum,) = struct.unpack_from("<Q", self.data, pgid * PAGE + 16 + 56)
        assert (magic, version, page_size) == (0xED0CDAED, 2, PAGE)
        assert checksum == fnv1a64(fields)
        return root, freelist, high_water, txid

    def _header(self, pgid: int, flags: int) -> tuple[int, int]:
        """Mark the page (and its overflow) used; return (count, overflow)."""
        page_id, page_flags, count, overflow = struct.unpack_from("<QHHI", self.data, pgid * PAGE)
        assert page_id == pgid and page_flags == flags
        span = set(range(pgid, pgid + overflow + 1))
        assert not span & self.used, f"page {pgid} referenced twice"
        assert max(span) < self.high_water
        self.used |= span
        self.layout.overflow_pages += overflow
        return count, overflow

    def _tree(self, pgid: int, depth: int) -> list[tuple[bytes, bytes, int]]:
        """All (key, value, flags) under page ``pgid``, in order."""
        self.layout.max_depth = max(self.layout.max_depth, depth)
        _, page_flags = struct.unpack_from("<QH", self.data, pgid * PAGE)
        if page_flags == 0x02:
            count, _ = self._header(pgid, 0x02)
            return _leaf_items(self.data, pgid * PAGE, count)
        count, _ = self._header(pgid, 0x01)
        items: list[tuple[bytes, bytes, int]] = []
        for index in range(count):
            element = pgid * PAGE + 16 + index * 16
            pos, ksize, child = struct.unpack_from("<IIQ", self.data, element)
            key = self.data[element + pos : element + pos + ksize]
            child_items = self._tree(child, depth + 1)
            assert child_items and child_items[0][0] == key, "branch key must be the child's first key"
            items += child_items
        return items

    def _bucket(self, items: list[tuple[bytes, bytes, int]], path: tuple[bytes, ...]) -> dict[bytes, Any]:
        keys = [key for key, _, _ in items]
        assert keys == sorted(set(keys)), "keys must be unique and sorted bytewise"
        content: dict[bytes, Any] = {}
        for key, value, flags in items:
            if not flags & 1:
                content[key] = value
                continue
            root, _seq = struct.unpack_from("<QQ", value)
            if root == 0:
                self.layout.inline_buckets.add((*path, key))
                _, page_flags, count, overflow = struct.unpack_from("<QHHI", value, 16)
                assert (page_flags, overflow) == (0x02, 0)
                sub_items = _leaf_items(value, 16, count)
                assert not any(sub_flags & 1 for _, _, sub_flags in sub_items), "inline buckets are flat"
            else:
                self.layout.paged_buckets.add((*path, key))
                sub_items = self._tree(root, 1)
            content[key] = self._bucket(sub_items, (*path, key))
        return content


def _leaf_items(data: bytes, start: int, count: int) -> list[tuple[bytes, bytes, int]]:
    items = []
    for index in range(count):
        element = start + 16 + index * 16
        flags, pos, ksize, vsize = struct.unpack_from("<IIII", data, element)
        key = data[element + pos : element + pos + ksize]
        value = data[element + pos + ksize : element + pos + ksize + vsize]
        assert len(key) == ksize and len(value) == vsize
        items.append((key, value, flags))
    return items


def roundtrip(tmp_path: Path, buckets: dict[bytes, Any]) -> Reader:
    path = tmp_path / "test.db"
    pages = write_bbolt(path, buckets)
    reader = Reader(path.read_bytes())
    assert reader.high_water == pages
    assert reader.content == buckets
    return reader


def test_empty_database_has_metas_freelist_and_empty_root(tmp_path: Path) -> None:
    reader = roundtrip(tmp_path, {})
    assert reader.layout.page_count == 4
    assert reader.layout.txids == [0, 1]


def test_small_flat_buckets_are_inline_and_parents_are_paged(tmp_path: Path) -> None:
    buckets = {
        b"vulnerability": {},
        b"pip::source": {b"requests": {b"CVE-2099-0001": b'{"VulnerableVersions":["< 2.0.0"]}'}},
        b"flat": {b"k%d" % i: b"v" for i in range(10)},
    }
    layout = roundtrip(tmp_path, buckets).layout
    assert layout.inline_buckets == {(b"vulnerability",), (b"pip::source", b"requests"), (b"flat",)}
    assert layout.paged_buckets == {(b"pip::source",)}


def test_bucket_over_a_quarter_page_gets_own_pages(tmp_path: Path) -> None:
    # 16 (page header) + 16 (element) + 1 (key) + 991 = 1024 is the largest inline bucket; one more byte is not.
    buckets = {b"fits": {b"k": b"x" * 991}, b"spills": {b"k": b"x" * 992}}
    layout = roundtrip(tmp_path, buckets).layout
    assert layout.inline_buckets == {(b"fits",)}
    assert layout.paged_buckets == {(b"spills",)}


def test_thousands_of_keys_build_a_multi_level_tree(tmp_path: Path) -> None:
    keys = {b"key-%07d-%s" % (i, b"p" * (i % 50)): b"value-%d" % i for i in range(20000)}
    layout = roundtrip(tmp_path, {b"many": keys}).layout
    assert layout.max_depth >= 3


def test_large_values_use_overflow_pages(tmp_path: Path) -> None:
    buckets = {b"big": {b"a": b"\x01" * (3 * PAGE), b"b": b"\x02" * PAGE, b"c": b"small", b"d": b"\x03" * 70000}}
    layout = roundtrip(tmp_path, buckets).layout
    assert layout.overflow_pages >= 3 + 1 + 17


def test_output_is_deterministic(tmp_path: Path) -> None:
    buckets = vuln_db_buckets()
    write_bbolt(tmp_path / "a.db", buckets)
    write_bbolt(tmp_path / "b.db", buckets)
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()


def test_filler_bucket_grows_the_file_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "trivy.db"
    write_bbolt(path, vuln_db_buckets(filler_bytes=(5 << 20) + 123))
    content = Reader(path.read_bytes()).content
    assert sum(len(value) for value in content[FILLER_BUCKET].values()) == (5 << 20) + 123
    assert (5 << 20) < path.stat().st_size < (6 << 20)


@pytest.mark.parametrize(
    ("buckets", "error"),
    [
        ({b"top": b"value"}, TypeError),
        ({b"b": {b"": b"v"}}, ValueError),
        ({b"b": {b"k" * 32769: b"v"}}, ValueError),
        ({b"": {}}, ValueError),
    ],
)
def test_rejects_what_bbolt_cannot_store(tmp_path: Path, buckets: dict[bytes, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        write_bbolt(tmp_path / "bad.db", buckets)


_keys = st.binary(min_size=1, max_size=24)
# Large values are cheap to generate (one repeated byte) but still spill into overflow pages and force splits.
_values = st.one_of(st.binary(max_size=64), st.integers(300, 9000).map(lambda size: b"\xab" * size))
# Three explicit levels: st.recursive would be several times slower to generate.
_flat = st.dictionaries(_keys, _values, max_size=20)
_nested = st.dictionaries(_keys, st.one_of(_values, _flat), max_size=20)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(_keys, _nested, max_size=4))
def test_arbitrary_nested_buckets_roundtrip(
    tmp_path_factory: pytest.TempPathFactory, buckets: dict[bytes, Any]
) -> None:
    roundtrip(tmp_path_factory.mktemp("bbolt"), buckets)


def test_deeply_nested_buckets_roundtrip(tmp_path: Path) -> None:
    bucket: dict[bytes, Any] = {b"leaf": b"value"}
    for depth in range(12):
        bucket = {b"level-%d" % depth: bucket, b"value-%d" % depth: b"x" * (depth * 400)}
    roundtrip(tmp_path, {b"top": bucket})
