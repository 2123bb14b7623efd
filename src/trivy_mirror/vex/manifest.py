"""The VEX repository manifest (``vex-repository.json``) as Trivy 0.76 reads it (TRIVY-ASSETS.md section 7.1, 7.2).

``versions`` is a list; Trivy takes the first entry whose ``spec_version`` is exactly ``0.1``. Every version's
``update_interval`` must be a Go duration, because Trivy decodes the whole document before choosing one.
A manifest that breaks these rules is refused: the mirror keeps serving what it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.timefmt import parse_go_duration
from trivy_mirror.vex.document import load_json, refused

SPEC_VERSION = "0.1"
"""The only spec version Trivy 0.76 understands (an exact string match)."""


def _fail(detail: str) -> RefusedCandidate:
    return refused("vex-repository.json", detail)


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        state = "is missing" if value is None else "must be a string"
        raise _fail(f"{where}{key} {state}")
    return value


@dataclass(frozen=True)
class RepositoryVersion:
    """One entry of ``versions``: where the archive is and how often clients re-check it."""

    spec_version: str
    locations: tuple[str, ...]
    update_interval: str
    interval_seconds: float


@dataclass(frozen=True)
class RepositoryManifest:
    name: str
    description: str
    versions: tuple[RepositoryVersion, ...]

    @classmethod
    def parse(cls, data: bytes) -> RepositoryManifest:
        return cls.from_json(load_json(data, "vex-repository.json"))

    @classmethod
    def from_json(cls, document: Any) -> RepositoryManifest:
        if not isinstance(document, dict):
            raise _fail("the document must be a JSON object")
        name = _string(document, "name", "")
        description = _string(document, "description", "")
        entries = document.get("versions")
        if not isinstance(entries, list) or not entries:
            raise _fail("versions must be a non-empty list")
        return cls(name, description, tuple(_version(entry, i) for i, entry in enumerate(entries)))

    def version(self, spec_version: str = SPEC_VERSION) -> RepositoryVersion:
        """The first version with this exact ``spec_version``, as Trivy chooses it."""
        for version in self.versions:
            if version.spec_version == spec_version:
                return version
        offered = ", ".join(repr(v.spec_version) for v in self.versions)
        raise RefusedCandidate(f"vex-repository.json offers spec versions {offered}; Trivy needs {spec_version!r}")

    def served(self, archive_url: str, spec_version: str = SPEC_VERSION) -> dict[str, Any]:
        """The manifest a mirror serves: this one with a single location, ``archive_url``.

        Other spec versions and ``repository_specific`` point upstream, so they are left out.
        """
        version = self.version(spec_version)
        return {
            "name": self.name,
            "description": self.description,
            "versions": [{"spec_version": version.spec_version, "locations": [{"url": archive_url}],
                          "update_interval": version.update_interval}],
        }


def _version(entry: Any, index: int) -> RepositoryVersion:
    where = f"versions[{index}]."
    if not isinstance(entry, dict):
        raise _fail(f"versions[{index}] must be an object")
    spec_version = _string(entry, "spec_version", where)
    locations = entry.get("locations")
    if not isinstance(locations, list) or not locations:
        raise _fail(f"{where}locations must be a non-empty list")
    urls = []
    for position, location in enumerate(locations):
        url = location.get("url") if isinstance(location, dict) else None
        if not isinstance(url, str) or not url:
            raise _fail(f"{where}locations[{position}] must be an object with a url")
        urls.append(url)
    interval = _string(entry, "update_interval", where)
    try:
        seconds = parse_go_duration(interval)
    except ValueError as err:
        raise _fail(f"{where}update_interval: {err}") from None
    return RepositoryVersion(spec_version, tuple(urls), interval, seconds)
