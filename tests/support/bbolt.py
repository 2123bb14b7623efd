"""A writer of bbolt database files (go.etcd.io/bbolt, the store behind Trivy's ``trivy.db``).

The PyPI ``boltdb`` package writes files that fail bbolt's consistency check (Trivy: ``checksum error``), so the
tests carry their own writer. It writes a fresh, compacted database in one go, the way ``bbolt compact`` lays one
out: meta pages 0 and 1, an empty freelist on page 2, then every bucket's pages. The format (bbolt 1.3/1.4,
little-endian, as on amd64/arm64):

* Every page starts with a 16-byte header: page id (u64), flags (u16), element count (u16), overflow (u32), where
  overflow is the number of extra contiguous pages a page larger than ``page_size`` spills into.
* A meta page holds magic, version, page size, flags, the root bucket (root page id, sequence), the freelist page
  id, the high-water mark (first page id past the end of the file), the transaction id and an FNV-1a 64 checksum
  of all those fields. bbolt uses the valid meta with the higher txid.
* Leaf pages hold 16-byte elements (flags, pos, key size, value size), then the keys and values; ``pos`` is the
  distance from the element to its key. Branch pages hold 16-byte elements (pos, key size, child page id), then the
  keys; each key is the first key of the child. Keys are sorted bytewise within and across pages.
* A bucket is a leaf element with flag 1 whose value starts with a 16-byte header (root page id, sequence). A small
  bucket without sub-buckets is stored inline: root 0, and its single leaf page follows the header in the value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, TypeAlias

Bucket: TypeAlias = Mapping[bytes, "bytes | Bucket"]
"""A bucket: keys map to values (``bytes``) or to nested buckets (any other mapping)."""

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
VERSION = 2

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF_FLAG = 0x01

MAX_KEY_SIZE = 32768
MAX_VALUE_SIZE = (1 << 31) - 2

PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, key size, value size
BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, key size, child page id
BUCKET_HEADER = struct.Struct("<QQ")  # root page id, sequence
META = struct.Struct("<IIIIQQQQQ")  # magic, version, page size, flags, root, sequence, freelist, pgid, txid
CHECKSUM = struct.Struct("<Q")

_FREELIST_PGID = 2
_FIRST_DATA_PGID = 3

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64-bit hash, the checksum bbolt stores in its meta pages."""
    h = _FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def write_bbolt(path: Path | str, buckets: Bucket, *, page_size: int = PAGE_SIZE) -> int:
    """Write a bbolt database holding ``buckets`` (top-level bucket name -> bucket) to ``path``.

    Values are read once, in key order, and pages are streamed to the file, so a lazy mapping can feed large
    values without holding them all in memory. Returns the number of pages in the file (its high-water mark).
    """
    for name, bucket in buckets.items():
        if isinstance(bucket, bytes):
            raise TypeError(f"top-level entry {name!r} must be a bucket: bbolt's root holds only buckets")
    with open(path, "wb") as file:
        pages = _PageWriter(file, page_size)
        root = pages.write_tree(buckets)
        for pgid in (0, 1):
            fields = META.pack(MAGIC, VERSION, page_size, 0, root, 0, _FREELIST_PGID, pages.next_pgid, pgid)
            pages.write_page(pgid, META_PAGE, 0, fields + CHECKSUM.pack(fnv1a64(fields)))
        pages.write_page(_FREELIST_PGID, FREELIST_PAGE, 0, b"")
        return pages.next_pgid


def _leaf_body(items: list[tuple[bytes, bytes, int]]) -> bytes:
    """Elements then key/value data of a leaf page holding ``items`` (key, value, element flags)."""
    elements = bytearray()
    data = bytearray()
    data_start = len(items) * LEAF_ELEMENT.size
    for index, (key, value, flags) in enumerate(items):
        pos = data_start + len(data) - index * LEAF_ELEMENT.size
        elements += LEAF_ELEMENT.pack(flags, pos, len(key), len(value))
        data += key
        data += value
    return bytes(elements + data)


def _branch_body(children: list[tuple[bytes, int]]) -> bytes:
    """Elements then keys of a branch page pointing at ``children`` (first key, page id)."""
    elements = bytearray()
    data = bytearray()
    data_start = len(children) * BRANCH_ELEMENT.size
    for index, (key, pgid) in enumerate(children):
        pos = data_start + len(data) - index * BRANCH_ELEMENT.size
        elements += BRANCH_ELEMENT.pack(pos, len(key), pgid)
        data += key
    return bytes(elements + data)


class _PageWriter:
    """Allocates page ids in file order and writes bucket trees bottom-up."""

    def __init__(self, file: BinaryIO, page_size: int) -> None:
        if page_size < 1024 or page_size & (page_size - 1):
            raise ValueError(f"page size must be a power of two >= 1024, not {page_size}")
        self._file = file
        self._page_size = page_size
        self.next_pgid = _FIRST_DATA_PGID

    def write_page(self, pgid: int, flags: int, count: int, body: bytes) -> int:
        """Write one page (spilling into overflow pages if needed) at ``pgid``; return its page count."""
        npages = math.ceil((PAGE_HEADER.size + len(body)) / self._page_size)
        self._file.seek(pgid * self._page_size)
        self._file.write(PAGE_HEADER.pack(pgid, flags, count, npages - 1))
        self._file.write(body)
        self._file.write(bytes(npages * self._page_size - PAGE_HEADER.size - len(body)))
        return npages

    def _append(self, flags: int, count: int, body: bytes) -> int:
        pgid = self.next_pgid
        self.next_pgid += self.write_page(pgid, flags, count, body)
        return pgid

    def write_tree(self, bucket: Bucket) -> int:
        """Write ``bucket`` on its own pages; return its root page id."""
        leaves: list[tuple[bytes, int]] = []
        items: list[tuple[bytes, bytes, int]] = []
        size = PAGE_HEADER.size
        for key, value, flags in self._items(bucket):
            item_size = LEAF_ELEMENT.size + len(key) + len(value)
            if items and size + item_size > self._page_size:
                leaves.append((items[0][0], self._append(LEAF_PAGE, len(items), _leaf_body(items))))
                items, size = [], PAGE_HEADER.size
            items.append((key, value, flags))
            size += item_size
        if items or not leaves:
            leaves.append((items[0][0] if items else b"", self._append(LEAF_PAGE, len(items), _leaf_body(items))))
        return self._write_branches(leaves)

    def _write_branches(self, level: list[tuple[bytes, int]]) -> int:
        """Stack branch pages over ``level`` (first key, page id) until one root remains; return it."""
        while len(level) > 1:
            parents: list[tuple[bytes, int]] = []
            children: list[tuple[bytes, int]] = []
            size = PAGE_HEADER.size
            for key, pgid in level:
                child_size = BRANCH_ELEMENT.size + len(key)
                if children and size + child_size > self._page_size:
                    parents.append((children[0][0], self._append(BRANCH_PAGE, len(children), _branch_body(children))))
                    children, size = [], PAGE_HEADER.size
                children.append((key, pgid))
                size += child_size
            parents.append((children[0][0], self._append(BRANCH_PAGE, len(children), _branch_body(children))))
            level = parents
        return level[0][1]

    def _items(self, bucket: Bucket) -> Iterator[tuple[bytes, bytes, int]]:
        """Yield (key, leaf value, element flags) in key order, writing sub-buckets as they come."""
        for key in sorted(bucket):
            value = bucket[key]
            if isinstance(value, bytes):
                yield _checked(key, value), value, 0
            else:
                yield _checked(key, b""), self._bucket_value(value), BUCKET_LEAF_FLAG

    def _bucket_value(self, bucket: Bucket) -> bytes:
        """The value a parent stores for a sub-bucket: inline if small and flat, else a pointer to its root."""
        items = self._inline_items(bucket)
        if items is None:
            return BUCKET_HEADER.pack(self.write_tree(bucket), 0)
        page = PAGE_HEADER.pack(0, LEAF_PAGE, len(items), 0) + _leaf_body(items)
        return BUCKET_HEADER.pack(0, 0) + page

    def _inline_items(self, bucket: Bucket) -> list[tuple[bytes, bytes, int]] | None:
        """The items of ``bucket`` if bbolt would store it inline, else None.

        bbolt's rule (``Bucket.inlineable``): no sub-buckets, and the leaf page takes at most a quarter of a page.
        Stops reading at the first item that rules it out, so a large lazy bucket is not read twice.
        """
        items: list[tuple[bytes, bytes, int]] = []
        size = PAGE_HEADER.size
        for key in sorted(bucket):
            value = bucket[key]
            if not isinstance(value, bytes):
                return None
            size += LEAF_ELEMENT.size + len(key) + len(value)
            if size > self._page_size // 4:
                return None
            items.append((_checked(key, value), value, 0))
        return items


def _checked(key: bytes, value: bytes) -> bytes:
    """``key`` after checking it and its value against bbolt's limits."""
    if not isinstance(key, bytes) or not 0 < len(key) <= MAX_KEY_SIZE:
        raise ValueError(f"bbolt keys must be 1..{MAX_KEY_SIZE} bytes, got {key!r:.80}")
    if len(value) > MAX_VALUE_SIZE:
        raise ValueError(f"value of {key!r:.80} is larger than bbolt's maximum of {MAX_VALUE_SIZE} bytes")
    return key
