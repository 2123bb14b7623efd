"""``index.json`` of an OCI image layout: parsing, tagging, pruning and walking (no file I/O of its own).

Entry order is push order. Tagging appends the new entry; the tag's previous entry loses its
``org.opencontainers.image.ref.name`` but gains :data:`ANNOTATION_PREVIOUS_TAG`, so it stays readable by digest
as an older version and :func:`prune_entries` knows which tag's history it belongs to.

A dated tag (:data:`DATED_TAG`, ``2-20261130.0600``) names one version of its base tag and is never moved; it is
pruned together with that version.

Retention policy: an entry with neither annotation is an untagged manifest somebody pushed by digest (a
referrer, an index's child, an image whose tag was deleted); it stays until it is deleted by digest, except a
referrer whose subject a prune removes, which goes with it (signatures of a pruned DB version are of no use, and
a sync attaching them to every version must not grow the store without bound).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from trivy_mirror.errors import InvalidManifest, StoreError, UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest, parse_manifest

ANNOTATION_PREVIOUS_TAG = "io.github.trivy-mirror.previous-tag"
DATED_TAG = re.compile(r"^(?P<base>[A-Za-z0-9_][A-Za-z0-9._-]*)-(?P<stamp>[0-9]{8}\.[0-9]{4})$")
"""A dated version tag, ``<tag>-YYYYMMDD.HHMM`` (``2-20261130.0600``): immutable, it names one version of
``<tag>`` and is pruned with that version."""
REF_NAME = mediatype.ANNOTATION_REF_NAME


def parse_index(data: bytes, path: Path) -> list[Descriptor]:
    """The entries of an ``index.json``; StoreError naming the file when it is not a valid OCI index."""
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict) or not isinstance(obj.get("manifests"), list):
            raise InvalidManifest("no manifests list")
        return [Descriptor.from_json(entry, f"entry {i}") for i, entry in enumerate(obj["manifests"])]
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidManifest) as err:
        detail = str(err).replace("\n", " ")
        raise StoreError(f"{path} is not a valid OCI image index ({detail}); repair or remove it") from None


def serialize_index(entries: Iterable[Descriptor]) -> bytes:
    obj = {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": [e.to_json() for e in entries]}
    return json.dumps(obj, indent=2).encode() + b"\n"


def tag_of(entry: Descriptor) -> str | None:
    return entry.annotations.get(REF_NAME)


def tagged(entries: Iterable[Descriptor]) -> dict[str, Descriptor]:
    """Tag -> entry; when a foreign tool left two entries with one tag, the later one wins."""
    return {tag: e for e in entries if (tag := tag_of(e)) is not None}


def tag_entries(entries: list[Descriptor], new: Descriptor, tag: str) -> list[Descriptor] | None:
    """``entries`` with ``tag`` moved to ``new`` (which carries the ref.name); None when it is there already."""
    current = [e for e in entries if tag_of(e) == tag]
    if current and all(e.digest == new.digest for e in current):
        return None
    result = []
    for entry in entries:
        if tag_of(entry) == tag:
            annotations = {k: v for k, v in entry.annotations.items() if k != REF_NAME}
            annotations[ANNOTATION_PREVIOUS_TAG] = tag
            result.append(dataclasses.replace(entry, annotations=annotations))
        elif (tag_of(entry) is None and entry.annotations.get(ANNOTATION_PREVIOUS_TAG) == tag
              and entry.digest == new.digest):
            continue  # an older version becomes the tagged one again: one entry, not two
        else:
            result.append(entry)
    result.append(new)
    return result


def add_untagged(entries: list[Descriptor], new: Descriptor) -> list[Descriptor] | None:
    """``entries`` plus ``new`` (no ref.name) as an untagged manifest; None when its digest has an entry already.

    An older version of a tag pushed again by digest leaves the tag's history: pushed explicitly, it is kept.
    """
    same = [e for e in entries if e.digest == new.digest]
    if not same:
        return [*entries, new]
    if any(tag_of(e) is not None or ANNOTATION_PREVIOUS_TAG not in e.annotations for e in same):
        return None
    return [new if e.digest == new.digest else e for e in entries]


def untag(entries: list[Descriptor], tag: str) -> list[Descriptor] | None:
    """``entries`` without ``tag``; None when no entry has it.

    The manifest stays readable by digest: its entry loses the ref.name and becomes an untagged manifest (kept
    until deleted by digest), or goes when another entry already holds its digest.
    """
    if not any(tag_of(e) == tag for e in entries):
        return None
    result: list[Descriptor] = []
    for entry in entries:
        if tag_of(entry) != tag:
            result.append(entry)
        elif not any(other.digest == entry.digest and tag_of(other) != tag for other in entries):
            annotations = {k: v for k, v in entry.annotations.items() if k not in (REF_NAME, ANNOTATION_PREVIOUS_TAG)}
            result.append(dataclasses.replace(entry, annotations=annotations))
    return result


def without_digest(entries: list[Descriptor], digest: Digest) -> list[Descriptor] | None:
    """``entries`` without any entry for ``digest`` (its tags and its history); None when there is none."""
    result = [e for e in entries if e.digest != digest]
    return None if len(result) == len(entries) else result


def prune_entries(entries: list[Descriptor], keep: int,
                  subject_of: Callable[[Descriptor], Digest | None] = lambda _: None,
                  ) -> tuple[list[Descriptor], list[Descriptor]]:
    """Split into (kept, removed): each tag's entry plus the newest ``keep - 1`` older versions of its history.

    Untagged entries that belong to no tag's history (pushed by digest, or written by another tool) are kept,
    unless ``subject_of`` names a removed entry as their subject: the referrers of a pruned version go with it.
    """
    if keep < 1:
        raise UsageError(f"keep must be at least 1 (the tagged version), got {keep}")
    histories: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        previous = entry.annotations.get(ANNOTATION_PREVIOUS_TAG)
        if tag_of(entry) is None and previous is not None:
            histories.setdefault(previous, []).append(i)
    dropped = {i for older in histories.values() for i in older[: max(0, len(older) - (keep - 1))]}
    dropped |= _dated_dropped(entries, dropped)
    if dropped:
        subjects = {i: subject_of(e) for i, e in enumerate(entries) if tag_of(e) is None and i not in dropped}
        while True:  # a referrer of a referrer (the signature of an SBOM) goes too
            gone = {entries[i].digest for i in dropped}
            still = {e.digest for i, e in enumerate(entries) if i not in dropped}
            more = {i for i, subject in subjects.items()
                    if i not in dropped and subject in gone and subject not in still}
            if not more:
                break
            dropped |= more
    kept = [e for i, e in enumerate(entries) if i not in dropped]
    removed = [e for i, e in enumerate(entries) if i in dropped]
    return kept, removed


def _dated_dropped(entries: list[Descriptor], dropped: set[int]) -> set[int]:
    """Dated tags (:data:`DATED_TAG`) of a tag the layout holds whose version is no longer kept: not the tag's
    current digest nor a kept older version of it. A dated tag without its base tag is an ordinary tag."""
    kept_versions: dict[str, set[Digest]] = {}
    for i, entry in enumerate(entries):
        base = tag_of(entry) or (entry.annotations.get(ANNOTATION_PREVIOUS_TAG) if i not in dropped else None)
        if base is not None:
            kept_versions.setdefault(base, set()).add(entry.digest)
    gone = set()
    for i, entry in enumerate(entries):
        match = DATED_TAG.match(tag_of(entry) or "")
        if match and match["base"] in kept_versions and entry.digest not in kept_versions[match["base"]]:
            gone.add(i)
    return gone


def walk(entries: Iterable[Descriptor],
         read: Callable[[Descriptor], bytes]) -> Iterator[tuple[Descriptor, Manifest | Index]]:
    """Every manifest reachable from ``entries`` (through indexes, depth first), each once, parsed.

    ``read`` returns a manifest's verified bytes; its errors propagate, as does InvalidManifest.
    """
    seen: set[Digest] = set()
    stack = list(reversed(list(entries)))
    while stack:
        descriptor = stack.pop()
        if descriptor.digest in seen:
            continue
        seen.add(descriptor.digest)
        parsed = parse_manifest(read(descriptor), descriptor.media_type)
        yield descriptor, parsed
        if isinstance(parsed, Index):
            stack.extend(reversed(parsed.manifests))


def references(parsed: Manifest | Index) -> tuple[Descriptor, ...]:
    """What must be stored before this manifest may be: config and layers (non-distributable ones excepted), or
    an index's child manifests. A subject need not be: a referrer may be pushed before the manifest it refers to.
    """
    return parsed.distributable_blobs if isinstance(parsed, Manifest) else parsed.manifests
