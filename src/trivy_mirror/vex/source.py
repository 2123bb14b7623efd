"""Which VEX repositories to mirror: ``--vex-from [NAME=]URL``, and where each one's manifest lives.

As Trivy does (TRIVY-ASSETS.md section 7.2): for a ``github.com`` URL the manifest is ``vex-repository.json`` at the
root of the default branch, for any other URL it is ``URL/.well-known/vex-repository.json``. Trivy reads the
GitHub file through the GitHub API; the mirror reads it from ``raw.githubusercontent.com/OWNER/REPO/HEAD/``
(``HEAD`` is the default branch), which needs no API token and has no API rate limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from trivy_mirror.errors import UsageError

DEFAULT_NAME = "vexhub"
DEFAULT_URL = "https://github.com/aquasecurity/vexhub"
MANIFEST_FILE = "vex-repository.json"

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""A repository name: a path component of the store and of ``PUBLIC_URL/vex/NAME``."""
_GITHUB_PATH = re.compile(r"/(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)(?:\.git)?/?")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid VEX repository name {name[:80]!r}: use 1-64 lower-case letters, digits, "
                         f"'.', '_' or '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class VexSource:
    """An upstream VEX repository mirrored under ``name``."""

    name: str
    url: str

    @classmethod
    def parse(cls, text: str) -> VexSource:
        """``NAME=URL`` or ``URL`` (the name is then taken from the URL); raises UsageError."""
        prefix, sep, rest = text.partition("=")
        if sep and "/" not in prefix and ":" not in prefix:
            source = cls(check_name(prefix), rest.strip())
        else:
            source = cls(derive_name(text.strip()), text.strip())
        manifest_url(source.url)
        return source

    @property
    def manifest_url(self) -> str:
        return manifest_url(self.url)

    def __str__(self) -> str:
        return f"{self.name}={self.url}"


DEFAULT_SOURCE = VexSource(DEFAULT_NAME, DEFAULT_URL)


def check_unique(sources: Sequence[VexSource]) -> None:
    """Each name is a store directory and a URL path: two repositories cannot share one."""
    names = [source.name for source in sources]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise UsageError(f"VEX repository name {duplicate!r} is given twice")


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme, netloc, path, query) of an http(s) repository URL; UsageError otherwise."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        valid = False
    if not valid or parts.fragment:
        raise UsageError(f"invalid VEX repository URL {url[:120]!r}: expected http(s)://HOST[:PORT][/PATH]")
    return parts.scheme, parts.netloc, parts.path, parts.query


def _github(path: str, url: str) -> tuple[str, str]:
    found = _GITHUB_PATH.fullmatch(path)
    if found is None:
        raise UsageError(f"invalid GitHub VEX repository URL {url[:120]!r}: expected https://github.com/OWNER/REPO")
    return found["owner"], found["repo"]


def manifest_url(url: str) -> str:
    """Where the manifest of the repository at ``url`` is read from."""
    scheme, netloc, path, query = _split(url)
    if urlsplit(url).hostname == "github.com":
        owner, repo = _github(path, url)
        return f"https://raw.githubusercontent.com/{owner}/{repo}/HEAD/{MANIFEST_FILE}"
    return urlunsplit((scheme, netloc, f"{path.rstrip('/')}/.well-known/{MANIFEST_FILE}", query, ""))


def derive_name(url: str) -> str:
    """A name for ``URL`` without ``NAME=``: the GitHub repository, else the last path component, else the host."""
    _, _, path, _ = _split(url)
    host = urlsplit(url).hostname or ""
    if host == "github.com":
        candidate = _github(path, url)[1]
    else:
        components = [part for part in path.split("/") if part]
        candidate = components[-1] if components else host
    name = re.sub(r"[^a-z0-9._-]+", "-", candidate.lower()).lstrip("._-")[:64]
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"cannot derive a VEX repository name from {url[:120]!r}: give one as NAME=URL")
    return name
