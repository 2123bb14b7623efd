"""Splitting a ``/v2/...`` path into an endpoint, a repository name and a reference.

Repository names contain slashes, so the endpoint is recognised from the end of the path. Nothing is validated
here: the handlers validate the name and the reference, so a malformed one is an OCI error, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Endpoint = Literal["ping", "catalog", "tags", "manifests", "referrers", "uploads", "blobs"]

_PATTERNS: tuple[tuple[Endpoint, re.Pattern[str]], ...] = (
    ("tags", re.compile(r"(?P<name>.+)/tags/list")),
    ("manifests", re.compile(r"(?P<name>.+)/manifests/(?P<ref>[^/]+)")),
    ("referrers", re.compile(r"(?P<name>.+)/referrers/(?P<ref>[^/]+)")),
    ("uploads", re.compile(r"(?P<name>.+)/blobs/uploads(?:/(?P<ref>[^/]*))?")),
    ("blobs", re.compile(r"(?P<name>.+)/blobs/(?P<ref>[^/]+)")),
)


@dataclass(frozen=True, slots=True)
class Route:
    """What a ``/v2/`` path asks for; ``reference`` is a tag, digest or upload id depending on the endpoint."""

    endpoint: Endpoint
    name: str = ""
    reference: str = ""


_PING = Route("ping")
_CATALOG = Route("catalog")


def match_v2(path: str) -> Route | None:
    """The route for the part of the path after ``/v2/``, or None for no known endpoint."""
    if not path:
        return _PING
    if path == "_catalog":
        return _CATALOG
    for endpoint, pattern in _PATTERNS:
        found = pattern.fullmatch(path)
        if found:
            return Route(endpoint, found["name"], found.groupdict().get("ref") or "")
    return None
