"""The bundle manifest: the first member of every bundle, describing the assets and listing every other member.

Every member after it must be listed here with its digest and size, so an import can verify each byte as it
reads and refuse anything unexpected before it is written anywhere; the one exception is a signed bundle's
envelope, which comes right after the manifest and signs its digest (:mod:`trivy_mirror.bundle.attestation`).
Keys of an asset entry are those of ``status --json`` (``reference``, ``digest``, ``size``, ``source``,
``updated_at``, ``next_update``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trivy_mirror.bundle.safety import check_path
from trivy_mirror.errors import BundleError, InvalidDigest
from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci.digest import Digest
from trivy_mirror.timefmt import iso, parse_time

MANIFEST_NAME = "trivy-mirror-bundle.json"
FORMAT = "trivy-mirror-bundle"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    """One member of the bundle: its path inside the tar, digest and size."""

    path: str
    digest: Digest
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": str(self.digest), "size": self.size}


@dataclass(frozen=True)
class AssetEntry:
    """One asset the bundle carries, as the exporting mirror knew it."""

    asset: str
    kind: str
    """The section that carries it: ``oci`` (an OCI layout under ``oci/``), later ``vex``."""
    reference: str
    """``aquasec/trivy-db:2`` for an OCI asset: the repository inside the mirror and the tag."""
    digest: str
    size: int
    source: str | None = None
    updated_at: datetime | None = None
    next_update: datetime | None = None
    version: str | None = None
    """The checks bundle's ``org.opencontainers.image.version``."""

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "kind": self.kind, "reference": self.reference, "digest": self.digest,
                "size": self.size, "source": self.source, "updated_at": iso(self.updated_at),
                "next_update": iso(self.next_update), "version": self.version}


@dataclass(frozen=True)
class BundleManifest:
    tool_version: str
    created_at: datetime
    assets: tuple[AssetEntry, ...]
    files: tuple[BundleFile, ...]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "tool": "trivy-mirror",
                "tool_version": self.tool_version, "created_at": iso(self.created_at),
                "assets": [a.to_json() for a in self.assets], "files": [f.to_json() for f in self.files]}

    def serialize(self) -> bytes:
        return json.dumps(self.to_json(), indent=2).encode() + b"\n"


def _field(obj: dict[str, Any], key: str, kind: type, where: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BundleError(f"bundle manifest is invalid: {where} has no valid {key!r}")
    return value


def _time(obj: dict[str, Any], key: str, where: str) -> datetime | None:
    value = obj.get(key)
    moment = parse_time(value)
    if value is not None and moment is None:
        raise BundleError(f"bundle manifest is invalid: {where} has an invalid {key!r}")
    return moment


def _file(obj: Any, index: int) -> BundleFile:
    where = f"file {index}"
    if not isinstance(obj, dict):
        raise BundleError(f"bundle manifest is invalid: {where} is not an object")
    path = check_path(_field(obj, "path", str, where))
    size = _field(obj, "size", int, where)
    if size < 0:
        raise BundleError(f"bundle manifest is invalid: {path!r} has a negative size")
    try:
        digest = Digest.parse(_field(obj, "digest", str, where))
    except InvalidDigest as err:
        raise BundleError(f"bundle manifest is invalid: {path!r}: {err}") from None
    return BundleFile(path, digest, size)


def _asset(obj: Any, index: int) -> AssetEntry:
    where = f"asset {index}"
    if not isinstance(obj, dict):
        raise BundleError(f"bundle manifest is invalid: {where} is not an object")
    return AssetEntry(
        _field(obj, "asset", str, where), _field(obj, "kind", str, where), _field(obj, "reference", str, where),
        _field(obj, "digest", str, where), _field(obj, "size", int, where),
        _field(obj, "source", str, where, optional=True), _time(obj, "updated_at", where),
        _time(obj, "next_update", where), _field(obj, "version", str, where, optional=True),
    )


def parse_manifest(data: bytes) -> BundleManifest:
    """Parse and validate the bundle manifest; BundleError with one line on anything wrong."""
    not_bundle = f"not a trivy-mirror bundle: {MANIFEST_NAME} has no \"format\": \"{FORMAT}\""
    obj = load_object(data, "bundle manifest", BundleError,
                      not_json="{what} is not valid JSON ({detail}); the bundle is damaged", not_object=not_bundle)
    if obj.get("format") != FORMAT:
        raise BundleError(not_bundle)
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"bundle format version {version!r} is not supported by this trivy-mirror "
                          f"(it reads version {FORMAT_VERSION}); use a matching trivy-mirror release")
    created = _time(obj, "created_at", "the bundle")
    if created is None:
        raise BundleError("bundle manifest is invalid: the bundle has no valid 'created_at'")
    assets, files = obj.get("assets"), obj.get("files")
    if not isinstance(assets, list) or not isinstance(files, list):
        raise BundleError("bundle manifest is invalid: 'assets' and 'files' must be lists")
    parsed_files = tuple(_file(f, i) for i, f in enumerate(files))
    seen: set[str] = {MANIFEST_NAME}
    for entry in parsed_files:
        if entry.path in seen:
            raise BundleError(f"bundle manifest is invalid: {entry.path!r} is listed twice")
        seen.add(entry.path)
    return BundleManifest(_field(obj, "tool_version", str, "the bundle"), created,
                          tuple(_asset(a, i) for i, a in enumerate(assets)), parsed_files)
