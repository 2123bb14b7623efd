"""The go-getter URL forms VEX repository locations use, read as go-getter v1.8 (Trivy's downloader) reads them.

``https://host/path/main.tar.gz//vexhub-*?archive=tar.gz&checksum=sha256:...``:

* ``//SUBDIR`` after the path selects a directory of the archive; glob patterns work. The ``//`` is looked for
  before the query only, so ``?archive=tar.gz//sub`` is an archive type ``tar.gz//sub``, not a subdirectory
  (go-getter then saves a raw file: TRIVY-ASSETS.md section 7.2);
* ``archive=`` and ``checksum=`` are go-getter's own parameters and are not sent to the server;
* without ``archive=`` the archive type is the longest known extension of the URL path. A location with neither
  is saved by go-getter as a plain file, which silently disables VEX in Trivy, so it is refused here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from trivy_mirror.errors import RefusedCandidate

ARCHIVE_TYPES = ("tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "tar", "zip", "gz", "bz2", "xz")
"""What the mirror unpacks. ``gz``, ``bz2`` and ``xz`` must hold a tar: a single file cannot be a repository."""

_MAGIC_PARAMETERS = ("archive", "checksum")
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})  # Go's strconv.ParseBool
_FORCED_GETTER = re.compile(r"([A-Za-z0-9]+)::")
_CHECKSUM_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_BITS = {"md5": 128, "sha1": 160, "sha256": 256, "sha512": 512}

Refuse = Callable[[str], RefusedCandidate]


@dataclass(frozen=True)
class Location:
    """One parsed location; ``raw`` is the manifest's string, which is also Trivy's ETag cache key."""

    raw: str
    url: str
    """What is requested: the location without ``//SUBDIR`` and without go-getter's own parameters."""
    subdir: str
    """A glob pattern of the directory to use (empty: the archive root)."""
    archive: str
    checksum: tuple[str, str] | None = None
    """(hash algorithm, lower-case hex) from ``checksum=``."""

    @property
    def display(self) -> str:
        return display_location(self.raw)


def split_subdir(source: str) -> tuple[str, str]:
    """go-getter's ``SourceDirSubdir``: (URL with any query moved back onto it, subdirectory)."""
    stop = source.find("?")
    stop = len(source) if stop < 0 else stop
    scheme_end = source.find("://", 0, stop)
    offset = scheme_end + 3 if scheme_end >= 0 else 0
    index = source.find("//", offset, stop)
    if index < 0:
        return source, ""
    subdir = source[index + 2 :]
    url = source[:index]
    query = subdir.find("?")
    if query >= 0:
        url += subdir[query:]
        subdir = subdir[:query]
    return url, subdir


def parse_location(raw: str) -> Location:
    """Parse a manifest location; raises RefusedCandidate, naming the location, for anything unusable."""
    shown = display_location(raw)

    def refuse(detail: str) -> RefusedCandidate:
        return RefusedCandidate(f"location {shown}: {detail}")

    forced = _FORCED_GETTER.match(raw)
    if forced:
        raise refuse(f"the go-getter {forced.group(1)}:: form is not supported; use an http(s) URL")
    url, subdir = split_subdir(raw)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        valid = False
    if not valid:
        raise refuse("not an http(s) URL")
    kept, magic = _split_query(parts.query)
    fetched = urlunsplit((parts.scheme, parts.netloc, parts.path, kept, ""))
    archive = _archive_type(magic.get("archive"), parts.path, refuse)
    checksum = _checksum(magic["checksum"], refuse) if "checksum" in magic else None
    return Location(raw, fetched, _subdir(subdir, refuse), archive, checksum)


def _split_query(query: str) -> tuple[str, dict[str, str]]:
    """The query without go-getter's parameters (others kept byte for byte: they may be signed), and those."""
    kept: list[str] = []
    magic: dict[str, str] = {}
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        if unquote(key) in _MAGIC_PARAMETERS:
            magic[unquote(key)] = unquote(value)
        else:
            kept.append(part)
    return "&".join(kept), magic


def _archive_type(value: str | None, path: str, refuse: Refuse) -> str:
    if value is not None:
        if value in _FALSE:
            raise refuse("archive=false: the location must be an archive")
        if value in ARCHIVE_TYPES:
            return value
        hint = "; put //SUBDIR before ?archive= (go-getter reads the subdirectory from the path only)" \
            if "//" in value else ""
        raise refuse(f"unsupported archive type {value[:40]!r} (known: {', '.join(ARCHIVE_TYPES)}){hint}")
    matches = [kind for kind in ARCHIVE_TYPES if path.endswith(f".{kind}")]
    if not matches:
        raise refuse("no archive extension (.tar.gz, .zip, ...) and no ?archive=FORMAT: go-getter would save "
                     "it as a plain file and Trivy would silently find no index.json")
    return max(matches, key=len)


def _subdir(value: str, refuse: Refuse) -> str:
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise refuse(f"subdirectory {value[:80]!r} leaves the archive")
    return "/".join(parts)


def _checksum(value: str, refuse: Refuse) -> tuple[str, str]:
    algorithm, sep, digest = value.partition(":")
    if not sep:
        algorithm, digest = _CHECKSUM_LENGTHS.get(len(value), ""), value
    if algorithm not in _CHECKSUM_LENGTHS.values():
        raise refuse(f"unsupported checksum {value[:80]!r}: use md5, sha1, sha256 or sha512:HEX")
    if len(digest) * 4 != _HASH_BITS[algorithm] or not _HEX.fullmatch(digest):
        raise refuse(f"checksum {value[:80]!r} is not {algorithm}:HEX")
    return algorithm, digest.lower()


def display_url(url: str) -> str:
    """``url`` for messages and status: without credentials or query (it may carry a signature)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def display_location(raw: str) -> str:
    """A location for messages: :func:`display_url` of its URL, ``//SUBDIR`` and ``?archive=`` kept."""
    try:
        url, subdir = split_subdir(raw)
        shown = display_url(url)
        archive = _split_query(urlsplit(url).query)[1].get("archive")
    except ValueError:
        return "<unparsable URL>"
    if subdir:
        shown += f"//{subdir}"
    return f"{shown}?archive={archive}" if archive is not None else shown
