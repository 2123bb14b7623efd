"""``index.json`` of a VEX repository: which package (a PURL without version) has its VEX document where.

Trivy matches a scanned package's PURL, stripped of version, qualifiers and subpath, exactly against the ids,
and opens each location relative to the directory of ``index.json`` (TRIVY-ASSETS.md sections 7.1 and 7.3).
An id with a version can never match and a location outside the tree can never open, so both are refused.
Properties the spec does not define are ignored, as Trivy ignores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.timefmt import parse_time
from trivy_mirror.vex.document import load_json, refused

FORMATS = ("openvex", "csaf")
"""VEX formats Trivy reads; an absent or empty ``format`` means openvex."""

_PURL = re.compile(r"pkg:(?P<type>[a-zA-Z][a-zA-Z0-9.+-]*)/(?P<path>[^?#@\s]+)(?:\?(?P<qualifiers>[^#@\s]*))?")
_LOCATION = re.compile(r"[a-zA-Z0-9_/.-]+\.json")
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _fail(detail: str) -> RefusedCandidate:
    return refused("index.json", detail)


def check_package_id(value: str) -> str:
    """A PURL without version, subpath or qualifiers (``pkg:oci`` keeps ``repository_url``); refused otherwise."""
    found = _PURL.fullmatch(value)
    if found is None or not all(found["path"].split("/")):
        raise _fail(f"id {value[:120]!r} is not a package URL without version (pkg:TYPE/NAMESPACE/NAME)")
    qualifiers = found["qualifiers"]
    if qualifiers is not None:
        keys = [part.partition("=")[0] for part in qualifiers.split("&")]
        if found["type"].lower() != "oci" or keys != ["repository_url"]:
            raise _fail(f"id {value[:120]!r} carries qualifiers; only pkg:oci ids keep repository_url")
    return value


def check_location(value: str) -> str:
    """A relative ``.json`` path inside the repository, normalised (``./`` and ``//`` removed)."""
    if not _LOCATION.fullmatch(value):
        raise _fail(f"location {value[:120]!r} must be a relative path of letters, digits, _ / . - ending in .json")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if value.startswith("/") or ".." in parts:
        raise _fail(f"location {value[:120]!r} points outside the repository")
    return "/".join(parts)


@dataclass(frozen=True)
class IndexEntry:
    id: str
    location: str
    """Normalised, relative to the directory of ``index.json``."""
    format: str


@dataclass(frozen=True)
class VexIndex:
    updated_at: datetime | None
    entries: tuple[IndexEntry, ...]

    @property
    def documents(self) -> tuple[str, ...]:
        """Each distinct document location once, sorted."""
        return tuple(sorted({entry.location for entry in self.entries}))

    @classmethod
    def parse(cls, data: bytes) -> VexIndex:
        return cls.from_json(load_json(data, "index.json"))

    @classmethod
    def from_json(cls, document: Any) -> VexIndex:
        if not isinstance(document, dict):
            raise _fail("the document must be a JSON object")
        packages = document.get("packages")
        if not isinstance(packages, list):
            raise _fail("packages must be a list")
        if not packages:
            raise _fail("packages is empty; Trivy would find no VEX document in it")
        return cls(_updated_at(document.get("updated_at")),
                   tuple(_entry(package, i) for i, package in enumerate(packages)))


def _updated_at(value: Any) -> datetime | None:
    """Go decodes ``updated_at`` as an RFC 3339 time: absent is the zero time, anything else unparsable fails."""
    if value is None:
        return None
    moment = parse_time(value) if isinstance(value, str) else None
    if moment is None and value != _ZERO_TIME:
        raise _fail(f"updated_at {str(value)[:60]!r} is not an RFC 3339 time")
    return moment


def _entry(package: Any, index: int) -> IndexEntry:
    if not isinstance(package, dict):
        raise _fail(f"packages[{index}] must be an object")
    identifier, location, kind = package.get("id"), package.get("location"), package.get("format", "")
    if not isinstance(identifier, str):
        raise _fail(f"packages[{index}].id must be a string")
    if not isinstance(location, str):
        raise _fail(f"packages[{index}].location must be a string")
    if not isinstance(kind, str) or kind not in ("", *FORMATS):
        raise _fail(f"packages[{index}].format {kind!r} is not one of {', '.join(FORMATS)}")
    return IndexEntry(check_package_id(identifier), check_location(location), kind or "openvex")
